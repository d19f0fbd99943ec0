"""`yijian worker`: the stream processors (Faust)."""

from __future__ import annotations

import sys

import typer


def worker(
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="crit, error, warn, info or debug"),
) -> None:
    """Run one processor replica (Faust worker): decrypt, standardize, quality, rules.

    Start more replicas (on this or other machines) with the same settings to scale out; each takes a
    share of the raw topics' partitions (replicas beyond the partition count idle). Health and
    Prometheus metrics: http://YIJIAN_WORKER_WEB_HOST:YIJIAN_WORKER_WEB_PORT/ . Equivalent:
    `faust -A yijian.processors.app worker`.
    """
    from yijian.processors.app import app, settings

    sys.argv = ["yijian-worker", "worker", "-l", loglevel, "--web-port", str(settings.worker_web_port), "--web-host", settings.worker_web_host]
    app.main()
