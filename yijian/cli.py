"""The `yijian` command line: one entry point for hospitals, ops, analysts and rule authors.

Each pipeline stage contributes its own sub-commands (in its folder's cli.py); heavy libraries are
imported inside commands so that `yijian --help` is instant and the SDK-only install works.
"""

from __future__ import annotations

import typer

from yijian.deploy.cli import app as stack_app
from yijian.processors.cli import refdata_app
from yijian.processors.cli import replay as replay_command
from yijian.processors.cli import worker as worker_command
from yijian.rules.cli import app as rules_app
from yijian.producers.cli import check as check_command
from yijian.producers.cli import keys_app
from yijian.producers.cli import send as send_command
from yijian.producers.cli import simulate as simulate_command

app = typer.Typer(
    name="yijian",
    help="yijian (医监): streaming platform for provincial medical supervision.\n\n"
    "Start here: `yijian demo` runs the whole platform locally; `yijian stack status` shows what runs. "
    "Settings come from YIJIAN_* environment variables (see README, 'Configuration').",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,  # locals may hold keys or patient data
)
app.add_typer(stack_app, name="stack")
app.command(name="worker")(worker_command)
app.command(name="replay")(replay_command)
app.add_typer(refdata_app, name="refdata")
app.add_typer(rules_app, name="rules")

# ClickHouse stage (sinks/cli.py)
from yijian.sinks.cli import dashboard_cmd, db_app, query_cmd, sink_cmd  # noqa: E402

app.add_typer(db_app, name="db")
app.command("sink")(sink_cmd)
app.command("query")(query_cmd)
app.command("dashboard")(dashboard_cmd)
app.add_typer(keys_app, name="keys")
app.command("send")(send_command)
app.command("check")(check_command)
app.command("simulate")(simulate_command)


@app.command()
def demo(
    institutions: int = typer.Option(200, help="Simulated hospitals across the province's 9 prefectures."),
    encounters: int = typer.Option(3000, help="Simulated encounters (≈6 records each)."),
    replicas: int = typer.Option(2, help="Processor replicas to run (each a `yijian worker` process)."),
    serve: bool = typer.Option(False, help="Keep serving the dashboard at the end (Ctrl-C to stop)."),
) -> None:
    """Run the whole platform locally: Kafka + embedded ClickHouse, a simulated province of hospitals
    sending SM4-encrypted records with injected faults, processor replicas, rule packs, the ClickHouse
    sink; ends with a province summary compared with the simulator's ground truth, where the data
    lives, how to query it and the dashboard address. Ctrl-C stops everything it started."""
    from yijian.demo import run_demo

    run_demo(institutions, encounters, replicas, serve)


@app.command()
def config() -> None:
    """Print the settings in force (secrets masked) and where each can be changed."""
    from rich.console import Console
    from rich.table import Table

    from yijian.config import Settings, get_settings

    settings = get_settings()
    table = Table("setting", "env var", "value", "what it is")
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        table.add_row(name, f"YIJIAN_{name.upper()}", str(value), field.description or "")
    Console().print(table)



@app.command()
def bench(
    records: int = typer.Option(20_000, help="Records per measurement (bigger = steadier figures, longer run)."),
    out: str = typer.Option("bench-report.json", help="Where to write the JSON report."),
    smoke: bool = typer.Option(False, help="A quick run for CI: few records, checks the harness works."),
    only: list[str] = typer.Option([], help="Run only this section (repeatable): sdk, processors, worker_envelopes, rules_engine, worker_memory, sink, latency_<rate>rps, latency_saturation."),
    latency_rate: list[float] = typer.Option([250.0, 5000.0], help="Offered load(s) in records/s for the whole-platform latency sections (repeatable; records go out as they happen, about one per envelope, as hospitals send them in real time); a saturation run (full envelopes, as fast as possible) is always added."),
) -> None:
    """Measure throughput and latency against baselines taken in the same run; print a table and write JSON."""
    from pathlib import Path

    from yijian.bench import run

    run(2000 if smoke else records, Path(out), smoke, only=tuple(only), latency_rates=tuple(latency_rate))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
