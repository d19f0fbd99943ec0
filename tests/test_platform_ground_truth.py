"""The simulator's ground truth and the platform agree exactly (no Kafka: the processors' code is run
in-process on the simulator's envelopes, in emit order, the rules on each patient's records in business
time order).

- quality: every expected (code, record) is raised, with the expected dimension and field (recall 1), and
  every per-record issue raised is expected (precision 1);
- sequence gaps: every non-trailing gap of the ground truth is reported with exactly its range, nothing else;
- rules: every injected violation is found by the rule the ground truth names (recall 1), those rules and
  every 明确 rule fire on nothing else (precision 1); other 可疑 findings are reported, not asserted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest

from yijian.config import Settings
from yijian.keyring import KeyRing
from yijian.processors.contracts import Lineage, decode_batch, encode_batch
from yijian.processors.pipeline import Pipeline
from yijian.processors.refdata_state import rule_context
from yijian.processors.rules_stage import RulesStage
from yijian.producers.envelope import seal
from yijian.producers.simulator import RULE_FAULTS, simulate
from yijian.rules.model import load_packs
from yijian.schemas.models import HOSPITAL_TZ

NOW = datetime(2025, 9, 1, 18, 0, tzinfo=HOSPITAL_TZ)
PRODUCER = "his-sim"
BATCH_MAX = 20
BATCH_SPAN = timedelta(minutes=5)


def envelopes(res, ring):
    """(record_type, sealed envelope, received time) per batch of consecutive records of one
    (institution, record type) in emit order; skipped records are not sent (sequence gaps)."""
    pending: dict[tuple[str, str], list] = {}

    def flush(key):
        batch = pending.pop(key)
        received = batch[-1].emit_time
        value = seal(key[1], [e.record for e in batch], ring.active(key[0]), PRODUCER, batch[0].seq, sent_time=received)
        return key[1], value, received

    for ev in res.iter_timed():
        for key in [k for k, b in pending.items() if ev.emit_time - b[0].emit_time > BATCH_SPAN]:
            yield flush(key)
        key = (ev.institution_code, ev.record_type)
        if ev.skip:
            if key in pending:
                yield flush(key)
            continue
        batch = pending.setdefault(key, [])
        if batch and batch[-1].seq + 1 != ev.seq:
            yield flush(key)
            batch = pending.setdefault(key, [])
        batch.append(ev)
        if len(batch) >= BATCH_MAX:
            yield flush(key)
    for key in list(pending):
        yield flush(key)


def business_time(rec: dict) -> datetime:
    rt = rec["meta"]["record_type"]
    t = rec["begntime"] if rt == "encounter" else rec["rx_time"] if rt == "prescription" else rec["fee_ocur_time"]
    return datetime.fromisoformat(t) if isinstance(t, str) else t


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    res = simulate(institutions=30, encounters=1500, seed=11, now=NOW)
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    ring = KeyRing()
    for inst in res.refdata.institutions():
        ring.new(inst.code)
    pipeline = Pipeline(settings, ring, refdata=res.refdata)
    seq_state: dict[str, int] = {}
    quality, std, rejected = [], [], []
    for offset, (rtype, value, received) in enumerate(envelopes(res, ring)):
        out = pipeline.process(value, Lineage(topic=f"raw.{rtype}", partition=0, offset=offset), received, seq_state)
        quality += out.quality
        rejected += out.rejected
        # what the rules stage receives: the std.by_patient topic's JSON
        std += decode_batch(encode_batch("std", out.std))[1] if out.std else []
    stage = RulesStage(rule_context(res.refdata))
    for pack in load_packs():
        stage.on_message(pack.id, pack.to_json())
    order = sorted(range(len(std)), key=lambda i: (business_time(std[i]), i))
    findings, _ = stage.evaluate_batch([std[i] for i in order], lambda pseudonym: None)
    return res, quality, findings, rejected, stage


def _table(title: str, rows: dict[str, tuple[int, int, int]]) -> str:
    """rows: key -> (expected, found, true positives)."""
    lines = [title, f"{'':32} {'expected':>8} {'found':>7} {'precision':>9} {'recall':>7}"]
    for k in sorted(rows):
        exp, found, tp = rows[k]
        p = tp / found if found else 1.0
        r = tp / exp if exp else 1.0
        lines.append(f"{k:32} {exp:8d} {found:7d} {p:9.3f} {r:7.3f}")
    return "\n".join(lines)


def _pr(expected: set, found: set, key) -> dict[str, tuple[int, int, int]]:
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for x in expected:
        rows[key(x)][0] += 1
    for x in found:
        rows[key(x)][1] += 1
        if x in expected:
            rows[key(x)][2] += 1
    return {k: tuple(v) for k, v in rows.items()}


def test_quality_issues_match_ground_truth(platform):
    res, quality, _, rejected, _ = platform
    assert rejected == []
    gt = res.ground_truth
    expected: dict[tuple, dict] = {}
    for f in gt["faults"]:
        for e in f["expect"]:
            if e["kind"] == "quality":
                expected[(e["code"], f["institution_code"], f["record_type"], f["record_id"], f["version"])] = e
    raised: dict[tuple, list] = defaultdict(list)
    for q in quality:
        if q.code == "seq_gap":
            continue
        raised[(q.code, q.institution_code, q.record_type, q.record_id, q.record_version)].append(q)
    rows = _pr(set(expected), set(raised), key=lambda x: x[0])
    table = _table("quality issues (per code)", rows)
    print("\n" + table)
    missing = sorted(set(expected) - set(raised))
    extra = sorted(set(raised) - set(expected))
    assert not missing and not extra, f"{table}\nmissing: {missing[:10]}\nextra: {[(k, raised[k][0].field, raised[k][0].message) for k in extra[:10]]}"
    wrong = []
    for k, e in expected.items():
        got = {(q.dimension, q.field) for q in raised[k]}
        if (e["dimension"], e["field"]) not in got:
            wrong.append((k, e["dimension"], e["field"], got))
        if e["code"] == "unmapped_code" and not any(q.details.get("local_code") == e["local_code"] and q.details.get("code_kind") == e["code_kind"] for q in raised[k]):
            wrong.append((k, e, [q.details for q in raised[k]]))
    assert not wrong, f"dimension/field/details differ: {wrong[:10]}"
    assert {c for c, *_ in expected} >= {"invalid_id_number", "sex_mismatch", "late", "unmapped_code", "missing_field", "amount_mismatch", "discharge_before_admission"}


def test_sequence_gaps_match_ground_truth(platform):
    res, quality, _, _, _ = platform
    expected = {(g["institution_code"], g["record_type"], g["first_seq"], g["last_seq"]) for g in res.ground_truth["seq_gaps"] if not g["trailing"]}
    found = {(q.institution_code, q.record_type, q.details["first_missing"], q.details["last_missing"]) for q in quality if q.code == "seq_gap"}
    assert all(q.dimension == "integrity" for q in quality if q.code == "seq_gap")
    print(f"\nseq gaps: expected {len(expected)} (+{sum(g['trailing'] for g in res.ground_truth['seq_gaps'])} trailing), found {len(found)}")
    assert expected and found == expected, (sorted(expected - found), sorted(found - expected))


def test_rules_match_ground_truth(platform):
    res, _, findings, _, stage = platform
    gt = res.ground_truth
    expected: set[tuple] = set()
    subject_of: dict[str, str] = {}
    for f in gt["faults"]:
        for e in f["expect"]:
            if e["kind"] == "rule":
                assert e["rule_id"] in stage.engine.rules, e
                expected.add((e["rule_id"], f["institution_code"], f["record_type"], f["record_id"], f["version"]))
                subject_of[e["rule_id"]] = e["subject"]
    assert set(subject_of.values()) == set(RULE_FAULTS)
    rules = stage.engine.rules
    definite = {rid for rid, cr in rules.items() if cr.rule.result_type == "明确"}
    checked = definite | set(subject_of)
    found = {(x.rule_id, x.institution_code, x.record_type, x.record_id, x.record_version) for x in findings}
    rows = _pr({x for x in expected}, {x for x in found if x[0] in checked},
               key=lambda x: f"{x[0]} {subject_of.get(x[0], '')}".strip())
    table = _table("rule findings (明确 rules and the rules of injected subjects)", rows)
    suspicious = Counter(x[0] for x in found if x[0] not in checked)
    faulty = {(f["institution_code"], f["record_type"], f["record_id"], f["version"]) for f in gt["faults"]}
    on_clean = Counter(x[0] for x in found if x[0] not in checked and x[1:] not in faulty)
    print("\n" + table + f"\n可疑 findings of other rules (all / on clean records): {dict(suspicious)} / {dict(on_clean)}")
    missing = sorted(expected - found)
    extra = sorted(x for x in found if x[0] in checked and x not in expected)
    messages = {(x.rule_id, x.institution_code, x.record_type, x.record_id, x.record_version): x.message for x in findings}
    assert not missing and not extra, f"{table}\nmissing: {missing[:10]}\nextra: {[(x, messages[x]) for x in extra[:10]]}"


ITEM_CODE = r"(?<![\w.])([XZ][A-Z]\d{2}[A-Z0-9]{16,19}|T\d{9}|00\d{13}|C\d{19})(?![\w])"


def test_rule_packs_use_the_fixture_catalogue():
    """yijian/refdata/fixtures is the single source of the synthetic national item codes: every drug,
    service item and consumable code in the packs (knowledge points and cases) and in _context.yaml is a
    catalogue row, every department a fixture department, and _context's drug attributes are what
    rule_context derives from the catalogue."""
    import re

    import yaml

    from yijian.refdata.catalog import RefData
    from yijian.rules.model import PACKS_DIR, load_fixture

    rd = RefData.fixtures()
    known = {r.code for t in ("drugs", "services", "consumables") for r in rd.rows(t)}
    depts = {r.code for r in rd.rows("departments")}
    used: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKS_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        for code in re.findall(ITEM_CODE, text):
            used[code].add(path.name)
        for rule in (yaml.safe_load(text).get("rules") or []):
            for d in (rule.get("params") or {}).get("depts", []):
                assert d in depts, (rule["id"], d)
    assert len(used) > 60
    assert {c: sorted(p) for c, p in used.items() if c not in known} == {}
    context, bases = load_fixture()
    derived = rule_context(rd).drugs
    for code, info in context.drugs.items():
        assert derived[code] == info, (code, derived[code], info)
    assert bases["prescription"]["dept_std"] in depts and bases["encounter"]["dept_std"] in depts
