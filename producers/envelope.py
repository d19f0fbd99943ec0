"""The envelope: a batch of records, SM4-GCM encrypted, with its header in clear as associated data.

Wire format (Kafka message value): Avro ``Envelope{header: EnvelopeHeader, payload: bytes}``
(schemas/envelope.avsc). ``payload`` = SM4-GCM(key, nonce, concatenated Avro records, AAD = Avro
encoding of the header). Any change to the header (institution, counts, sequence numbers, schema)
breaks the tag, so the clear header can be trusted once the payload decrypts.

:func:`open_envelope` raises :class:`EnvelopeRejected` with a machine-readable ``reason`` for every
way an envelope can be unacceptable; the processors send those to ``rejected``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timezone

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from yijian.crypto import IntegrityError, new_nonce, sm4_gcm_decrypt, sm4_gcm_encrypt
from yijian.keyring import KeyEntry, KeyError_, KeyRing
from yijian.schemas import avro
from yijian.schemas.codec import DecodeError, UnknownSchemaError, decode_records, encode_records, registry
from yijian.schemas.models import Record

FORMAT_VERSION = 1
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
MAX_RECORDS = 10_000

_ENVELOPE = parse_schema(avro.load("envelope"), _write_hint=False)
_HEADER = parse_schema(avro.generate("envelope")["fields"][0]["type"], _write_hint=False)

REASONS = {
    "envelope_too_large": "信封超过大小上限 / envelope larger than the limit",
    "bad_envelope": "信封无法解析 / envelope is not a valid Avro Envelope",
    "unsupported_format": "信封格式版本不受支持 / unsupported envelope format version",
    "bad_header": "信封头字段无效 / invalid envelope header field",
    "unknown_key": "密钥标识未知 / unknown key id",
    "revoked_key": "密钥已吊销 / key has been revoked",
    "key_institution_mismatch": "密钥不属于该机构 / key does not belong to the sending institution",
    "unknown_schema": "数据模式指纹未知 / unknown schema fingerprint",
    "schema_type_mismatch": "模式与记录类型不符 / schema does not match the record type",
    "bad_tag": "解密认证失败(密钥错误或数据被篡改) / decryption failed: wrong key or tampered data",
    "decode_error": "记录无法按模式解码 / records do not decode with the announced schema",
}


class EnvelopeRejected(ValueError):
    def __init__(self, reason: str, detail: str, header: dict | None = None) -> None:
        self.reason = reason
        self.header = header or {}
        super().__init__(f"{reason}: {REASONS.get(reason, reason)}; {detail}")


@dataclass
class OpenedEnvelope:
    header: dict
    record_type: str
    records: list[dict]  # decoded in the current schema version


def _header_bytes(header: dict) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, _HEADER, header)
    return buf.getvalue()


def seal(
    record_type: str,
    records: list[Record] | list[dict],
    key: KeyEntry,
    producer_id: str,
    first_seq: int,
    sent_time: datetime | None = None,
    payload: bytes | None = None,
) -> bytes:
    """Encrypt a batch of records of one type into an envelope (the Kafka message value).

    ``payload`` may pass records already Avro-encoded (the outbox stores them that way).
    """
    if not records and payload is None:
        raise ValueError("an envelope carries at least one record")
    count = len(records)
    plain = payload if payload is not None else encode_records(record_type, records)
    header = {
        "format_version": FORMAT_VERSION,
        "institution_code": key.institution_code,
        "record_type": record_type,
        "key_id": key.key_id,
        "producer_id": producer_id,
        "first_seq": first_seq,
        "record_count": count,
        "sent_time": sent_time or datetime.now(timezone.utc),
        "schema_fp": registry().fingerprint_of(record_type),
        "nonce": new_nonce(),
    }
    ct = sm4_gcm_encrypt(key.material, header["nonce"], plain, _header_bytes(header))
    out = io.BytesIO()
    schemaless_writer(out, _ENVELOPE, {"header": header, "payload": ct})
    return out.getvalue()


def read_header(value: bytes) -> dict:
    """The clear header without decrypting (routing, lineage, rejection reports)."""
    return _decode_envelope(value)["header"]


def _decode_envelope(value: bytes) -> dict:
    if value is None or len(value) > MAX_ENVELOPE_BYTES:
        raise EnvelopeRejected("envelope_too_large", f"{len(value or b'')} bytes > {MAX_ENVELOPE_BYTES}")
    buf = io.BytesIO(value)
    try:
        env = schemaless_reader(buf, _ENVELOPE, None)
    except Exception as exc:
        raise EnvelopeRejected("bad_envelope", f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if buf.tell() != len(value):
        raise EnvelopeRejected("bad_envelope", f"{len(value) - buf.tell()} trailing bytes")
    return env


def open_envelope(value: bytes, keyring: KeyRing) -> OpenedEnvelope:
    """Verify and decrypt an envelope; raises EnvelopeRejected with a reason code."""
    env = _decode_envelope(value)
    h = env["header"]
    if h["format_version"] != FORMAT_VERSION:
        raise EnvelopeRejected("unsupported_format", f"format_version {h['format_version']}", h)
    if not (1 <= h["record_count"] <= MAX_RECORDS) or h["first_seq"] < 0 or len(h["nonce"]) != 12:
        raise EnvelopeRejected("bad_header", f"record_count {h['record_count']}, first_seq {h['first_seq']}, nonce {len(h['nonce'])} bytes", h)
    try:
        key = keyring.get(h["key_id"])
    except KeyError_ as exc:
        raise EnvelopeRejected(exc.reason, str(exc), h) from None
    if key.institution_code != h["institution_code"]:
        raise EnvelopeRejected("key_institution_mismatch", f"key {h['key_id']} belongs to {key.institution_code}, envelope claims {h['institution_code']}", h)
    try:
        writer = registry().writer(h["schema_fp"])
    except UnknownSchemaError as exc:
        raise EnvelopeRejected("unknown_schema", str(exc), h) from None
    if writer.record_type != h["record_type"]:
        raise EnvelopeRejected("schema_type_mismatch", f"schema is {writer.record_type}, header says {h['record_type']}", h)
    try:
        plain = sm4_gcm_decrypt(key.material, h["nonce"], env["payload"], _header_bytes(h))
    except IntegrityError as exc:
        raise EnvelopeRejected("bad_tag", str(exc), h) from None
    try:
        record_type, records = decode_records(h["schema_fp"], plain, h["record_count"])
    except DecodeError as exc:
        raise EnvelopeRejected("decode_error", str(exc), h) from None
    return OpenedEnvelope(header=h, record_type=record_type, records=records)
