"""Coalesce writes to a Faust table within one message.

Each assignment to a Faust table sends a changelog message; the per-institution checks touch the same
keys (counters, connection state) once per record. :class:`TableBuffer` reads through to the table,
keeps writes in memory and applies each changed key once in :meth:`flush`.
"""

from __future__ import annotations

from typing import Any

_DELETED = object()


class TableBuffer:
    def __init__(self, table: Any) -> None:
        self.table = table
        self.changes: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.changes:
            value = self.changes[key]
            return default if value is _DELETED else value
        return self.table.get(key, default)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _DELETED)
        if value is _DELETED:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.changes[key] = value

    def __delitem__(self, key: str) -> None:
        self.changes[key] = _DELETED

    def items(self):
        keys = set(self.table.keys()) | set(self.changes)
        for key in keys:
            value = self.get(key, _DELETED)
            if value is not _DELETED:
                yield key, value

    def keys(self):
        return [k for k, _ in self.items()]

    def flush(self) -> int:
        """Apply the buffered changes (one changelog message per changed key); returns how many."""
        for key, value in self.changes.items():
            if value is _DELETED:
                self.table.pop(key, None)
            else:
                self.table[key] = value
        n = len(self.changes)
        self.changes.clear()
        return n
