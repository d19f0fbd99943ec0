"""Deploying rule packs without downtime: the compacted ``rules`` topic is the source of truth.

- key ``<pack id>``            → the pack version in force (JSON of :class:`Pack`); a tombstone undeploys it;
- key ``<pack id>@<version>``  → every version ever deployed (kept by compaction: distinct keys), so a
  rollback republishes an earlier version without needing the file.

Every processor replica reads the topic from the beginning at start-up and follows it while running,
rebuilding its rule engine within seconds of a deploy; each finding names the rule version and the pack
version in force.
"""

from __future__ import annotations

from dataclasses import dataclass

from yijian.config import Settings
from yijian.kafka import producer, read_to_end
from yijian.rules.model import Pack


@dataclass
class DeployedState:
    in_force: dict[str, Pack]  # pack id → pack
    archive: dict[str, dict[str, Pack]]  # pack id → version → pack


def apply_message(state: DeployedState, key: str, value: bytes | None) -> bool:
    """Fold one message of the rules topic into ``state``; True if the packs in force changed."""
    if "@" in key:
        if value is not None:
            pack = Pack.from_json(value)
            state.archive.setdefault(pack.id, {})[str(pack.version)] = pack
        return False
    if value is None:
        return state.in_force.pop(key, None) is not None
    state.in_force[key] = Pack.from_json(value)
    return True


def read_deployed(settings: Settings, timeout: float = 15.0) -> DeployedState:
    """Everything on the rules topic up to its current end."""
    state = DeployedState({}, {})
    read_to_end(settings, settings.topic("rules"), lambda msg: apply_message(state, msg.key().decode(), msg.value()), timeout)
    return state


def publish(settings: Settings, pack: Pack) -> None:
    """Put ``pack`` in force (and in the archive)."""
    p = producer(settings)
    data = pack.to_json()
    p.produce(settings.topic("rules"), key=f"{pack.id}@{pack.version}", value=data)
    p.produce(settings.topic("rules"), key=pack.id, value=data)
    if p.flush(30):
        raise RuntimeError("Kafka did not acknowledge the rule pack within 30 s")


def undeploy(settings: Settings, pack_id: str) -> None:
    p = producer(settings)
    p.produce(settings.topic("rules"), key=pack_id, value=None)
    if p.flush(30):
        raise RuntimeError("Kafka did not acknowledge the tombstone within 30 s")


def rollback(settings: Settings, pack_id: str, to_version: str | None = None) -> Pack:
    """Republish an earlier deployed version (default: the one before the version in force)."""
    state = read_deployed(settings)
    versions = state.archive.get(pack_id, {})
    if not versions:
        raise LookupError(f"规则包 {pack_id} 从未部署 / pack {pack_id} was never deployed")
    current = state.in_force.get(pack_id)
    if to_version is None:
        older = sorted((v for v in versions if current is None or _vkey(v) < _vkey(str(current.version))), key=_vkey)
        if not older:
            raise LookupError(f"规则包 {pack_id} 没有更早的版本 / no earlier version of {pack_id} to roll back to")
        to_version = older[-1]
    if to_version not in versions:
        raise LookupError(f"规则包 {pack_id} 无版本 {to_version} / no deployed version {to_version}; known: {', '.join(sorted(versions, key=_vkey))}")
    pack = versions[to_version]
    p = producer(settings)
    p.produce(settings.topic("rules"), key=pack_id, value=pack.to_json())
    if p.flush(30):
        raise RuntimeError("Kafka did not acknowledge the rollback within 30 s")
    return pack


def _vkey(v: str) -> tuple:
    return tuple(int(x) if x.isdigit() else x for x in str(v).replace("-", ".").split("."))
