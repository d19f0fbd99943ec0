"""Every Kafka topic of the platform, in one place (names are ``<prefix><name>``).

The contract topics are fixed by DESIGN.md; internal topics carry what flows between stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    doc: str
    compacted: bool = False
    partitions: int | None = None  # None: Settings.topic_partitions
    config: dict[str, str] = field(default_factory=dict)

    def kafka_config(self) -> dict[str, str]:
        conf = dict(self.config)
        if self.compacted:
            conf.setdefault("cleanup.policy", "compact")
            conf.setdefault("min.cleanable.dirty.ratio", "0.1")
            conf.setdefault("segment.ms", "600000")
        return conf


RAW_TOPICS = {
    "encounter": "raw.encounter",
    "prescription": "raw.prescription",
    "charge": "raw.charge",
}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("raw.encounter", "Encrypted envelopes of encounters from hospitals; key = institution code."),
    TopicSpec("raw.prescription", "Encrypted envelopes of prescriptions; key = institution code."),
    TopicSpec("raw.charge", "Encrypted envelopes of charge lines; key = institution code."),
    TopicSpec("raw.control", "Heartbeats and daily manifests from hospitals (encrypted envelopes); key = institution code."),
    TopicSpec("rejected", "What could not be accepted, with a reason code and a pointer to the original."),
    TopicSpec("feedback", "Findings and quality issues for hospitals, encrypted to each institution's key."),
    TopicSpec("feedback.handling", "Hospitals' handling of findings (acknowledge / explain), encrypted envelopes."),
    TopicSpec("handling.records", "Hospitals' handling of findings, verified and decrypted by the processors, for the sink."),
    TopicSpec("rules", "Rule packs in force (compacted, key = pack id).", compacted=True, partitions=1),
    TopicSpec("refdata", "Reference data: code maps, registries, catalogues (compacted).", compacted=True, partitions=1),
    TopicSpec("keys", "Key ring events: new, rotated, revoked institution keys (compacted; no key material in clear).", compacted=True, partitions=1),
    TopicSpec("std.records", "Standardized records (pseudonymized) for rules and the sink; key = institution code."),
    TopicSpec("std.by_patient", "Standardized records repartitioned by patient pseudonym for stateful rules."),
    TopicSpec("quality.issues", "Per-record and per-institution quality issues."),
    TopicSpec("findings", "Rule findings (before encryption for the hospital)."),
    TopicSpec("control.ticks", "Internal clock of the processors: one tick per raw partition drives periodic per-institution checks."),
    TopicSpec("selfcheck", "Round-trip probe written and read back by `yijian stack check`.", partitions=1),
)


def topic_names() -> list[str]:
    return [t.name for t in TOPICS]


def spec(name: str) -> TopicSpec:
    for t in TOPICS:
        if t.name == name:
            return t
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(topic_names())}")
