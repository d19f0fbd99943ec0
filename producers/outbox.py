"""The SDK's durable local outbox (SQLite in WAL mode).

One transaction stores a record's Avro bytes *and* assigns its sequence number, so numbers are
gap-free per (institution, producer id, record type), survive restarts, and a record whose ``send()``
returned is on disk even if the HIS process is killed a microsecond later. Rows stay ``pending`` until
the broker confirms their envelope; then the payload is dropped and the row stays as history (for
heartbeats and the daily manifest, 日结对账).

Tables:
- ``seq``: next sequence number per (institution, producer, record type);
- ``records``: one row per record: seq, record id/version/status, business date, amount, payload
  (NULL once sent), state 0 = pending / 1 = sent;
- ``backfill``: last row sent per file for resumable `yijian send`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

PENDING, SENT = 0, 1

_DDL = """
CREATE TABLE IF NOT EXISTS seq (
    institution TEXT NOT NULL, producer_id TEXT NOT NULL, record_type TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    PRIMARY KEY (institution, producer_id, record_type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    institution TEXT NOT NULL, producer_id TEXT NOT NULL, record_type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record_id TEXT, version INTEGER, status TEXT,
    business_date TEXT, amount TEXT,
    created REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    sent_time REAL,
    payload BLOB,
    PRIMARY KEY (institution, producer_id, record_type, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_pending ON records (state, record_type, seq);
CREATE INDEX IF NOT EXISTS records_day ON records (business_date, record_type);
CREATE TABLE IF NOT EXISTS backfill (
    file_key TEXT PRIMARY KEY, last_row INTEGER NOT NULL, updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxRow:
    record_type: str
    seq: int
    payload: bytes
    created: float


@dataclass(frozen=True)
class RecordMeta:
    """What the outbox keeps about a record besides its bytes (for manifests)."""

    record_id: str | None = None
    version: int | None = None
    status: str | None = None
    business_date: str | None = None  # ISO date
    amount: Decimal | None = None


class Outbox:
    """Thread-safe durable queue of encoded records for one institution and producer id."""

    def __init__(self, path: Path, institution: str, producer_id: str, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.institution = institution
        self.producer_id = producer_id
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._db.executescript(_DDL)

    # --- writing ---------------------------------------------------------------------------------
    def append(
        self,
        record_type: str,
        items: list[tuple[bytes, RecordMeta]],
        backfill: tuple[str, int] | None = None,
    ) -> list[int]:
        """Store encoded records and give them the next sequence numbers, in one transaction.

        ``backfill=(file_key, row)`` also records the progress of a file import atomically.
        Returns the sequence numbers assigned (consecutive).
        """
        if not items and backfill is None:
            return []
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT next_seq FROM seq WHERE institution=? AND producer_id=? AND record_type=?",
                    (self.institution, self.producer_id, record_type),
                ).fetchone()
                first = row[0] if row else 1
                seqs = list(range(first, first + len(items)))
                if items:
                    db.executemany(
                        "INSERT INTO records (institution, producer_id, record_type, seq, record_id, version, status,"
                        " business_date, amount, created, state, payload) VALUES (?,?,?,?,?,?,?,?,?,?,0,?)",
                        [
                            (
                                self.institution, self.producer_id, record_type, s, m.record_id, m.version, m.status,
                                m.business_date, None if m.amount is None else str(m.amount), now, payload,
                            )
                            for s, (payload, m) in zip(seqs, items)
                        ],
                    )
                    db.execute(
                        "INSERT INTO seq (institution, producer_id, record_type, next_seq) VALUES (?,?,?,?)"
                        " ON CONFLICT (institution, producer_id, record_type) DO UPDATE SET next_seq=excluded.next_seq",
                        (self.institution, self.producer_id, record_type, first + len(items)),
                    )
                if backfill is not None:
                    db.execute(
                        "INSERT INTO backfill (file_key, last_row, updated) VALUES (?,?,?)"
                        " ON CONFLICT (file_key) DO UPDATE SET last_row=excluded.last_row, updated=excluded.updated",
                        (backfill[0], backfill[1], now),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return seqs

    def mark_sent(self, record_type: str, first_seq: int, count: int) -> int:
        """The broker confirmed seqs [first_seq, first_seq + count): drop their payloads, keep history."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE records SET state=1, payload=NULL, sent_time=? WHERE institution=? AND producer_id=?"
                " AND record_type=? AND seq BETWEEN ? AND ? AND state=0",
                (time.time(), self.institution, self.producer_id, record_type, first_seq, first_seq + count - 1),
            )
            return cur.rowcount

    # --- reading ---------------------------------------------------------------------------------
    def pending_types(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT record_type FROM records WHERE state=0 AND institution=? AND producer_id=?",
                (self.institution, self.producer_id),
            ).fetchall()
        return sorted(r[0] for r in rows)

    def pending(self, record_type: str, after_seq: int, limit: int) -> list[OutboxRow]:
        """Pending rows of a type with seq > after_seq, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload, created FROM records WHERE state=0 AND institution=? AND producer_id=?"
                " AND record_type=? AND seq>? ORDER BY seq LIMIT ?",
                (self.institution, self.producer_id, record_type, after_seq, limit),
            ).fetchall()
        return [OutboxRow(record_type, s, p, c) for s, p, c in rows]

    def depth(self, record_type: str | None = None) -> int:
        q = "SELECT count(*) FROM records WHERE state=0 AND institution=? AND producer_id=?"
        args: tuple = (self.institution, self.producer_id)
        if record_type:
            q += " AND record_type=?"
            args += (record_type,)
        with self._lock:
            return self._db.execute(q, args).fetchone()[0]

    def last_sent_seq(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record_type, max(seq) FROM records WHERE state=1 AND institution=? AND producer_id=? GROUP BY record_type",
                (self.institution, self.producer_id),
            ).fetchall()
        return {t: s for t, s in rows}

    def next_seq(self, record_type: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT next_seq FROM seq WHERE institution=? AND producer_id=? AND record_type=?",
                (self.institution, self.producer_id, record_type),
            ).fetchone()
        return row[0] if row else 1

    def day_summary(self, business_date: str, record_types: tuple[str, ...]) -> list[dict]:
        """Counts, amounts and seq range per record type for one business day (from the history).

        ``record_count``: every submitted record version with that business date (each has its own seq);
        ``amount_sum``: the amounts of those same submissions (corrections and cancellations included),
        so the platform can reconcile what it received one submission at a time;
        ``first_seq``/``last_seq``: 0 when the day has no record of that type.
        """
        out = []
        with self._lock:
            for rt in record_types:
                rows = self._db.execute(
                    "SELECT seq, record_id, version, status, amount FROM records WHERE institution=? AND producer_id=?"
                    " AND record_type=? AND business_date=? ORDER BY seq",
                    (self.institution, self.producer_id, rt, business_date),
                ).fetchall()
                total = sum((Decimal(a) for *_rest, a in rows if a is not None), Decimal("0"))
                out.append(
                    {
                        "record_type": rt,
                        "record_count": len(rows),
                        "amount_sum": total.quantize(Decimal("0.01")),
                        "first_seq": rows[0][0] if rows else 0,
                        "last_seq": rows[-1][0] if rows else 0,
                    }
                )
        return out

    # --- backfill progress -----------------------------------------------------------------------
    def backfill_position(self, file_key: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT last_row FROM backfill WHERE file_key=?", (file_key,)).fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
