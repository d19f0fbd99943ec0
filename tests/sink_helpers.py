"""Helpers shared by the sink and dashboard tests (not a test module)."""

from __future__ import annotations

import time


def drain(sink, messages: int, timeout: float = 90.0) -> None:
    """Poll ``sink`` until it committed ``messages`` messages in total (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while sink.committed_messages < messages:
        assert time.monotonic() < deadline, f"sink committed {sink.committed_messages} of {messages} messages; health={sink.health()}"
        sink.poll_once(timeout=0.1)


def one(client, sql: str, **params):
    return client.query(sql, parameters=params).result_rows[0][0]


class FailingClient:
    """Wraps a real clickhouse-connect client; ``insert_arrow`` raises while ``failing`` is set,
    after letting ``pass_first`` inserts through (a flush that fails half-way).

    Stands in for an unavailable ClickHouse: the embedded engine cannot be stopped or have its
    permissions revoked from inside the process that owns it, so the outage is injected here."""

    def __init__(self, inner, pass_first: int = 0):
        self.inner = inner
        self.failing = True
        self.pass_first = pass_first
        self.calls = 0
        self.failures = 0

    def insert_arrow(self, table, arrow, settings=None):
        self.calls += 1
        if self.failing and self.calls > self.pass_first:
            self.failures += 1
            raise ConnectionError("ClickHouse unavailable (injected by the test)")
        return self.inner.insert_arrow(table, arrow, settings=settings)

    def __getattr__(self, name):
        return getattr(self.inner, name)
