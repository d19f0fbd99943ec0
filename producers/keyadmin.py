"""Key administration helpers behind `yijian keys ...`.

- Status events on the ``keys`` topic (compacted, key = key id): JSON
  ``{"key_id": ..., "status": "revoked", "revoked_at": "<ISO 8601>"}``; never any key material.
  Processors apply them with ``KeyRing.apply_status`` so a revoked key is refused at once.
- Export for a hospital: only that institution's keys, in the key ring file format
  (``yijian-keyring/1``), wrapped under a master key the hospital chose.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from yijian.config import Settings
from yijian.keyring import KeyEntry, KeyRing


def key_event(entry: KeyEntry) -> bytes:
    """The status event of a key (what may be published)."""
    return json.dumps(
        {
            "key_id": entry.key_id,
            "institution_code": entry.institution_code,
            "status": entry.status,
            "revoked_at": entry.revoked_at.isoformat() if entry.revoked_at else None,
        },
        ensure_ascii=False,
    ).encode()


def parse_key_event(value: bytes) -> tuple[str, str, datetime | None]:
    """(key_id, status, revoked_at) of a ``keys`` topic message."""
    doc = json.loads(value)
    at = doc.get("revoked_at")
    return doc["key_id"], doc["status"], datetime.fromisoformat(at) if at else None


def publish_key_status(settings: Settings, entry: KeyEntry, timeout: float = 15.0) -> None:
    """Publish a key's status on the ``keys`` topic and wait for the broker's confirmation."""
    from yijian.kafka import producer

    p = producer(settings)
    errors: list = []
    p.produce(settings.topic("keys"), key=entry.key_id.encode(), value=key_event(entry), on_delivery=lambda err, _m: err and errors.append(err))
    left = p.flush(timeout)
    if left or errors:
        raise RuntimeError(
            f"吊销事件未能发布到 {settings.topic('keys')} / could not publish the revocation to {settings.topic('keys')}: "
            f"{errors[0] if errors else 'timeout'}"
        )


def export_for_hospital(ring: KeyRing, institution_code: str, path: Path, hospital_master: bytes) -> int:
    """Write the institution's keys only, wrapped under the hospital's master key; returns the count."""
    sub = ring.subset(institution_code)
    n = len(sub.entries())
    if n == 0:
        raise LookupError(f"机构 {institution_code} 没有密钥 / institution {institution_code} has no keys")
    sub.save(path, hospital_master)
    return n
