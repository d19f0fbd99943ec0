"""The one codec of yijian: records ⇄ Avro bytes, identified by schema fingerprint.

A payload is ``record_count`` schemaless Avro records concatenated (the envelope header carries the
count and the writer schema's fingerprint). Every published version of every schema stays decodable:
a payload written with an older version is resolved to the current schema (Avro schema resolution),
so hospitals can upgrade their SDK at their own pace.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from yijian.schemas import avro
from yijian.schemas.models import RECORD_MODELS, Record


class UnknownSchemaError(LookupError):
    """The payload names a schema fingerprint that is not a published version."""


class DecodeError(ValueError):
    """The payload does not decode as the records its header announces."""


@dataclass(frozen=True)
class SchemaVersion:
    record_type: str
    version: int | None  # None: the current (unreleased or latest) schema
    fingerprint: str
    parsed: dict


def schema_fingerprint(schema: dict) -> str:
    """CRC-64-AVRO (Rabin) fingerprint of the schema's parsing canonical form, as 16 hex digits."""
    return fingerprint(to_parsing_canonical_form(parse_schema(schema, _write_hint=False)), "CRC-64-AVRO")


class SchemaRegistry:
    """Current schemas plus every historic version, indexed by fingerprint."""

    def __init__(self) -> None:
        self.current: dict[str, SchemaVersion] = {}
        self.by_fingerprint: dict[str, SchemaVersion] = {}
        for record_type in RECORD_MODELS:
            raw = avro.load(record_type)
            cur = SchemaVersion(record_type, None, schema_fingerprint(raw), parse_schema(raw, _write_hint=False))
            self.current[record_type] = cur
            self.by_fingerprint[cur.fingerprint] = cur
            for path in avro.history(record_type):
                old = json.loads(path.read_text(encoding="utf-8"))
                fp = schema_fingerprint(old)
                self.by_fingerprint.setdefault(fp, SchemaVersion(record_type, int(path.stem[1:]), fp, parse_schema(old, _write_hint=False)))

    def fingerprint_of(self, record_type: str) -> str:
        return self.current[record_type].fingerprint

    def writer(self, fp: str) -> SchemaVersion:
        try:
            return self.by_fingerprint[fp]
        except KeyError:
            raise UnknownSchemaError(f"unknown schema fingerprint {fp!r}") from None


@lru_cache(maxsize=1)
def registry() -> SchemaRegistry:
    return SchemaRegistry()


def to_avro_dict(record: Record) -> dict:
    return record.model_dump(mode="python")


def encode_records(record_type: str, records: list[Record] | list[dict]) -> bytes:
    """Concatenated schemaless Avro of ``records`` (models or dicts) with the current schema."""
    schema = registry().current[record_type].parsed
    buf = io.BytesIO()
    for rec in records:
        schemaless_writer(buf, schema, to_avro_dict(rec) if isinstance(rec, Record) else rec)
    return buf.getvalue()


def decode_records(fp: str, payload: bytes, count: int) -> tuple[str, list[dict]]:
    """Decode ``count`` records written with schema ``fp``; returns (record_type, dicts in the current schema)."""
    writer = registry().writer(fp)
    reader = registry().current[writer.record_type].parsed
    buf = io.BytesIO(payload)
    out = []
    try:
        for _ in range(count):
            out.append(schemaless_reader(buf, writer.parsed, reader if writer.version is not None else None))
    except Exception as exc:  # fastavro raises many types on garbage: EOFError, ValueError, UnicodeDecodeError ...
        # the exception text may quote decoded bytes (patient data): report only its type
        raise DecodeError(f"record {len(out) + 1} of {count} does not decode as {writer.record_type} ({type(exc).__name__})") from None
    if buf.tell() != len(payload):
        raise DecodeError(f"{len(payload) - buf.tell()} bytes left after {count} {writer.record_type} records")
    return writer.record_type, out


def parse_model(record_type: str, data: dict) -> Record:
    return RECORD_MODELS[record_type].model_validate(data)
