"""Stall watchdog: a raw partition this replica owns has messages waiting, yet nothing was processed
from it for ``stall_after``. faust-streaming can leave a partition paused after a rebalance (its
"stream stopped processing" reports); the replica then looks healthy while data piles up.

A partition whose messages wait behind other partitions' backlog in the replica's one stream is not
stalled, only slow: it counts as stalled when Faust is not fetching it (paused, not active) or when
the replica processed nothing at all for ``stall_after``.

The worker's ``/health`` answers 503 with the stalled partitions, so the liveness probe (Kubernetes)
or the local supervisor (deploy/local.py) restarts the replica; its partitions are re-processed from
the last commit (outputs are idempotent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class StallWatch:
    stall_after: float
    progress: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)  # tp → (next offset, when)
    last_any: float | None = None  # when this replica last processed anything

    def processed(self, topic: str, partition: int, offset: int, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        self.progress[(topic, partition)] = (offset + 1, now)
        self.last_any = now

    def stalled(self, owned: dict[tuple[str, int], int | None], now: float | None = None,
                fetching: set[tuple[str, int]] | None = None) -> dict[str, dict]:
        """Owned partitions (tp → highwater) with waiting messages and no progress for ``stall_after``,
        that are either not being fetched (``fetching``: the consumer's active partitions; None =
        unknown, judge every partition) or on a replica that processed nothing for ``stall_after``.
        A highwater of None (no fetch response yet for that partition) is not judged yet."""
        now = now if now is not None else time.monotonic()
        replica_idle = self.last_any is None or now - self.last_any > self.stall_after
        out = {}
        for tp, highwater in owned.items():
            if highwater is None:
                continue
            if tp not in self.progress:
                # owned but never processed: start the clock when first seen
                self.progress[tp] = (-1, now)
            next_offset, since = self.progress[tp]
            waiting = highwater - max(next_offset, 0) if next_offset >= 0 else highwater
            starved = fetching is None or tp not in fetching or replica_idle
            if waiting > 0 and now - since > self.stall_after and starved:
                out[f"{tp[0]}:{tp[1]}"] = {"waiting": waiting, "idle_seconds": round(now - since, 1)}
        for tp in [tp for tp in self.progress if tp not in owned]:
            del self.progress[tp]  # revoked: another replica owns it now
        return out
