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


def replay(
    since: str = typer.Option(None, "--since", help="Re-standardize every envelope received since this time (ISO 8601, e.g. 2026-11-24T00:00:00+08:00)."),
    rejected: bool = typer.Option(False, "--rejected", help="Re-process the original envelopes of rejections instead (after a fix)."),
    reason: list[str] = typer.Option(None, "--reason", help="With --rejected: only these reasons (e.g. unknown_key)."),
) -> None:
    """Re-process raw envelopes with the reference data, keys and schemas in force now.

    Use `--since` after loading a code mapping (records standardized with unmapped codes get their
    national codes) and `--rejected` after fixing what made envelopes unacceptable (a key or schema
    was missing). Outputs replace earlier rows in ClickHouse (deterministic ids); nothing is counted twice.
    """
    from datetime import datetime

    from rich.console import Console

    from yijian.config import get_settings
    from yijian.keyring import load_keyring
    from yijian.processors.pipeline import Pipeline
    from yijian.processors.replay import Replayer
    from yijian.processors.refdata_state import load_local_refdata

    if not since and not rejected:
        raise typer.BadParameter("give --since TIME or --rejected")
    settings = get_settings()
    console = Console()
    pipeline = Pipeline(settings, load_keyring(settings), load_local_refdata(settings))
    r = Replayer(settings, pipeline)
    with console.status("replaying ...") as status:
        progress = lambda n: status.update(f"replaying ... {n} envelopes")  # noqa: E731
        if rejected:
            report = r.replay_rejected(set(reason) if reason else None, progress)
        else:
            report = r.replay_since(datetime.fromisoformat(since), progress=progress)
    r.close()
    console.print(f"replayed {report.envelopes} envelopes: {report.records} records standardized, "
                  f"{report.quality_issues} quality issues, still rejected: {report.rejected_again or 'none'}")
