"""The key ring: versions, rotation, revocation, persistence wrapped under a master key."""

import json
import os
import stat

import pytest

from yijian.crypto import SecretKey
from yijian.keyring import KeyRing, NoActiveKey, RevokedKey, UnknownKey, load_keyring, save_keyring

A, B = "H52010100001", "H52030200002"


def test_versions_rotation_and_revocation():
    ring = KeyRing()
    v1 = ring.new(A)
    assert v1.key_id == f"{A}.v1" and ring.active(A).key_id == v1.key_id
    v2 = ring.rotate(A)
    assert ring.active(A).key_id == f"{A}.v2" == v2.key_id
    assert ring.get(v1.key_id).status == "retired"  # still decrypts
    ring.revoke(v2.key_id)
    with pytest.raises(RevokedKey):
        ring.get(v2.key_id)
    with pytest.raises(NoActiveKey):
        ring.active(A)
    with pytest.raises(UnknownKey):
        ring.get(f"{B}.v1")
    ring.apply_status(v2.key_id, "active")  # revocations never go back
    assert ring.entries(A)[-1].status == "revoked"


def test_save_load_wrong_master_mode_and_no_material_in_clear(tmp_path):
    ring = KeyRing()
    ring.new(A)
    ring.new(B)
    ring.rotate(A)
    ring.revoke(f"{A}.v1")
    master = os.urandom(16)
    path = tmp_path / "keys" / "ring.json"
    ring.save(path, master)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for e in ring.entries():
        assert e.material.reveal().hex() not in text.lower()
    doc = json.loads(text)
    assert doc["format"] == "yijian-keyring/1" and all("wrapped" in k and "material" not in k for k in doc["keys"])
    back = KeyRing.load(path, master)
    assert [(e.key_id, e.status, e.material) for e in back.entries()] == [(e.key_id, e.status, e.material) for e in ring.entries()]
    with pytest.raises(RevokedKey):
        back.get(f"{A}.v1")
    with pytest.raises(ValueError, match="wrong master key"):
        KeyRing.load(path, os.urandom(16))
    # altering the file (moving wrapped material to another key id) is detected too
    doc["keys"][0]["wrapped"], doc["keys"][1]["wrapped"] = doc["keys"][1]["wrapped"], doc["keys"][0]["wrapped"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError):
        KeyRing.load(path, master)


def test_subset_is_one_institution_only_and_repr_shows_no_material():
    ring = KeyRing()
    a, b = ring.new(A), ring.new(B)
    sub = ring.subset(B)
    assert [e.key_id for e in sub.entries()] == [b.key_id]
    for text in (repr(ring), repr(a), str(a), repr(ring.entries())):
        assert a.material.reveal().hex() not in text.lower() and b.material.reveal().hex() not in text.lower()
    assert "material" not in a.public() and isinstance(a.material, SecretKey)


def test_settings_key_ring_round_trip(settings):
    ring = load_keyring(settings)
    assert ring.entries() == []
    ring.new(A)
    save_keyring(settings, ring)
    assert load_keyring(settings).active(A).material == ring.active(A).material
    master_file = settings.home / "keys" / "master.key"
    assert master_file.exists() and stat.S_IMODE(master_file.stat().st_mode) == 0o600
