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
    from yijian.processors.refdata_state import read_refdata

    if not since and not rejected:
        raise typer.BadParameter("give --since TIME or --rejected")
    settings = get_settings()
    console = Console()
    pipeline = Pipeline(settings, load_keyring(settings), read_refdata(settings))
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


refdata_app = typer.Typer(
    help="Reference data (参考数据): per-institution code maps, institution and practitioner registries, "
    "drug / diagnosis / operation / service / consumable catalogues. Published to the compacted `refdata` "
    "topic; running processors switch without restart. CSV columns: yijian/refdata/README.md.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@refdata_app.command("load")
def refdata_load(
    path: str = typer.Argument(..., help="A CSV file (give --table) or a folder of <table>.csv files."),
    table: str = typer.Option(None, "--table", "-t", help="Table of a single CSV: institutions, practitioners, code_maps, drugs, diagnoses, operations, services, consumables, departments."),
    version: str = typer.Option("", help="Version label carried by the updates (default: content fingerprint)."),
) -> None:
    """Publish reference data from CSV. Each file replaces the partitions it covers (for code maps and
    institutions: per institution; catalogues: whole table). Then, if records were standardized while a
    mapping was missing, run `yijian replay --since TIME` to re-standardize them."""
    from pathlib import Path

    from yijian.config import get_settings
    from yijian.processors.refdata_state import publish, updates_from_csv, updates_from_folder

    p = Path(path)
    if p.is_dir():
        updates = updates_from_folder(p, version)
    else:
        if not table:
            raise typer.BadParameter("give --table for a single CSV file")
        updates = updates_from_csv(p, table, version)
    if not updates:
        raise typer.BadParameter(f"no reference data found in {p}")
    n = publish(get_settings(), updates)
    rows = sum(len(u.rows) for u in updates)
    typer.echo(f"published {n} updates ({rows} rows) to the refdata topic")


@refdata_app.command("status")
def refdata_status() -> None:
    """What reference data is in force on the platform (read from the refdata topic)."""
    from rich.console import Console
    from rich.table import Table

    from yijian.config import get_settings
    from yijian.processors.refdata_state import read_refdata
    from yijian.refdata.catalog import TABLES

    rd = read_refdata(get_settings())
    table = Table("table", "rows", title=f"reference data version {rd.version or '—'}")
    for name in TABLES:
        table.add_row(name, str(len(rd.rows(name))))
    Console().print(table)
