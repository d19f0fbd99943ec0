"""The one configuration object of yijian.

Every part (SDK, processors, sink, CLI, tests) reads its settings from :class:`Settings`. Values come,
in order of precedence, from keyword arguments, ``YIJIAN_*`` environment variables, an optional env
file (``YIJIAN_ENV_FILE``, default ``./yijian.env``), and the defaults below. Derived defaults (paths
under ``home``, the DSN, the app id) are filled in at construction: make variants with
``Settings(**overrides)``, not ``model_copy`` (which would keep the old derived values).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="YIJIAN_",
        env_file=os.environ.get("YIJIAN_ENV_FILE", "yijian.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    home: Path = Field(
        default=Path("var"),
        description="Folder for local state: Kafka data and jars, embedded ClickHouse data, key ring, outbox.",
    )

    # --- Kafka -------------------------------------------------------------------------------------
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers (host:port,...).")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = Field(default=None, description="CA bundle to verify the brokers' TLS certificates.")
    topic_prefix: str = Field(default="yijian.", description="Prefix of every topic name (e.g. yijian.raw.encounter).")
    topic_partitions: int = Field(default=4, ge=1, description="Partitions of data topics the platform creates; >= processor replicas.")
    topic_replication: int = Field(default=1, ge=1, description="Replication factor of topics the platform creates (3 in production).")

    # --- ClickHouse --------------------------------------------------------------------------------
    clickhouse_dsn: str | None = Field(
        default=None,
        description="clickhouse-connect DSN: chdb:///abs/path (embedded, default <home>/data/clickhouse) or https://user:pass@host:8443.",
    )
    clickhouse_database: str = Field(default="yijian", description="ClickHouse database of the platform.")
    clickhouse_profile: Literal["local", "cluster"] = Field(
        default="local",
        description="DDL profile for `yijian db migrate`: local (embedded engine / single server) or cluster (ON CLUSTER, Replicated*, Distributed).",
    )
    clickhouse_cluster: str = Field(default="yijian", description="Cluster name for the cluster DDL profile (ON CLUSTER <name>).")

    # --- sink, query endpoint and dashboard -------------------------------------------------------------
    sink_group_id: str | None = Field(default=None, description="Kafka consumer group of the ClickHouse sink. Default <topic_prefix>sink.")
    sink_batch_rows: int = Field(default=50_000, ge=1, description="Sink flushes when this many rows are buffered ...")
    sink_batch_seconds: float = Field(default=1.0, gt=0, description="... or when the oldest buffered message is this old (seconds).")
    sink_max_buffer_rows: int = Field(default=500_000, ge=1, description="Sink pauses consumption above this many buffered rows (bounded memory while ClickHouse is down).")
    sink_retry_max_seconds: float = Field(default=30.0, gt=0, description="Longest back-off between ClickHouse insert retries (seconds).")
    sink_http_host: str = Field(default="127.0.0.1", description="Address of the sink's /metrics, /health and local /query endpoint.")
    sink_http_port: int = Field(default=8124, ge=0, description="Port of the sink's HTTP endpoint (0: none). `yijian query` and the dashboard use it when the sink owns the embedded engine.")
    dashboard_port: int = Field(default=8125, ge=0, description="Port of `yijian dashboard` (bound to sink_http_host).")
    quality_weights: dict[str, float] = Field(
        default={"completeness": 30, "timeliness": 30, "consistency": 20, "validity": 10, "mapping": 10},
        description="Weights of the institution quality score dimensions (domain.md §3.4); JSON in YIJIAN_QUALITY_WEIGHTS.",
    )

    # --- keys and pseudonyms (secrets: never printed; in production from a KMS or a mounted secret) --
    keyring_path: Path | None = Field(default=None, description="Key ring file (per-institution SM4 keys, wrapped). Default <home>/keys/keyring.json.")
    keyring_master_key: SecretStr | None = Field(
        default=None,
        description="32 hex digits: SM4 key that wraps the key ring at rest (KMS stand-in). Unset locally: generated once into <home>/keys/master.key.",
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Secret for keyed SM3 patient pseudonyms (HMAC-SM3). Unset locally: generated once into <home>/keys/pseudonym.key.",
    )

    # --- processors -------------------------------------------------------------------------------
    processor_app_id: str | None = Field(
        default=None,
        description="Faust app id = consumer group and prefix of its changelog topics. Default <topic_prefix>processors. "
        "Changing it starts a new group that re-reads the raw topics from the beginning.",
    )
    processor_store: str = Field(
        default="rocksdb://",
        description="Faust table store: rocksdb:// keeps state on local disk under <home> (bounded memory); memory:// keeps it in RAM.",
    )
    processor_data_dir: Path | None = Field(
        default=None,
        description="Local state of one processor replica (RocksDB tables). Default <home>/processors/<app id>; each replica on a host needs its own.",
    )
    sla_hours_encounter: float = Field(default=24, gt=0, description="Timeliness SLA: encounter received within N hours of its event time.")
    sla_hours_prescription: float = Field(default=24, gt=0, description="Timeliness SLA for prescriptions (hours).")
    sla_hours_charge: float = Field(default=24, gt=0, description="Timeliness SLA for charge lines (hours).")
    silent_after_minutes: float = Field(default=10, gt=0, description="An institution with no heartbeat and no traffic for this long is 'silent'.")
    orphan_grace_minutes: float = Field(default=60, gt=0, description="A charge or prescription whose encounter has not arrived after this long is a consistency issue.")
    manifest_grace_s: float = Field(default=120, ge=0, description="A daily manifest is reconciled this long after it arrives (records of the day may still be in flight).")
    encounter_retention_days: float = Field(default=7, gt=0, description="How long processors remember encounter ids for the cross-record check.")
    control_interval_s: float = Field(default=10, gt=0, description="How often processors evaluate connection status and pending cross-record checks.")
    patient_cache_size: int = Field(default=20_000, ge=100, description="Patient histories a processor replica keeps deserialized in memory (the rest stay in RocksDB); bounds its memory.")
    stall_after_s: float = Field(default=60, gt=0, description="A replica whose owned raw partition has waiting messages but no progress for this long reports itself stalled (/health 503) so it is restarted.")
    worker_web_port: int = Field(default=6066, description="Port of the processors' health and Prometheus metrics endpoint.")
    worker_web_host: str = Field(default="127.0.0.1", description="Address the processors' web endpoint binds to (0.0.0.0 in a pod).")

    # --- hospital SDK (yijian.producers) -------------------------------------------------------------
    institution_code: str | None = Field(
        default=None,
        description="The hospital's institution code (H + 6-digit region + 5-digit sequence) the SDK and `yijian send` publish as.",
    )
    producer_id: str = Field(
        default="his-1",
        min_length=1,
        max_length=64,
        description="Id of this HIS installation; records are numbered without gaps per institution, producer id and record type.",
    )
    outbox_path: Path | None = Field(
        default=None,
        description="SQLite outbox of the SDK (records wait here until the broker confirms them). Default <home>/outbox/<institution>.sqlite.",
    )
    outbox_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="SQLite synchronous mode of the outbox: NORMAL survives a killed process, FULL also a power cut (slower).",
    )
    linger_ms: int = Field(default=20, ge=0, description="How long the SDK waits to fill a batch (envelope) before sealing it, in ms.")
    batch_max_records: int = Field(default=500, ge=1, le=10_000, description="Most records in one envelope.")
    batch_max_bytes: int = Field(default=512 * 1024, ge=1024, description="Most Avro payload bytes in one envelope.")
    heartbeat_interval_s: float = Field(default=60.0, gt=0, description="Seconds between the SDK's heartbeats on raw.control (0 < x).")
    delivery_timeout_ms: int = Field(
        default=30_000,
        ge=1000,
        description="How long the Kafka client tries one envelope before the SDK takes it back from the outbox and retries later.",
    )

    @model_validator(mode="after")
    def _absolute_paths(self) -> "Settings":
        self.home = self.home.expanduser().resolve()
        if self.sink_group_id is None:
            self.sink_group_id = f"{self.topic_prefix}sink"
        if self.processor_app_id is None:
            self.processor_app_id = f"{self.topic_prefix}processors"
        if self.processor_data_dir is None:  # RocksDB state of one app id (Faust does not separate app ids itself)
            self.processor_data_dir = self.home / "processors" / self.processor_app_id
        if self.keyring_path is None:
            self.keyring_path = self.home / "keys" / "keyring.json"
        if self.outbox_path is not None:
            self.outbox_path = self.outbox_path.expanduser().resolve()
        if self.clickhouse_dsn is None:
            self.clickhouse_dsn = f"chdb://{self.home / 'data' / 'clickhouse'}"
        return self

    # --- derived -----------------------------------------------------------------------------------
    def topic(self, name: str) -> str:
        """Full topic name for a logical name such as ``raw.encounter``."""
        return f"{self.topic_prefix}{name}"

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings shared by every confluent-kafka client (connection and security only)."""
        conf: dict[str, str] = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
        return conf

    def secret_bytes(self, name: str) -> bytes:
        """A secret setting as bytes; locally generated once into <home>/keys/<name>.key when unset."""
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            return bytes.fromhex(value.get_secret_value())
        path = self.home / "keys" / f"{name.removesuffix('_key').replace('keyring_', '')}.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return bytes.fromhex(path.read_text().strip())

    def outbox_file(self, institution_code: str) -> Path:
        """The SDK outbox of an institution: ``outbox_path`` or <home>/outbox/<institution>.sqlite."""
        return self.outbox_path or self.home / "outbox" / f"{institution_code}.sqlite"

    @property
    def is_embedded_clickhouse(self) -> bool:
        return str(self.clickhouse_dsn).startswith("chdb://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once). Tests build their own ``Settings(...)`` instead."""
    return Settings()
