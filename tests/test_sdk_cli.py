"""`yijian keys`, `yijian check`, `yijian send` end to end (real broker, real files)."""

import csv
import json
import os
import stat
import time

import pytest
from typer.testing import CliRunner

from yijian.config import get_settings
from yijian.keyring import KeyRing, load_keyring
from yijian.producers import examples
from yijian.producers.backfill import check_file
from yijian.producers.envelope import open_envelope, read_header
from yijian.producers.keyadmin import parse_key_event

A, B = "H52010100001", "H52030200002"
pytestmark = pytest.mark.kafka


@pytest.fixture
def cli(settings, monkeypatch, tmp_path):
    """Run `yijian ...` with the test's settings (the CLI reads them from YIJIAN_* variables)."""
    from yijian.cli import app

    for name, value in {
        "HOME": settings.home,
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TOPIC_PREFIX": settings.topic_prefix,
        "INSTITUTION_CODE": A,
        "LINGER_MS": 5,
    }.items():
        monkeypatch.setenv(f"YIJIAN_{name}", str(value))
    get_settings.cache_clear()
    from yijian.producers import cli as sdk_cli

    monkeypatch.setattr(sdk_cli.console, "width", 200)  # no wrapped table cells in the captured output
    runner = CliRunner()

    def run(*args, code=0):
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == code, res.output + repr(res.exception)
        return res.output

    yield run
    get_settings.cache_clear()


def _consume(settings, logical, n, bound_s=30.0):
    from yijian.kafka import consumer

    c = consumer(settings, f"t-{os.urandom(4).hex()}")
    c.subscribe([settings.topic(logical)])
    out, deadline = [], time.monotonic() + bound_s
    while len(out) < n and time.monotonic() < deadline:
        out += [m for m in c.consume(100, 0.5) if not m.error()]
    c.close()
    return out


def test_keys_new_rotate_list_revoke_export(cli, settings, tmp_path):
    cli("keys", "new", A)
    cli("keys", "new", B)
    cli("keys", "rotate", A)
    cli("keys", "new", "X123", code=1)
    listing = cli("keys", "list")
    ring = load_keyring(get_settings())
    assert f"{A}.v1" in listing and f"{A}.v2" in listing and f"{B}.v1" in listing
    for e in ring.entries():
        assert e.material.reveal().hex() not in listing.lower()

    cli("keys", "revoke", f"{A}.v1")
    cli("keys", "revoke", "H99999999999.v1", code=1)
    assert load_keyring(get_settings()).entries(A)[0].status == "revoked"
    events = _consume(settings, "keys", 1)
    key_id, status, revoked_at = parse_key_event(events[0].value())
    assert (events[0].key(), key_id, status) == (f"{A}.v1".encode(), f"{A}.v1", "revoked") and revoked_at is not None
    assert ring.get(f"{A}.v1").material.reveal().hex() not in events[0].value().decode().lower()

    master = os.urandom(16)
    (tmp_path / "m.key").write_text(master.hex())
    out = tmp_path / "hospital" / "keyring.json"
    cli("keys", "export", A, "--out", out, "--master-key-file", tmp_path / "m.key")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    exported = KeyRing.load(out, master)
    assert [e.key_id for e in exported.entries()] == [f"{A}.v1", f"{A}.v2"]
    assert exported.active(A).material == ring.active(A).material
    with pytest.raises(ValueError):
        KeyRing.load(out, get_settings().secret_bytes("keyring_master_key"))
    (tmp_path / "bad.key").write_text("1234")
    cli("keys", "export", A, "--out", tmp_path / "x.json", "--master-key-file", tmp_path / "bad.key", code=1)


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, list):
            out.update(_flat({str(i): x for i, x in enumerate(v)}, key + ".") if v and isinstance(v[0], dict) else {key: json.dumps(v)})
        elif v is not None:
            out[key] = v if not isinstance(v, bool) else str(v).lower()
    return out


def _write_csv(path, rows):
    cols = sorted({c for r in rows for c in r})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        w.writerows(rows)


def test_check_lists_every_problem_with_row_field_and_bilingual_reason(cli, tmp_path):
    good = _flat(examples.encounter(A, 1).model_dump(mode="json"))  # dotted columns: patient.certno, diagnoses.0.diag_code
    missing = dict(good, dept_code="", med_type="spa")
    nested_json = examples.encounter(A, 3).model_dump(mode="json")
    nested_json = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for k, v in nested_json.items() if v is not None}
    nested_json = {**nested_json, "institution_code": B, "record_id": "E00000001"}  # JSON columns; other hospital; duplicate id
    path = tmp_path / "enc.csv"
    _write_csv(path, [good, missing, nested_json])
    res = check_file(path, "encounter", A)
    assert res.rows == 3 and [r for r, _ in res.valid] == [1]
    got = {(p.row, p.field, p.code) for p in res.problems}
    assert {(2, "dept_code", "missing"), (2, "med_type", "literal_error"), (3, "institution_code", "institution_mismatch"), (3, "record_id", "duplicate")} <= got
    assert all(any("\u4e00" <= c <= "\u9fff" for c in p.zh) and p.en for p in res.problems)
    out = cli("check", path, "--type", "encounter", code=1)
    assert "取值不在值域内" in out and "med_type" in out and "rows with problems 2" in out

    jl = tmp_path / "ok.jsonl"
    jl.write_text("\n".join(examples.prescription(A, i).model_dump_json() for i in range(3)) + "\n\n")
    assert "problems 0" in cli("check", jl, "--type", "prescription")
    cli("check", jl, "--type", "nonsense", code=1)


def test_send_backfill_is_resumable_and_publishes_every_row_once(cli, settings, tmp_path):
    cli("keys", "new", A)
    ring = load_keyring(get_settings())
    path = tmp_path / "charges.jsonl"
    path.write_text("".join(examples.charge(A, i).model_dump_json() + "\n" for i in range(60)))
    out = cli("send", path, "--type", "charge")
    assert "queued 60" in out and "still pending 0" in out
    # the HIS appends more rows; a second run sends only the new ones, a third run nothing
    bad = examples.charge(A, 999).model_dump(mode="json")
    bad["item_type"] = "x"
    with open(path, "a") as fh:
        fh.write("".join(examples.charge(A, i).model_dump_json() + "\n" for i in range(60, 100)))
        fh.write(json.dumps(bad) + "\n")
    out = cli("send", path, "--type", "charge", code=1)  # one invalid row reported
    assert "queued 40" in out and "skipped (already sent) 60" in out and "item_type" in out
    assert "queued 0" in cli("send", path, "--type", "charge")
    # a CSV with dotted columns goes through as well
    csv_path = tmp_path / "enc.csv"
    _write_csv(csv_path, [_flat(examples.encounter(A, i).model_dump(mode="json")) for i in range(5)])
    assert "queued 5" in cli("send", csv_path, "--type", "encounter")

    msgs = _consume(settings, "raw.charge", 1)
    deadline = time.monotonic() + 30
    while sum(read_header(m.value())["record_count"] for m in msgs) < 100 and time.monotonic() < deadline:
        msgs += _consume(settings, "raw.charge", 1, 1.0)
    ids, seqs = [], []
    for m in msgs:
        env = open_envelope(m.value(), ring)
        seqs += range(env.header["first_seq"], env.header["first_seq"] + env.header["record_count"])
        ids += [r["record_id"] for r in env.records]
    assert seqs == list(range(1, 101)) and ids == [f"C{i:08d}" for i in range(100)]
    enc = [open_envelope(m.value(), ring) for m in _consume(settings, "raw.encounter", 1)]
    assert sum(len(e.records) for e in enc) == 5
