"""Small HTTP endpoints (stdlib http.server): the sink's /health, /metrics and local /query, and the
dashboard (/ , /static/*, /api/*).

Local process model: the embedded engine allows one process per data path. The process that owns
it (``yijian sink``, or ``yijian dashboard --with-sink``) serves ``POST /query`` on
127.0.0.1:<sink_http_port>; ``yijian query`` and ``yijian dashboard`` use it when it answers and
open the path themselves otherwise. /query accepts read-only statements only (SELECT, WITH, SHOW,
DESCRIBE, EXPLAIN, EXISTS) and binds parameters server-side. It listens on loopback by default and
has no authentication: on a server deployment analysts use ClickHouse itself (users, roles, row
policies; see sinks/README.md), not this endpoint.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from yijian.sinks.queries import Backend, is_readonly, jsonable

log = logging.getLogger("yijian.http")
WEB = Path(__file__).parent / "web"


class App:
    """What one server exposes. ``sink`` adds /metrics and sink health; ``backend`` adds /query and
    (with ``dashboard``) the dashboard API."""

    def __init__(self, backend: Backend | None = None, sink=None, dashboard: bool = False, query_endpoint: bool = False, settings=None, assets: Path | None = None):
        self.backend = backend
        self.sink = sink
        self.dashboard = dashboard
        self.query_endpoint = query_endpoint and backend is not None
        self.settings = settings
        self.assets = assets


def _handler(app: App):
    class Handler(BaseHTTPRequestHandler):
        server_version = "yijian"

        def log_message(self, fmt, *args):  # quiet; requests may carry SQL, never patient data
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, code: int, body: bytes, ctype: str = "application/json; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj) -> None:
            self._send(code, json.dumps(obj, ensure_ascii=False, default=str).encode())

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            path = url.path
            try:
                if path == "/health":
                    body = {"status": "ok", "query_endpoint": app.query_endpoint, "dashboard": app.dashboard}
                    if app.sink is not None:
                        body["sink"] = app.sink.health()
                        body["status"] = body["sink"]["status"]
                    return self._json(200, body)
                if path == "/metrics" and app.sink is not None:
                    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

                    return self._send(200, generate_latest(app.sink.metrics.registry), CONTENT_TYPE_LATEST)
                if app.dashboard:
                    if path in ("/", "/index.html"):
                        return self._send(200, (WEB / "index.html").read_bytes(), "text/html; charset=utf-8")
                    if path.startswith("/static/") and app.assets is not None:
                        name = path[len("/static/"):]
                        f = (app.assets / name).resolve()
                        if f.parent == app.assets.resolve() and f.is_file():
                            ctype = "application/javascript" if name.endswith(".js") else "application/json"
                            return self._send(200, f.read_bytes(), ctype)
                    if path == "/api/summary":
                        from yijian.sinks.queries import province_summary

                        return self._json(200, province_summary(app.backend, app.settings))
                    if path.startswith("/api/query/"):
                        name = path[len("/api/query/"):]
                        params = {k: v[0] for k, v in parse_qs(url.query).items()}
                        res = app.backend.run(name, params, app.settings)
                        return self._json(200, {"columns": res.columns, "rows": jsonable(res.rows)})
                self._json(404, {"error": "not found"})
            except (KeyError, ValueError) as exc:
                self._json(400, {"error": str(exc)})
            except Exception as exc:
                log.warning("request %s failed: %s", path, exc)
                self._json(500, {"error": f"{type(exc).__name__}: {str(exc)[:500]}"})

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/query" or not app.query_endpoint:
                return self._json(404, {"error": "not found"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(length) or b"{}")
                sql = req.get("sql", "")
                if not is_readonly(sql):
                    return self._json(400, {"error": "只允许只读查询 / only read-only statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS)"})
                res = app.backend.sql(sql, req.get("parameters") or {})
                self._json(200, {"columns": res.columns, "rows": jsonable(res.rows)})
            except Exception as exc:
                self._json(400, {"error": f"{type(exc).__name__}: {str(exc)[:1000]}"})

    return Handler


class Server:
    """A ThreadingHTTPServer in a daemon thread; ``port=0`` picks a free port (see ``.port``)."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0):
        self.httpd = ThreadingHTTPServer((host, port), _handler(app))
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"http-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "Server":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
