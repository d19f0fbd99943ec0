"""Versioned ClickHouse DDL: ``sinks/migrations/NNN_name.sql`` rendered per profile and applied once.

Each file is written once with a few placeholders and rendered for a profile:

========================  ======================================  =====================================================
placeholder               ``local`` (chdb / single server)        ``cluster``
========================  ======================================  =====================================================
``${db}``                 database                                database
``${on_cluster}``         (empty)                                 ``ON CLUSTER <cluster>``
``${cluster}``            cluster name                            cluster name
``${engine:X(args)}``     ``X(args)``                             ``ReplicatedX('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', args)``
``${dedup_window}``       ``non_replicated_deduplication_window``  ``replicated_deduplication_window``
========================  ======================================  =====================================================

A file whose first line is ``-- profile: cluster`` applies only to that profile (Distributed tables).
Applied files are recorded in ``schema_migrations`` (version, name, checksum, profile); re-running
skips them, and every statement is ``IF NOT EXISTS`` so a half-applied file can be re-run safely.
After the DDL, the seed data (sinks/seeds/*.csv) is loaded when its checksum changed.

``cluster_security.sql`` (roles, users, row policies per city/county) is not a migration: it needs
a real server with SQL-driven access control (the embedded engine refuses CREATE ROLE/ROW POLICY),
see :func:`security_sql` and sinks/README.md.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from yijian.config import Settings
from yijian.sinks.client import check_identifier

MIGRATIONS = Path(__file__).parent / "migrations"
SEEDS = Path(__file__).parent / "seeds"
DEDUP_WINDOW = 10_000
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_ENGINE = re.compile(r"\$\{engine:([A-Za-z]+)\((.*?)\)\}")
_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    profiles: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def migrations(profile: str | None = None) -> list[Migration]:
    """The migration files in order (only those that apply to ``profile`` if given)."""
    out = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        m = _FILE.match(path.name)
        if not m:
            continue
        first = path.read_text(encoding="utf-8").splitlines()[0:1]
        profiles = ("local", "cluster")
        if first and first[0].startswith("-- profile:"):
            profiles = tuple(p.strip() for p in first[0].split(":", 1)[1].split(","))
        mig = Migration(int(m.group(1)), m.group(2), path, profiles)
        if profile is None or profile in profiles:
            out.append(mig)
    return out


def render(sql: str, profile: str, database: str, cluster: str = "yijian") -> str:
    """Render one migration text for a profile (see the module docstring)."""
    if profile not in ("local", "cluster"):
        raise ValueError(f"unknown DDL profile {profile!r} (local or cluster)")
    check_identifier(database)
    check_identifier(cluster)

    def engine(m: re.Match) -> str:
        kind, args = m.group(1), m.group(2).strip()
        if profile == "local":
            return f"{kind}({args})"
        rep = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
        return f"Replicated{kind}({rep}{', ' + args if args else ''})"

    sql = _ENGINE.sub(engine, sql)
    values = {
        "db": database,
        "cluster": cluster,
        "on_cluster": "" if profile == "local" else f"ON CLUSTER {cluster}",
        "dedup_window": (
            f"non_replicated_deduplication_window = {DEDUP_WINDOW}"
            if profile == "local"
            else f"replicated_deduplication_window = {DEDUP_WINDOW}"
        ),
    }

    def placeholder(m: re.Match) -> str:
        if m.group(1) not in values:
            raise KeyError(f"unknown placeholder ${{{m.group(1)}}}")
        return values[m.group(1)]

    return _PLACEHOLDER.sub(placeholder, sql)


def statements(sql: str) -> list[str]:
    """Split a rendered file into statements (a statement ends with ';' at the end of a line)."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [p.strip() for p in parts if p.strip()]


def rendered_statements(profile: str, database: str, cluster: str = "yijian") -> list[tuple[Migration, str]]:
    return [(m, s) for m in migrations(profile) for s in statements(render(m.text, profile, database, cluster))]


