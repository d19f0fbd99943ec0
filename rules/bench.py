"""Micro-benchmark of the rule engine: records/s with every shipped pack vs with zero rules."""

from __future__ import annotations

import copy
import random
import time

from yijian.rules.engine import RuleEngine
from yijian.rules.history import HistoryStore
from yijian.rules.model import load_fixture, load_packs


def synthetic_records(n: int, seed: int = 7) -> list[dict]:
    """Records shaped like the fixture bases, with codes drawn from the packs' knowledge points."""
    ctx, bases = load_fixture()
    packs = load_packs()
    codes = sorted({c for p in packs for r in p.rules for c in r.params.get("codes", []) if not c.startswith("T")})
    codes += ["XA02BCJ101A104124914176", "001102000010000"] * 20  # codes that trigger nothing
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = rnd.choice(("encounter", "prescription", "charge", "charge"))
        rec = copy.deepcopy(bases[kind])
        rec["record_id"] = f"B{i}"
        rec["patient"]["pseudonym"] = f"p{rnd.randrange(max(1, n // 10))}"
        rec["patient"]["age"] = rnd.randrange(0, 90)
        rec["patient"]["sex"] = rnd.choice("12")
        day = 1 + i * 28 // max(n, 1)
        ts = f"2025-06-{day:02d}T{rnd.randrange(8, 20):02d}:00:00+08:00"
        rec["meta"]["event_time"] = ts
        if kind == "charge":
            rec["med_list_codg"] = rnd.choice(codes)
            rec["fee_ocur_time"] = ts
        elif kind == "prescription":
            rec["rx_time"] = ts
            for j in range(rnd.randrange(1, 4)):
                item = copy.deepcopy(rec["items"][0])
                item["item_no"] = j + 1
                item["med_list_codg"] = rnd.choice(codes)
                rec["items"].append(item) if j else rec["items"].__setitem__(0, item)
        else:
            rec["med_type"] = rnd.choice(("outpatient", "inpatient"))
            rec["begntime"] = ts
        out.append(rec)
    return out


def _run(engine: RuleEngine, records: list[dict]) -> float:
    store = HistoryStore(max_days=max(engine.history_days, 1))
    t0 = time.perf_counter()
    for rec in records:
        engine.process(rec, store.get(rec["patient"]["pseudonym"]))
    return time.perf_counter() - t0


def bench_engine(n_records: int = 5000) -> dict:
    """Records/s through ``RuleEngine.process`` (facts + rules + history update) with all packs and
    with zero rules, on the same synthetic records."""
    ctx, _ = load_fixture()
    records = synthetic_records(n_records)
    full = RuleEngine(load_packs(), ctx)
    empty = RuleEngine([], ctx)
    t_full = _run(full, records)
    t_empty = _run(empty, records)
    return {
        "records": n_records,
        "rules": len(full.rules),
        "records_per_s_all_packs": round(n_records / t_full, 1),
        "records_per_s_no_rules": round(n_records / t_empty, 1),
        "template_calls": sum(full.calls.values()),
        "template_calls_per_record": round(sum(full.calls.values()) / n_records, 2),
        "overhead_ratio": round(t_full / t_empty, 2) if t_empty else None,
    }
