"""Per-institution SM4 keys, versioned, with rotation and revocation (密钥管理).

A key id is ``<institution code>.v<version>`` (e.g. ``H52010100001.v2``). The active key of an
institution encrypts new envelopes; retired keys still decrypt what was sent under them; revoked keys
are refused everywhere at once (revocations are also published on the ``keys`` topic so every running
processor learns them without a restart).

At rest the key ring is a JSON file whose key material is wrapped with SM4-GCM under a master key
(``YIJIAN_KEYRING_MASTER_KEY``; in production from a KMS or a mounted secret). Key material never
appears in repr, logs or exceptions.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from yijian.crypto import IntegrityError, SecretKey, new_nonce, sm4_gcm_decrypt, sm4_gcm_encrypt

KeyStatus = Literal["active", "retired", "revoked"]


class KeyError_(LookupError):
    reason = "unknown_key"


class UnknownKey(KeyError_):
    reason = "unknown_key"


class RevokedKey(KeyError_):
    reason = "revoked_key"


class NoActiveKey(KeyError_):
    reason = "no_active_key"


def key_id_for(institution_code: str, version: int) -> str:
    return f"{institution_code}.v{version}"


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    institution_code: str
    version: int
    status: KeyStatus
    created: datetime
    material: SecretKey = field(repr=False, compare=False)
    revoked_at: datetime | None = None

    def public(self) -> dict:
        """What may be shown or published: everything but the material."""
        return {
            "key_id": self.key_id,
            "institution_code": self.institution_code,
            "version": self.version,
            "status": self.status,
            "created": self.created.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class KeyRing:
    """In-memory key ring; thread-safe; persisted with :meth:`save` / :meth:`load`."""

    def __init__(self, entries: list[KeyEntry] | None = None) -> None:
        self._lock = threading.RLock()
        self._by_id: dict[str, KeyEntry] = {e.key_id: e for e in entries or []}

    # --- queries ----------------------------------------------------------------------------------
    def entries(self, institution_code: str | None = None) -> list[KeyEntry]:
        with self._lock:
            es = [e for e in self._by_id.values() if institution_code in (None, e.institution_code)]
        return sorted(es, key=lambda e: (e.institution_code, e.version))

    def get(self, key_id: str) -> KeyEntry:
        """The key for decrypting; raises UnknownKey or RevokedKey."""
        entry = self._by_id.get(key_id)
        if entry is None:
            raise UnknownKey(f"unknown key id {key_id!r}")
        if entry.status == "revoked":
            raise RevokedKey(f"key {key_id} was revoked at {entry.revoked_at:%Y-%m-%d %H:%M:%S}")
        return entry

    def active(self, institution_code: str) -> KeyEntry:
        """The key new envelopes of this institution are encrypted with."""
        for e in reversed(self.entries(institution_code)):
            if e.status == "active":
                return e
        raise NoActiveKey(f"institution {institution_code} has no active key (run `yijian keys new {institution_code}`)")

    def institutions(self) -> list[str]:
        return sorted({e.institution_code for e in self.entries()})

    # --- changes ----------------------------------------------------------------------------------
    def new(self, institution_code: str) -> KeyEntry:
        """First key of an institution, or the next version (same as rotate when one exists)."""
        with self._lock:
            versions = [e.version for e in self.entries(institution_code)]
            version = max(versions, default=0) + 1
            for e in self.entries(institution_code):
                if e.status == "active":
                    self._by_id[e.key_id] = replace(e, status="retired")
            entry = KeyEntry(
                key_id=key_id_for(institution_code, version),
                institution_code=institution_code,
                version=version,
                status="active",
                created=datetime.now(timezone.utc),
                material=SecretKey.generate(),
            )
            self._by_id[entry.key_id] = entry
            return entry

    rotate = new

    def revoke(self, key_id: str) -> KeyEntry:
        with self._lock:
            entry = self._by_id.get(key_id)
            if entry is None:
                raise UnknownKey(f"unknown key id {key_id!r}")
            revoked = replace(entry, status="revoked", revoked_at=entry.revoked_at or datetime.now(timezone.utc))
            self._by_id[key_id] = revoked
            return revoked

    def apply_status(self, key_id: str, status: KeyStatus, revoked_at: datetime | None = None) -> None:
        """Apply a status event from the ``keys`` topic (revocations never go back)."""
        with self._lock:
            entry = self._by_id.get(key_id)
            if entry is None or entry.status == "revoked":
                return
            self._by_id[key_id] = replace(entry, status=status, revoked_at=revoked_at)

    def merge(self, other: "KeyRing") -> None:
        """Take keys from another ring (a reloaded file); a revocation on either side wins."""
        with self._lock:
            for e in other.entries():
                mine = self._by_id.get(e.key_id)
                if mine is None or (e.status == "revoked" and mine.status != "revoked"):
                    self._by_id[e.key_id] = e
                elif mine.status != "revoked" and e.status != mine.status:
                    self._by_id[e.key_id] = replace(mine, status=e.status)

    def subset(self, institution_code: str) -> "KeyRing":
        """The keys of one institution only: what a hospital receives."""
        return KeyRing(self.entries(institution_code))

    # --- persistence ------------------------------------------------------------------------------
    def to_document(self, master: bytes) -> dict:
        items = []
        for e in self.entries():
            nonce = new_nonce()
            aad = e.key_id.encode()
            wrapped = sm4_gcm_encrypt(master, nonce, e.material.reveal(), aad)
            items.append({**e.public(), "wrapped": (nonce + wrapped).hex()})
        return {"format": "yijian-keyring/1", "wrap": "SM4-GCM", "keys": items}

    @classmethod
    def from_document(cls, doc: dict, master: bytes) -> "KeyRing":
        if doc.get("format") != "yijian-keyring/1":
            raise ValueError("not a yijian key ring file (format yijian-keyring/1)")
        entries = []
        for item in doc["keys"]:
            raw = bytes.fromhex(item["wrapped"])
            try:
                material = sm4_gcm_decrypt(master, raw[:12], raw[12:], item["key_id"].encode())
            except IntegrityError:
                raise ValueError(
                    f"cannot unwrap key {item['key_id']}: wrong master key (YIJIAN_KEYRING_MASTER_KEY, or <home>/keys/master.key "
                    "when unset) or an altered key ring file"
                ) from None
            entries.append(
                KeyEntry(
                    key_id=item["key_id"],
                    institution_code=item["institution_code"],
                    version=int(item["version"]),
                    status=item["status"],
                    created=datetime.fromisoformat(item["created"]),
                    material=SecretKey(material),
                    revoked_at=datetime.fromisoformat(item["revoked_at"]) if item.get("revoked_at") else None,
                )
            )
        return cls(entries)

    def save(self, path: Path, master: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_document(master), fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, master: bytes) -> "KeyRing":
        if not path.exists():
            return cls()
        return cls.from_document(json.loads(path.read_text(encoding="utf-8")), master)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._by_id)} keys, {len(self.institutions())} institutions)"


def load_keyring(settings) -> KeyRing:
    """The key ring configured in settings (empty if the file does not exist yet)."""
    return KeyRing.load(settings.keyring_path, settings.secret_bytes("keyring_master_key"))


def save_keyring(settings, ring: KeyRing) -> None:
    ring.save(settings.keyring_path, settings.secret_bytes("keyring_master_key"))
