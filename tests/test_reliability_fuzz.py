"""Bad input, fuzzed (hypothesis): the pipeline never raises, never accepts what it cannot verify, and
sends every unacceptable envelope to `rejected` with a reason, every bad record value to quality issues."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from yijian.config import Settings
from yijian.crypto import new_nonce, sm4_gcm_encrypt
from yijian.keyring import KeyRing
from yijian.processors.contracts import Lineage
from yijian.processors.pipeline import Pipeline
from yijian.producers import envelope as env
from yijian.producers.envelope import REASONS, seal
from yijian.producers.examples import INST, recent_charge as charge, recent_encounter as encounter, identity as patient
from yijian.schemas.codec import registry

LINEAGE = Lineage(topic="t", partition=0, offset=0)
NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    ring = KeyRing()
    key = ring.new(INST)
    revoked = ring.new("H52030200009")
    ring.revoke(revoked.key_id)
    settings = Settings(home=tmp_path_factory.mktemp("fuzz"))
    good = seal("charge", [charge(1), charge(2)], key, "his-1", 1)
    return Pipeline(settings, ring), ring, key, revoked, good


def _rejected_only(out) -> str:
    assert not out.std and len(out.rejected) == 1, (out.std, out.rejected)
    reason = out.rejected[0].reason
    assert reason in REASONS
    return reason


FUZZ = hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_rejected_never_raise(world, data):
    pipeline = world[0]
    _rejected_only(pipeline.process(data, LINEAGE, NOW))


@FUZZ
@given(st.data())
def test_any_truncation_is_rejected(world, data):
    pipeline, *_, good = world
    cut = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
    _rejected_only(pipeline.process(good[:cut], LINEAGE, NOW))


@FUZZ
@given(st.data())
def test_any_flipped_bit_is_rejected(world, data):
    """Header and payload are authenticated: no single-bit change is ever accepted."""
    pipeline, *_, good = world
    i = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    tampered = bytearray(good)
    tampered[i] ^= 1 << bit
    _rejected_only(pipeline.process(bytes(tampered), LINEAGE, NOW))


def test_each_envelope_rejection_reason(world):
    pipeline, ring, key, revoked, good = world
    cases = {
        "revoked_key": seal("charge", [charge(1)], revoked, "his-1", 1),
        "unknown_key": seal("charge", [charge(1)], KeyRing().new("H52999900001"), "his-1", 1),
        "envelope_too_large": b"\x00" * (env.MAX_ENVELOPE_BYTES + 1),
        "bad_envelope": b"not avro at all",
    }
    # a key of institution A used in an envelope that claims institution B
    other = ring.new("H52060100003")
    forged = seal("charge", [charge(1, inst="H52060100003")], other, "his-1", 1)
    h = env.read_header(forged)
    cases["key_institution_mismatch"] = _reseal(h | {"institution_code": INST}, other, env.encode_records("charge", [charge(1)]))
    cases["unknown_schema"] = _reseal(h | {"schema_fp": "0123456789abcdef"}, other, b"")
    cases["schema_type_mismatch"] = _reseal(h | {"record_type": "encounter"}, other, env.encode_records("charge", [charge(1)]))
    cases["decode_error"] = _reseal(h, other, b"\xff" * 40)
    cases["bad_header"] = _reseal(h | {"record_count": 0}, other, b"")
    cases["unsupported_format"] = _reseal(h | {"format_version": 2}, other, b"")
    for reason, value in cases.items():
        assert _rejected_only(pipeline.process(value, LINEAGE, NOW)) == reason, reason


def _reseal(header: dict, key, payload: bytes) -> bytes:
    """An envelope built by hand (a broken or malicious producer), correctly encrypted."""
    import io

    from fastavro import schemaless_writer

    header = dict(header, nonce=new_nonce())
    ct = sm4_gcm_encrypt(key.material, header["nonce"], payload, env._header_bytes(header))
    out = io.BytesIO()
    schemaless_writer(out, env._ENVELOPE, {"header": header, "payload": ct})
    return out.getvalue()


HOSTILE = st.sampled_from(["'; DROP TABLE encounters; --", "\x00\x01\x1b[31m", "🙂 ℃ 𠀀", "a\r\nb\tc", "\\x00", "<script>alert(1)</script>", "\u202e\u200b"])


@FUZZ
@given(name=HOSTILE, dept=HOSTILE, diag=HOSTILE)
def test_hostile_strings_flow_through_unchanged(world, name, dept, diag):
    pipeline, ring, key, *_ = world
    from yijian.schemas.models import Diagnosis

    e = encounter(1, dept_name=dept, patient=patient().model_copy(update={"psn_name": name}),
                  diagnoses=[Diagnosis(diag_code="X1", diag_name=diag, maindiag_flag=True)])
    out = pipeline.process(seal("encounter", [e], key, "his-1", 1), LINEAGE, NOW)
    assert not out.rejected and len(out.std) == 1
    rec = out.std[0]
    assert rec["dept_name"] == dept and rec["diagnoses"][0]["diag_name"] == diag
    # the patient's name and ID number never leave the decrypt stage
    assert set(rec["patient"]) == {"pseudonym", "cert_type", "sex", "birth_date", "age", "region_code", "id_valid"}
    assert "psn_name" not in str(rec) and patient().certno not in str(rec)


@pytest.mark.parametrize(
    "mutation, code",
    [
        (dict(patient=patient(certno="11010519491231002Y")), "invalid_id_number"),
        (dict(patient=patient(certno="110105194913310021")), "invalid_id_number"),
        (dict(patient=patient(gend="1")), "sex_mismatch"),
        (dict(patient=patient(brdy=date(1950, 1, 1))), "birth_mismatch"),
        (dict(medfee_sumamt="999.00"), "total_mismatch"),
        (dict(med_type="inpatient", endtime=datetime(2020, 1, 1, tzinfo=timezone.utc)), "discharge_before_admission"),
        (dict(begntime=datetime(2020, 1, 1, tzinfo=timezone.utc)), "late"),
        (dict(begntime=datetime(2099, 1, 1, tzinfo=timezone.utc)), "future_event"),
        (dict(med_type="internet"), "missing_field"),
    ],
)
def test_invalid_values_become_quality_issues_with_the_right_code(world, mutation, code):
    pipeline, ring, key, *_ = world
    out = pipeline.process(seal("encounter", [encounter(1, **mutation)], key, "his-1", 1), LINEAGE, NOW)
    assert not out.rejected and len(out.std) == 1
    assert code in {q.code for q in out.quality}, [q.code for q in out.quality]


def test_registry_knows_every_fingerprint_of_every_envelope_type():
    assert {v.record_type for v in registry().by_fingerprint.values()} >= {"encounter", "prescription", "charge", "heartbeat", "manifest", "feedback"}
