"""Stall watchdog: a raw partition this replica owns has messages waiting, yet nothing was processed
from it for ``stall_after``. faust-streaming can leave a partition paused after a rebalance (its
"stream stopped processing" reports); the replica then looks healthy while data piles up.

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

    def processed(self, topic: str, partition: int, offset: int, now: float | None = None) -> None:
        self.progress[(topic, partition)] = (offset + 1, now if now is not None else time.monotonic())

    def stalled(self, owned: dict[tuple[str, int], int], now: float | None = None) -> dict[str, dict]:
        """Owned partitions (tp → highwater) with waiting messages and no progress for ``stall_after``."""
        now = now if now is not None else time.monotonic()
        out = {}
        for tp, highwater in owned.items():
            if tp not in self.progress:
                # owned but never processed: start the clock when first seen
                self.progress[tp] = (-1, now)
            next_offset, since = self.progress[tp]
            waiting = highwater - max(next_offset, 0) if next_offset >= 0 else highwater
            if waiting > 0 and now - since > self.stall_after:
                out[f"{tp[0]}:{tp[1]}"] = {"waiting": waiting, "idle_seconds": round(now - since, 1)}
        for tp in [tp for tp in self.progress if tp not in owned]:
            del self.progress[tp]  # revoked: another replica owns it now
        return out
