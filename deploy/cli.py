"""`yijian stack ...`: the local stack (single-node Kafka + embedded ClickHouse)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from yijian.config import get_settings

app = typer.Typer(
    help="Start, inspect and stop the local stack: one Apache Kafka broker (KRaft, 127.0.0.1) "
    "run by deploy/kafka.sh, and the embedded ClickHouse (chdb) data folder.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


@app.command()
def up() -> None:
    """Start the local Kafka broker (download on first use), create topics and the ClickHouse database.

    A second `up` is harmless: a running broker is reused and only missing topics are created.
    """
    from yijian.deploy import stack

    settings = get_settings()
    with console.status("starting the local stack ..."):
        created = stack.up(settings)
    console.print(f"[green]Kafka[/] answers on {settings.kafka_bootstrap}; topics created: {len(created)}")
    console.print(f"[green]ClickHouse[/] {settings.clickhouse_dsn} database [bold]{settings.clickhouse_database}[/]")


@app.command()
def status() -> None:
    """Tell whether the broker answers, which topics exist, and where data lives. Exit code 3 if down."""
    from yijian.deploy import stack

    st = stack.status(get_settings())
    state = "[green]up[/]" if st.broker_answers else "[red]down[/]"
    pid = f" (pid {st.broker_pid}, started by deploy/kafka.sh)" if st.broker_pid else ""
    console.print(f"Kafka broker {st.bootstrap}: {state}{pid}")
    console.print(f"  broker data:   {st.kafka_data}")
    console.print(f"  broker jars:   {st.kafka_cache}")
    console.print(f"ClickHouse:      {st.clickhouse_dsn}  database {st.clickhouse_database}")
    if st.topics:
        table = Table("topic", "partitions", title=f"{len(st.topics)} topics")
        for name in sorted(st.topics):
            table.add_row(name, str(st.topics[name]))
        console.print(table)
    if not st.broker_answers:
        raise typer.Exit(3)


@app.command()
def down() -> None:
    """Stop the local Kafka broker started by `up` (data is kept for the next `up`)."""
    from yijian.deploy import stack

    console.print(stack.down(get_settings()) or "stopped")


@app.command()
def check() -> None:
    """Round trip through both stores: publish a few records to Kafka, read them back, write them to
    ClickHouse and query them back."""
    from yijian.deploy.selfcheck import run_selfcheck

    run_selfcheck(get_settings(), console)