_LEDGER = """CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster}
(
    version UInt32 COMMENT 'class=internal; 迁移版本',
    name String COMMENT 'class=internal; 迁移名称',
    checksum String COMMENT 'class=internal; 文件校验和',
    profile LowCardinality(String) COMMENT 'class=internal; DDL配置',
    applied_at DateTime64(3, 'UTC') COMMENT 'class=internal; 应用时间'
)
ENGINE = {engine}
ORDER BY (name, version)"""


def _ledger_ddl(profile: str, db: str, cluster: str) -> str:
    return render(
        _LEDGER.replace("{db}", "${db}").replace("{on_cluster}", "${on_cluster}").replace("{engine}", "${engine:ReplacingMergeTree(applied_at)}"),
        profile,
        db,
        cluster,
    )


@dataclass
class MigrateResult:
    applied: list[str]
    skipped: list[str]
    seeded: list[str]


def migrate(settings: Settings, client=None, profile: str | None = None) -> MigrateResult:
    """Apply pending migrations and seeds to ``settings.clickhouse_database`` (idempotent)."""
    from yijian.sinks.client import make_client

    profile = profile or settings.clickhouse_profile
    db = check_identifier(settings.clickhouse_database)
    cluster = settings.clickhouse_cluster
    client = client or make_client(settings)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}" + (f" ON CLUSTER {cluster}" if profile == "cluster" else ""))
    client.command(_ledger_ddl(profile, db, cluster))
    done = {
        (row[0], row[1]): row[2]
        for row in client.query(f"SELECT name, version, argMax(checksum, applied_at) FROM {db}.schema_migrations GROUP BY name, version").result_rows
    }
    result = MigrateResult([], [], [])
    for mig in migrations(profile):
        key = (mig.name, mig.version)
        if key in done:
            if done[key] != mig.checksum:
                raise RuntimeError(
                    f"迁移文件 {mig.path.name} 在应用后被修改 / migration {mig.path.name} changed after it was applied "
                    f"(checksum {done[key]} -> {mig.checksum}); add a new NNN_*.sql file instead of editing an applied one"
                )
            result.skipped.append(mig.path.name)
            continue
        for stmt in statements(render(mig.text, profile, db, cluster)):
            client.command(stmt)
        client.insert(
            f"{db}.schema_migrations",
            [[mig.version, mig.name, mig.checksum, profile, datetime.now(timezone.utc)]],
            column_names=["version", "name", "checksum", "profile", "applied_at"],
        )
        result.applied.append(mig.path.name)
    result.seeded = seed(client, db)
    return result


def read_regions(path: Path | None = None) -> list[dict]:
    """The division table (sinks/seeds/regions_520000.csv) with ``current_code`` resolved."""
    rows: list[dict] = []
    for p in [path] if path else sorted(SEEDS.glob("regions_*.csv")):
        with open(p, encoding="utf-8", newline="") as f:
            rows.extend(csv.DictReader(f))
    by_code = {r["code"]: r for r in rows}
    for r in rows:
        cur, hops = r["code"], 0
        while by_code.get(cur, {}).get("successor") and hops < 10:
            cur, hops = by_code[cur]["successor"], hops + 1
        r["current_code"] = cur
    return rows


