"""The analyst SQL library (sinks/queries/*.sql) and how to run it.

Each file starts with a header::

    -- name: quality_score
    -- description: ...
    -- parameters: level String (province|city|county|institution), date_from Date, ...
    -- grain: one row per unit of the level

Parameters are server-side (``{name:Type}`` in the SQL, bound by ClickHouse, never spliced into the
text). :func:`run` fills defaults (last 30 days, level ``county``, weights from Settings) for any
parameter not given. Tables are unqualified: the client's database is used.

:class:`Backend` hides where the engine lives: a clickhouse-connect client (server, or an embedded
path this process owns) or the local HTTP query endpoint of the process that owns the embedded path.
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

QUERIES = Path(__file__).parent / "queries"
_PARAM = re.compile(r"\{([a-z_]+):([A-Za-z0-9(), ']+)\}")


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    parameters: str
    grain: str
    sql: str

    @property
    def param_names(self) -> list[str]:
        seen: list[str] = []
        for m in _PARAM.finditer(self.sql):
            if m.group(1) not in seen:
                seen.append(m.group(1))
        return seen


def load(name: str) -> Query:
    path = QUERIES / f"{name}.sql"
    if not path.exists():
        raise KeyError(f"没有该查询 / no query named {name!r}; known: {', '.join(names())}")
    text = path.read_text(encoding="utf-8")
    head: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^--\s*(name|description|parameters|grain):\s*(.*)$", line)
        if m:
            head[m.group(1)] = m.group(2).strip()
        elif not line.startswith("--"):
            break
    missing = {"name", "description", "parameters", "grain"} - head.keys()
    if missing:
        raise ValueError(f"{path.name}: header lacks {sorted(missing)}")
    return Query(head["name"], head["description"], head["parameters"], head["grain"], text)


def names() -> list[str]:
    return sorted(p.stem for p in QUERIES.glob("*.sql"))


def all_queries() -> list[Query]:
    return [load(n) for n in names()]


def defaults(settings=None, today: date | None = None) -> dict[str, Any]:
    from yijian.config import get_settings

    settings = settings or get_settings()
    today = today or datetime.now(timezone.utc).date()
    w = settings.quality_weights
    return {
        "level": "county",
        "date_from": today - timedelta(days=30),
        "date_to": today,
        "by_day": 0,
        "w_completeness": float(w.get("completeness", 0)),
        "w_timeliness": float(w.get("timeliness", 0)),
        "w_consistency": float(w.get("consistency", 0)),
        "w_validity": float(w.get("validity", 0)),
        "w_mapping": float(w.get("mapping", 0)),
        "as_of": datetime.now(timezone.utc),
        "stale_hours": 24,
        "unit": "",
        "institution": "",
    }


LEVELS = ("province", "city", "county", "institution")


def bind(query: Query, params: dict[str, Any] | None = None, settings=None) -> dict[str, Any]:
    params = dict(params or {})
    if "level" in params and params["level"] not in LEVELS:
        raise ValueError(f"level 必须是 / must be one of {', '.join(LEVELS)} (got {params['level']!r})")
    base = defaults(settings)
    unknown = set(params) - set(query.param_names)
    if unknown:
        raise ValueError(f"查询 {query.name} 没有参数 / query {query.name} has no parameter(s) {sorted(unknown)}; it takes {query.param_names}")
    return {n: params.get(n, base.get(n)) for n in query.param_names}


@dataclass
class Result:
    columns: list[str]
    rows: list[list[Any]]

    def dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and v != v:  # NaN
        return None
    return v


class Backend:
    """Runs SQL and returns :class:`Result`; see :func:`open_backend`."""

    def sql(self, sql: str, parameters: dict | None = None) -> Result:  # pragma: no cover - interface
        raise NotImplementedError

    def run(self, name: str, params: dict | None = None, settings=None) -> Result:
        q = load(name)
        return self.sql(q.sql, bind(q, params, settings))


class ClientBackend(Backend):
    def __init__(self, client):
        self.client = client

    def sql(self, sql: str, parameters: dict | None = None) -> Result:
        r = self.client.query(sql, parameters=parameters or {})
        return Result(list(r.column_names), [list(row) for row in r.result_rows])


class HttpBackend(Backend):
    """Talks to ``POST /query`` of the process that owns the embedded engine (the sink)."""

    def __init__(self, base_url: str, timeout: float = 60):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def sql(self, sql: str, parameters: dict | None = None) -> Result:
        body = json.dumps({"sql": sql, "parameters": {k: jsonable(v) for k, v in (parameters or {}).items()}}).encode()
        req = urllib.request.Request(self.base_url + "/query", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"查询失败 / query failed ({exc.code}): {detail}") from None
        return Result(data["columns"], data["rows"])


def endpoint_url(settings) -> str:
    return f"http://{settings.sink_http_host}:{settings.sink_http_port}"


def endpoint_answers(settings, timeout: float = 0.5) -> bool:
    if not settings.sink_http_port:
        return False
    try:
        with urllib.request.urlopen(endpoint_url(settings) + "/health", timeout=timeout) as resp:
            return json.loads(resp.read()).get("query_endpoint", False)
    except Exception:
        return False


def open_backend(settings) -> Backend:
    """A server DSN → direct client. Embedded engine → the owning process's HTTP endpoint if one
    answers (the sink runs), else open the data path in this process."""
    from yijian.sinks.client import make_client

    if settings.is_embedded_clickhouse and endpoint_answers(settings):
        return HttpBackend(endpoint_url(settings))
    try:
        return ClientBackend(make_client(settings))
    except Exception as exc:
        if settings.is_embedded_clickhouse:
            raise RuntimeError(
                f"本地 ClickHouse 数据目录被另一个进程占用, 且其查询端口 {endpoint_url(settings)} 无应答 / the embedded ClickHouse "
                f"path {settings.clickhouse_dsn} is locked by another process and no query endpoint answers at "
                f"{endpoint_url(settings)}; run `yijian sink` (it serves /query) or stop the other process"
            ) from exc
        raise


_READONLY = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.I)
_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*", re.S)


def is_readonly(sql: str) -> bool:
    """True for one read-only statement (leading comments allowed; no second statement after ';')."""
    body = _LEADING_COMMENTS.sub("", sql, count=1)
    return bool(_READONLY.match(body)) and ";" not in body.strip().rstrip(";")


def province_summary(client_or_backend, settings=None, date_from: date | None = None, date_to: date | None = None) -> dict:
    """Headline numbers for the demo: institutions, records by type, quality score, findings by
    severity, connection status counts (latest versions; cancelled excluded)."""
    be = client_or_backend if isinstance(client_or_backend, Backend) else ClientBackend(client_or_backend)
    p = {"date_from": date_from or date(1970, 1, 1), "date_to": date_to or (datetime.now(timezone.utc).date() + timedelta(days=1))}
    rec = be.sql(
        """SELECT 'encounter' AS t, count() FROM encounters FINAL WHERE status != 'cancelled'
             AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
           UNION ALL SELECT 'prescription', uniqExact(institution_code, record_id) FROM prescription_items FINAL WHERE status != 'cancelled'
             AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}
           UNION ALL SELECT 'charge', count() FROM charges FINAL WHERE status != 'cancelled'
             AND toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date}""",
        p,
    )
    sev = be.sql(
        "SELECT severity, count() FROM findings FINAL WHERE toDate(event_time, 'Asia/Shanghai') BETWEEN {date_from:Date} AND {date_to:Date} GROUP BY severity ORDER BY severity",
        p,
    )
    score = be.run("quality_score", {"level": "province", **p}, settings)
    conn = be.run("connection_status", {"date_from": p["date_from"], "date_to": p["date_to"]}, settings)
    status: dict[str, int] = {}
    for row in conn.dicts():
        status[row["status"]] = status.get(row["status"], 0) + 1
    inst = be.sql("SELECT uniqExact(institution_code) FROM institutions").rows[0][0]
    top = score.dicts()[0] if score.rows else {}
    return {
        "institutions": int(inst),
        "records": {r[0]: int(r[1]) for r in rec.rows},
        "quality_score": float(top.get("score") or 0.0),
        "quality": {k: float(top[k]) for k in ("completeness", "timeliness", "consistency", "validity", "mapping") if k in top},
        "findings_by_severity": {r[0]: int(r[1]) for r in sev.rows},
        "connection_status": status,
    }
