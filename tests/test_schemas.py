"""The interface standard: committed Avro files = generated ones, documentation complete, and the
evolution rules of schemas/EVOLUTION.md hold for every schema against every published version."""

import copy
import io
import json
import re
import shutil
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from yijian.schemas import avro, codec
from yijian.schemas.codec import decode_records, encode_records, registry, schema_fingerprint
from yijian.schemas.models import RECORD_MODELS

ALL = list(avro.ALL_MODELS)
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("record_type", ALL)
def test_committed_avsc_equals_generated(record_type):
    assert avro.schema_path(record_type).read_text(encoding="utf-8") == avro.render(avro.generate(record_type)), (
        f"schemas/{record_type}.avsc differs from the models: run `python -m yijian.schemas.avro`"
    )


def _records(schema: dict):
    """Every record definition inside a schema (nested ones included)."""
    yield schema
    for f in schema["fields"]:
        for t in _branches(f["type"]):
            if isinstance(t, dict) and t.get("type") == "record":
                yield from _records(t)
            if isinstance(t, dict) and t.get("type") in ("array", "map"):
                inner = t.get("items", t.get("values"))
                if isinstance(inner, dict) and inner.get("type") == "record":
                    yield from _records(inner)


def _branches(t):
    return t if isinstance(t, list) else [t]


@pytest.mark.parametrize("record_type", ALL)
def test_every_field_is_documented_in_chinese_and_english(record_type):
    for rec in _records(avro.load(record_type)):
        for f in rec["fields"]:
            where = f"{rec['name']}.{f['name']}"
            assert f.get("zh") and HAN.search(f["zh"]), f"{where}: no Chinese name"
            assert f.get("need") in ("required", "conditional", "optional"), where
            if f["need"] == "conditional":
                assert f.get("when"), f"{where}: conditional without a condition"
            zh, sep, en = f["doc"].partition(" / ")
            assert sep and HAN.search(zh) and re.search(r"[A-Za-z]{3}", en), f"{where}: doc is not '中文 / English'"


# --- evolution rules --------------------------------------------------------------------------------
def _named(schema, acc=None):
    """{full name: record definition} of every named record in a schema."""
    acc = {} if acc is None else acc
    if isinstance(schema, list):
        for t in schema:
            _named(t, acc)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            acc[f"{schema.get('namespace', '')}.{schema['name']}"] = schema
            for f in schema["fields"]:
                _named(f["type"], acc)
        elif schema.get("type") in ("array", "map"):
            _named(schema.get("items", schema.get("values")), acc)
    return acc


def _shape(t):
    """A type without documentation, nested records replaced by their names (compared separately)."""
    if isinstance(t, list):
        return [_shape(b) for b in t]
    if isinstance(t, dict):
        if t.get("type") == "record":
            return f"{t.get('namespace', '')}.{t['name']}"
        if t.get("type") == "array":
            return {"array": _shape(t["items"])}
        if t.get("type") == "map":
            return {"map": _shape(t["values"])}
        return {k: v for k, v in t.items() if k in ("type", "logicalType", "precision", "scale")}
    return t if "." in t or t in ("null", "boolean", "int", "long", "float", "double", "bytes", "string") else f"cn.yijian.v1.{t}"


def compatibility_violations(old: dict, new: dict) -> list[str]:
    """Field-by-field check of schemas/EVOLUTION.md, new relative to old (same major namespace)."""
    out = []
    if old.get("namespace") != new.get("namespace"):
        return out  # a new major version: rules do not apply
    if old["name"] != new["name"]:
        out.append(f"record renamed {old['name']} -> {new['name']}")
    old_named, new_named = _named(old), _named(new)
    for name, orec in old_named.items():
        nrec = new_named.get(name)
        if nrec is None:
            out.append(f"record {name} removed or renamed")
            continue
        nfields = {f["name"]: f for f in nrec["fields"]}
        ofields = {f["name"]: f for f in orec["fields"]}
        for fname, of in ofields.items():
            nf = nfields.get(fname)
            where = f"{name}.{fname}"
            if nf is None:
                out.append(f"{where}: field removed or renamed")
                continue
            if _shape(of["type"]) != _shape(nf["type"]):
                out.append(f"{where}: type changed {_shape(of['type'])} -> {_shape(nf['type'])}")
            if "default" in of and "default" not in nf:
                out.append(f"{where}: default removed")
            missing = [v for v in of.get("allowed", []) if v not in nf.get("allowed", of.get("allowed", []))]
            if missing:
                out.append(f"{where}: allowed values removed {missing}")
            rank = {"required": 0, "conditional": 1, "optional": 2}
            if rank.get(nf.get("need"), 0) > rank.get(of.get("need"), 0) and "default" not in nf:
                out.append(f"{where}: need relaxed without a default")
        for fname, nf in nfields.items():
            if fname not in ofields and "default" not in nf:
                out.append(f"{name}.{fname}: new field without a default")
    return out