def seed(client, db: str) -> list[str]:
    """Load seed CSVs whose checksum is not yet in ``schema_migrations`` (name ``seed:<file>``)."""
    import pyarrow as pa

    seeded = []
    for path in sorted(SEEDS.glob("regions_*.csv")):
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        name = f"seed:{path.name}"
        have = client.query(
            f"SELECT count() FROM {db}.schema_migrations WHERE name = {{n:String}} AND checksum = {{c:String}}",
            parameters={"n": name, "c": checksum},
        ).result_rows[0][0]
        if have:
            continue
        rows = read_regions(path)
        version = int(datetime.now(timezone.utc).timestamp() * 1000)
        table = pa.table(
            {
                "code": [r["code"] for r in rows],
                "name": [r["name"] for r in rows],
                "level": [r["level"] for r in rows],
                "parent_code": [r["parent_code"] for r in rows],
                "city_code": [r["city_code"] for r in rows],
                "province_code": [r["province_code"] for r in rows],
                "valid_from": pa.array([date.fromisoformat(r["valid_from"]) for r in rows], pa.date32()),
                "valid_to": pa.array([date.fromisoformat(r["valid_to"]) if r["valid_to"] else None for r in rows], pa.date32()),
                "successor": [r["successor"] for r in rows],
                "current_code": [r["current_code"] for r in rows],
                "seed_version": pa.array([version] * len(rows), pa.uint64()),
            }
        )
        client.insert_arrow(f"{db}.regions", table)
        client.insert(
            f"{db}.schema_migrations",
            [[0, name, checksum, "seed", datetime.now(timezone.utc)]],
            column_names=["version", "name", "checksum", "profile", "applied_at"],
        )
        seeded.append(path.name)
    return seeded


def security_sql(database: str, regions: list[dict] | None = None, with_counties: bool = True) -> str:
    """Roles, users' template and row policies for a real ClickHouse server (not the embedded engine).

    - ``yijian_sink``: INSERT on the fact/event tables, SELECT on schema_migrations (for the sink user).
    - ``yijian_analyst_province``: SELECT on everything (row policy: all rows).
    - ``yijian_analyst_city_<code>`` / ``yijian_analyst_county_<code>``: SELECT, rows of that
      prefecture / county only, on every table that has ``city_code`` / ``county_code``.
    Tables without region columns (regions, institutions) stay readable by every analyst role.
    """
    check_identifier(database)
    regions = regions if regions is not None else read_regions()
    region_tables = ["encounters", "prescription_items", "charges", "quality_issues", "findings", "rejected",
                     "finding_handling", "daily_records", "daily_quality", "daily_findings"]
    out = [
        f"-- Access control for database {database} (generated by yijian.sinks.migrate.security_sql).",
        "-- Needs a ClickHouse server with SQL-driven access control (access_management=1 for the admin).",
        "-- The embedded engine (chdb) refuses these statements (ACCESS_DENIED); they are tested only for syntax there.",
        "CREATE ROLE IF NOT EXISTS yijian_sink;",
        *[f"GRANT INSERT, SELECT ON {database}.{t} TO yijian_sink;" for t in region_tables[:7] + ["institutions"]],
        f"GRANT SELECT, INSERT ON {database}.schema_migrations TO yijian_sink;",
        "CREATE ROLE IF NOT EXISTS yijian_analyst_province;",
        f"GRANT SELECT ON {database}.* TO yijian_analyst_province;",
    ]
    roles_city = []
    current = [r for r in regions if not r["valid_to"]]
    for r in current:
        if r["level"] == "city" or (with_counties and r["level"] == "county"):
            col = "city_code" if r["level"] == "city" else "county_code"
            role = f"yijian_analyst_{r['level']}_{r['code']}"
            roles_city.append(role)
            out.append(f"CREATE ROLE IF NOT EXISTS {role};  -- {r['name']}")
            out.append(f"GRANT SELECT ON {database}.* TO {role};")
            for t in region_tables:
                out.append(
                    f"CREATE ROW POLICY IF NOT EXISTS rp_{r['code']}_{t} ON {database}.{t} "
                    f"FOR SELECT USING {col} = '{r['code']}' TO {role};"
                )
    # Analysts of the province see all rows: a permissive policy so that restrictive ones above do
    # not hide rows from them (ClickHouse: once a table has a policy, users without one see nothing).
    for t in region_tables:
        out.append(f"CREATE ROW POLICY IF NOT EXISTS rp_all_{t} ON {database}.{t} FOR SELECT USING 1 TO yijian_analyst_province, yijian_sink;")
    out.append("-- Users: create them with a password from your secret store, e.g.")
    out.append("-- CREATE USER analyst_gy IDENTIFIED WITH sha256_password BY '<from vault>' DEFAULT ROLE yijian_analyst_city_520100;")
    return "\n".join(out) + "\n"
