"""ClickHouse clients, chosen by DSN: ``chdb:///abs/path`` (embedded engine) or ``http(s)://...`` (server).

Only clickhouse-connect's ``Client`` API is used anywhere in yijian, so the same code runs on the
embedded engine locally and on a server or cluster in production. One process owns an embedded data
path (the engine locks it), so locally all reads and writes go through the owning process.
"""

from __future__ import annotations

import re

from yijian.config import Settings

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def make_client(settings: Settings, database: str | None = None, create: bool = True):
    """A clickhouse-connect client on ``database`` (default: settings.clickhouse_database).

    With ``create`` the database is created first if missing (chdb needs it to exist before a client
    can select it).
    """
    import clickhouse_connect

    db = check_identifier(database or settings.clickhouse_database)
    dsn = str(settings.clickhouse_dsn)
    if settings.is_embedded_clickhouse:
        path = dsn[len("chdb://"):]
        if path != "memory":
            from pathlib import Path

            Path(path).mkdir(parents=True, exist_ok=True)
    if create:
        bootstrap = clickhouse_connect.get_client(dsn=dsn)
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    return clickhouse_connect.get_client(dsn=dsn, database=db)