def sample(t, named: dict | None = None, field: dict | None = None):
    """A datum valid for Avro type ``t`` (non-null branch of unions, one item in arrays and maps)."""
    named = {} if named is None else named
    if isinstance(t, list):
        return sample(next(b for b in t if b != "null"), named, field)
    if isinstance(t, str) and t in named:
        return sample(named[t], named)
    if isinstance(t, dict):
        lt, base = t.get("logicalType"), t["type"]
        if base == "record":
            named[f"{t.get('namespace', '')}.{t['name']}"] = t
            named[t["name"]] = t
            return {f["name"]: sample(f["type"], named, f) for f in t["fields"]}
        if base == "array":
            return [sample(t["items"], named)]
        if base == "map":
            return {"encounter": sample(t["values"], named)}
        if lt == "decimal":
            return Decimal(1).scaleb(-t["scale"]) * 1234
        if lt == "timestamp-millis":
            return datetime(2026, 11, 2, 1, 30, 0, 123000, tzinfo=timezone.utc)
        if lt == "date":
            return date(2026, 11, 2)
        return sample(base, named, field)
    allowed = (field or {}).get("allowed")
    if allowed:
        return allowed[-1]
    return {"string": "x" * 12, "long": 7, "int": 7, "boolean": True, "bytes": b"\x01" * 12, "null": None, "double": 1.5, "float": 1.5}[t]


def _history_cases():
    for record_type in ALL:
        for path in avro.history(record_type):
            yield pytest.param(record_type, path, id=f"{record_type}-{path.stem}")


def test_every_schema_has_a_published_history():
    for record_type in ALL:
        assert avro.history(record_type), f"schemas/history/{record_type}/ is empty"


@pytest.mark.parametrize("record_type,path", list(_history_cases()))
def test_current_schema_obeys_the_rules_against_each_published_version(record_type, path):
    old = json.loads(path.read_text(encoding="utf-8"))
    assert compatibility_violations(old, avro.load(record_type)) == []


@pytest.mark.parametrize("record_type,path", list(_history_cases()))
def test_data_written_with_each_published_version_decodes_with_the_current_schema(record_type, path):
    old = json.loads(path.read_text(encoding="utf-8"))
    datum = sample(copy.deepcopy(old))
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(old, _write_hint=False), datum)
    decoded = schemaless_reader(io.BytesIO(buf.getvalue()), parse_schema(old, _write_hint=False), parse_schema(avro.load(record_type), _write_hint=False))
    for key, value in datum.items():
        assert decoded[key] == value


def test_the_checker_catches_each_kind_of_violation():
    cur = avro.load("encounter")

    def changed(fn):
        new = copy.deepcopy(cur)
        fn(new)
        return compatibility_violations(cur, new)

    fields = lambda s: {f["name"]: f for f in s["fields"]}  # noqa: E731
    assert any("removed" in v for v in changed(lambda s: s["fields"].pop(0)))
    assert any("renamed" in v for v in changed(lambda s: fields(s)["dept_name"].update(name="dept_nm")))
    assert any("type changed" in v for v in changed(lambda s: fields(s)["version"].update(type="int")))
    assert any("without a default" in v for v in changed(lambda s: s["fields"].append({"name": "extra", "type": "string", "doc": "x"})))
    assert any("allowed values removed" in v for v in changed(lambda s: fields(s)["med_type"]["allowed"].remove("internet")))
    assert any("default removed" in v for v in changed(lambda s: fields(s)["endtime"].pop("default")))
    # nested record: PatientIdentity.gend retyped
    def retype_nested(s):
        fields(fields(s)["patient"]["type"])["gend"]["type"] = "long"
    assert any("PatientIdentity.gend" in v for v in changed(retype_nested))
    # allowed: growing is fine, and a new field with a default is fine
    assert changed(lambda s: fields(s)["med_type"]["allowed"].append("homecare")) == []
    assert changed(lambda s: s["fields"].append({"name": "extra", "type": ["null", "string"], "default": None, "doc": "x"})) == []


def test_an_old_version_payload_decodes_side_by_side_with_the_current_one(tmp_path, monkeypatch):
    """A v1 that lacked two fields (now with defaults) stays decodable next to the current schema."""
    from yijian.producers import examples

    cur = avro.load("encounter")
    v1 = copy.deepcopy(cur)
    v1["fields"] = [f for f in v1["fields"] if f["name"] not in ("operations", "rinp_plan_flag")]
    assert compatibility_violations(v1, cur) == []
    hist = tmp_path / "history"
    shutil.copytree(avro.HISTORY_DIR, hist)
    (hist / "encounter" / "v1.avsc").write_text(avro.render(v1), encoding="utf-8")
    (hist / "encounter" / "v2.avsc").write_text(avro.render(cur), encoding="utf-8")
    monkeypatch.setattr(avro, "HISTORY_DIR", hist)
    codec.registry.cache_clear()
    try:
        rec = examples.encounter("H52010100001", 1).model_dump()
        old_fp = schema_fingerprint(v1)
        assert registry().writer(old_fp).version == 1
        old_payload = io.BytesIO()
        for r in (rec, rec):
            schemaless_writer(old_payload, parse_schema(v1, _write_hint=False), {k: v for k, v in r.items() if k not in ("operations", "rinp_plan_flag")})
        t_old, old_records = decode_records(old_fp, old_payload.getvalue(), 2)
        t_new, new_records = decode_records(registry().fingerprint_of("encounter"), encode_records("encounter", [rec]), 1)
        assert t_old == t_new == "encounter"
        assert old_records[0]["operations"] == [] and old_records[0]["rinp_plan_flag"] is None
        assert old_records[0] == old_records[1] == new_records[0]
        assert RECORD_MODELS["encounter"].model_validate(old_records[0]) == RECORD_MODELS["encounter"].model_validate(rec)
    finally:
        codec.registry.cache_clear()
