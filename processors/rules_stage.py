"""The rules stage of the processors: the engine in force, rebuilt when the rules topic changes, and
per-patient histories for stateful rules.

Standardized records are repartitioned by patient pseudonym (topic ``std.by_patient``) so that all
records of one patient, from every institution, meet in one partition; their history lives in a
changelog-backed table keyed by pseudonym, bounded per patient (window + event cap) and swept when a
patient has no event inside the longest rule window.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from yijian.rules.deployment import DeployedState, apply_message
from yijian.rules.engine import RuleEngine
from yijian.rules.history import PatientHistory
from yijian.rules.model import RuleContext

log = logging.getLogger("yijian.processors.rules")


class RulesStage:
    def __init__(self, context: RuleContext | None = None, cache_size: int = 20_000) -> None:
        self.state = DeployedState({}, {})
        self.context = context or RuleContext()
        self.engine = RuleEngine([], self.context)
        self.version = ""
        self.cache: dict[str, PatientHistory] = {}
        self.cache_size = cache_size

    def on_message(self, key: str, value: bytes | None) -> bool:
        """Apply one rules-topic message; rebuilds the engine if the packs in force changed."""
        if not apply_message(self.state, key, value):
            return False
        self.rebuild()
        return True

    def set_context(self, context: RuleContext) -> None:
        self.context = context
        self.rebuild()

    def rebuild(self) -> None:
        packs = [self.state.in_force[k] for k in sorted(self.state.in_force)]
        engine = RuleEngine(packs, self.context)  # compiled before the swap: evaluation never sees half a rebuild
        self.engine = engine
        version = ",".join(f"{p.id}@{p.version}" for p in packs)
        if version != self.version:
            log.warning("rules in force: %s (%d rules)", version or "none", len(engine.rules))
        self.version = version

    @property
    def history_days(self) -> int:
        return max(self.engine.history_days, 31)

    def evaluate_batch(self, records: list[dict], load) -> tuple[list, dict[str, dict | None]]:
        """Findings for a batch of standardized records; ``load(pseudonym)`` gives a stored history.

        Returns the findings and, per patient touched, the history to store (None: drop it), so the
        caller writes each patient's changelog entry once per batch instead of once per record.
        """
        now = datetime.now(timezone.utc)
        findings: list = []
        touched: dict[str, PatientHistory] = {}
        for record in records:
            pseudo = record["patient"]["pseudonym"]
            history = touched.get(pseudo)
            if history is None:
                history = self.cache.get(pseudo)
                if history is None:
                    stored = load(pseudo)
                    history = PatientHistory.from_dict(stored) if stored else PatientHistory(pseudo, max_days=self.history_days)
                history.max_days = self.history_days
                touched[pseudo] = history
            findings.extend(self.engine.process(record, history, now=now))
        out: dict[str, dict | None] = {}
        for pseudo, history in touched.items():
            history.prune()
            self.remember(pseudo, history)
            out[pseudo] = history.to_dict() if len(history) else None
        return findings, out

    # in-process cache of deserialized histories (the table holds the durable copy); cleared on rebalance
    def remember(self, pseudo: str, history: PatientHistory) -> None:
        self.cache.pop(pseudo, None)
        self.cache[pseudo] = history
        while len(self.cache) > self.cache_size:
            self.cache.pop(next(iter(self.cache)))

    def forget_all(self) -> None:
        self.cache.clear()


def stale(stored: dict, history_days: int) -> bool:
    """True when a stored history has no event left inside the window."""
    h = PatientHistory.from_dict(stored)
    h.max_days = history_days
    h.prune()
    return len(h) == 0
