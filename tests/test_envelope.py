"""The SM4-GCM envelope: round trip, and a reason code for every way an envelope is unacceptable."""

import io
import os

import pytest
from fastavro import schemaless_reader, schemaless_writer

from yijian.keyring import KeyRing
from yijian.producers import envelope, examples
from yijian.producers.envelope import REASONS, EnvelopeRejected, open_envelope, read_header, seal
from yijian.schemas.codec import registry

A, B = "H52010100001", "H52030200002"


@pytest.fixture
def ring():
    r = KeyRing()
    r.new(A)
    r.new(B)
    return r


def _sealed(ring, n=3, inst=A):
    recs = [examples.encounter(inst, i) for i in range(n)]
    return recs, seal("encounter", recs, ring.active(inst), "his-1", 41)


def _edit(value: bytes, fn) -> bytes:
    env = schemaless_reader(io.BytesIO(value), envelope._ENVELOPE, None)
    fn(env)
    out = io.BytesIO()
    schemaless_writer(out, envelope._ENVELOPE, env)
    return out.getvalue()


def _reason(value, ring) -> str:
    with pytest.raises(EnvelopeRejected) as exc:
        open_envelope(value, ring)
    assert exc.value.reason in REASONS
    return exc.value.reason


def test_round_trip_and_clear_header(ring):
    recs, value = _sealed(ring)
    h = read_header(value)
    assert (h["institution_code"], h["record_type"], h["key_id"], h["first_seq"], h["record_count"]) == (A, "encounter", f"{A}.v1", 41, 3)
    opened = open_envelope(value, ring)
    assert opened.records == [r.model_dump() for r in recs]
    assert b"E00000001" not in value and "测试患者".encode() not in value  # payload is ciphertext


@pytest.mark.parametrize(
    "what,fn",
    [
        ("header first_seq", lambda e: e["header"].update(first_seq=e["header"]["first_seq"] + 1)),
        ("header record_count", lambda e: e["header"].update(record_count=2)),
        ("header producer", lambda e: e["header"].update(producer_id="other")),
        ("header sent_time", lambda e: e["header"].update(sent_time=e["header"]["sent_time"].replace(year=2020))),
        ("nonce", lambda e: e["header"].update(nonce=bytes(12))),
        ("payload byte", lambda e: e.update(payload=bytes([e["payload"][0] ^ 0x80]) + e["payload"][1:])),
        ("tag byte", lambda e: e.update(payload=e["payload"][:-1] + bytes([e["payload"][-1] ^ 1]))),
        ("payload truncated", lambda e: e.update(payload=e["payload"][:-17])),
    ],
)
def test_any_tampering_is_bad_tag(ring, what, fn):
    _, value = _sealed(ring)
    assert _reason(_edit(value, fn), ring) == "bad_tag", what


def test_wrong_key_material_is_bad_tag(ring):
    _, value = _sealed(ring)
    impostor = KeyRing()
    impostor.new(A)  # same key id A.v1, other material
    assert _reason(value, impostor) == "bad_tag"


def test_revoked_and_unknown_keys(ring):
    _, value = _sealed(ring)
    assert _reason(value, ring.subset(B)) == "unknown_key"
    ring.revoke(f"{A}.v1")
    assert _reason(value, ring) == "revoked_key"


def test_rotated_key_still_opens_old_envelopes_until_revoked(ring):
    _, old = _sealed(ring)
    ring.rotate(A)
    _, new = _sealed(ring)
    assert read_header(new)["key_id"] == f"{A}.v2"
    assert open_envelope(old, ring).records and open_envelope(new, ring).records
    ring.revoke(f"{A}.v1")
    assert _reason(old, ring) == "revoked_key"
    assert open_envelope(new, ring).records


def test_key_of_another_institution_is_refused(ring):
    # hospital B encrypts with its own key but claims to be A
    _, value = _sealed(ring, inst=B)
    forged = _edit(value, lambda e: e["header"].update(institution_code=A))
    assert _reason(forged, ring) == "key_institution_mismatch"


def test_unknown_and_mismatched_schema(ring):
    _, value = _sealed(ring)
    assert _reason(_edit(value, lambda e: e["header"].update(schema_fp="0123456789abcdef")), ring) == "unknown_schema"
    rx_fp = registry().fingerprint_of("prescription")
    assert _reason(_edit(value, lambda e: e["header"].update(schema_fp=rx_fp)), ring) == "schema_type_mismatch"


def test_header_checks(ring):
    _, value = _sealed(ring)
    assert _reason(_edit(value, lambda e: e["header"].update(format_version=2)), ring) == "unsupported_format"
    assert _reason(_edit(value, lambda e: e["header"].update(record_count=0)), ring) == "bad_header"
    assert _reason(_edit(value, lambda e: e["header"].update(nonce=bytes(8))), ring) == "bad_header"


def test_payload_that_does_not_decode(ring):
    value = seal("encounter", [None, None], ring.active(A), "his-1", 1, payload=b"\x02junk")
    assert _reason(value, ring) == "decode_error"


def test_truncated_oversized_garbage_and_trailing_bytes(ring):
    _, value = _sealed(ring)
    assert _reason(value[:-5], ring) == "bad_envelope"
    assert _reason(value[:10], ring) == "bad_envelope"
    assert _reason(value + b"\x00", ring) == "bad_envelope"
    assert _reason(os.urandom(300), ring) in ("bad_envelope", "unsupported_format", "bad_header", "unknown_key")
    assert _reason(b"", ring) == "bad_envelope"
    assert _reason(b"x" * (envelope.MAX_ENVELOPE_BYTES + 1), ring) == "envelope_too_large"


def test_every_reason_is_bilingual():
    for reason, text in REASONS.items():
        zh, sep, en = text.partition(" / ")
        assert sep and any("\u4e00" <= c <= "\u9fff" for c in zh) and en.isascii(), reason
