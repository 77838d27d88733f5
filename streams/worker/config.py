"""Worker settings: SUNES_* environment variables, overridable by `sunes worker` flags.

Safe defaults: a broker on localhost, state on disk (RocksDB), the web views on loopback.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.settings import Settings
from streams.cli.options import add_rule_options, settings_from_args

# Faust store URLs: RocksDB through rocksdict (streams.worker.table_store sets the driver), or memory.
STORES = ("rocksdb://", "memory://")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class ConfigError(ValueError):
    """A setting is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Security:
    """TLS and SASL towards the brokers (a hospital's Kafka usually wants both)."""

    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True)
class WorkerConfig:
    brokers: tuple[str, ...] = ("127.0.0.1:9092",)
    app_id: str = "sunes-stream"
    store: str = "rocksdb://"
    data_dir: Path = Path("var/sunes")
    partitions: int = 6  # of the internal topics (repartition, table changelog)
    replication_factor: int = 1
    standby_replicas: int = 0
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    rules: Settings = field(default_factory=Settings)
    # Decoded state entries kept in RAM above the store (processors.state), all establishments
    # together: ~1 KB each.
    cache_entries: int = 100_000
    security: Security = field(default_factory=Security)
    # Faust settings a broker needs (Tansu: one record per batch), from streams.brokers.
    faust_overrides: Mapping[str, Any] = field(default_factory=dict)
    client_overrides: Mapping[str, Any] = field(default_factory=dict)  # aiokafka producers

    def __post_init__(self) -> None:
        if not self.brokers:
            raise ConfigError("no broker given: set KAFKA_BOOTSTRAP_SERVERS or --brokers host:port")
        if self.store not in STORES:
            raise ConfigError(
                f"unknown store {self.store!r}: use memory:// (tests, demo) or rocksdb:// (production)"
            )
        if self.sasl_incomplete:
            raise ConfigError(
                "SASL needs a mechanism, a username and a password: set SUNES_SASL_MECHANISM, "
                "SUNES_SASL_USERNAME and SUNES_SASL_PASSWORD"
            )
        for name, value in (
            ("partitions", self.partitions),
            ("web_port", self.web_port),
            ("cache_entries", self.cache_entries),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value}")

    @property
    def sasl_incomplete(self) -> bool:
        s = self.security
        given = [s.sasl_mechanism, s.sasl_username, s.sasl_password]
        return any(given) and not all(given)

    @property
    def internal_topic(self) -> str:
        """The repartition topic: bundles of events keyed by FINESS."""
        return f"{self.app_id}-events-by-finess"

    @property
    def broker_urls(self) -> list[str]:
        return [b if "://" in b else f"kafka://{b}" for b in self.brokers]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.split("://", 1)[-1] for b in self.brokers)


def split_brokers(value: str) -> tuple[str, ...]:
    return tuple(b.strip() for b in value.replace(";", ",").split(",") if b.strip())


def add_worker_options(
    parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ
) -> None:
    default_brokers = (
        env.get("KAFKA_BOOTSTRAP_SERVERS") or env.get("SUNES_BROKERS") or "127.0.0.1:9092"
    )
    parser.add_argument(
        "--brokers",
        default=default_brokers,
        help="Kafka bootstrap servers, comma-separated [env KAFKA_BOOTSTRAP_SERVERS]",
    )
    parser.add_argument("--app-id", default=env.get("SUNES_APP_ID", "sunes-stream"),
                        help="consumer group and internal topic prefix [env SUNES_APP_ID]")  # fmt: skip
    parser.add_argument(
        "--store",
        default=env.get("SUNES_STORE", "rocksdb://"),
        help="state store: rocksdb:// (on disk, under --data-dir) or memory:// (tests; the "
        "state is read back from the changelog at every start) [env SUNES_STORE, default "
        "rocksdb://]",
    )
    parser.add_argument("--data-dir", type=Path, default=Path(env.get("SUNES_DATA_DIR", "var/sunes")),
                        help="where rocksdb keeps tables [env SUNES_DATA_DIR]")  # fmt: skip
    parser.add_argument("--partitions", type=int, default=int(env.get("SUNES_PARTITIONS", "6")),
                        help="partitions of the internal topics [env SUNES_PARTITIONS]")  # fmt: skip
    parser.add_argument("--replication-factor", type=int,
                        default=int(env.get("SUNES_REPLICATION_FACTOR", "1")),
                        help="of the internal topics [env SUNES_REPLICATION_FACTOR]")  # fmt: skip
    parser.add_argument("--web-host", default=env.get("SUNES_WEB_HOST", "127.0.0.1"),
                        help="bind address of /indicators, /metrics, /health [env SUNES_WEB_HOST]")  # fmt: skip
    parser.add_argument("--web-port", type=int, default=int(env.get("SUNES_WEB_PORT", "6066")),
                        help="[env SUNES_WEB_PORT]")  # fmt: skip
    parser.add_argument(
        "--cache-entries",
        type=int,
        default=int(env.get("SUNES_CACHE_ENTRIES", "100000")),
        help="decoded state entries kept in RAM above the store, ~1 KB each "
        "[env SUNES_CACHE_ENTRIES, default 100000]",
    )
    parser.add_argument(
        "--broker-kind",
        choices=("kafka", "tansu"),
        default="tansu" if env.get("SUNES_BROKER") == "tansu" else "kafka",
        help="tansu: the client settings the embedded demo broker needs [env SUNES_BROKER]",
    )
    add_rule_options(parser, env)


def faust_overrides_for(kind: str) -> dict[str, Any]:
    if kind != "tansu":
        return {}
    from streams.brokers.tansu import TANSU_FAUST_SETTINGS

    return dict(TANSU_FAUST_SETTINGS)


def client_overrides_for(kind: str) -> dict[str, Any]:
    if kind != "tansu":
        return {}
    from streams.brokers.tansu import TANSU_PRODUCER_OVERRIDES

    return dict(TANSU_PRODUCER_OVERRIDES)


def security_from_env(env: Mapping[str, str] = os.environ) -> Security:
    mechanism = env.get("SUNES_SASL_MECHANISM") or None
    if mechanism is not None and mechanism not in SASL_MECHANISMS:
        raise ConfigError(
            f"SUNES_SASL_MECHANISM={mechanism!r} is not supported; use one of "
            + ", ".join(SASL_MECHANISMS)
        )
    return Security(
        tls=env.get("SUNES_TLS", "").lower() in {"1", "true", "yes", "on"},
        ca_file=env.get("SUNES_TLS_CA_FILE") or None,
        cert_file=env.get("SUNES_TLS_CERT_FILE") or None,
        key_file=env.get("SUNES_TLS_KEY_FILE") or None,
        sasl_mechanism=mechanism,
        sasl_username=env.get("SUNES_SASL_USERNAME") or None,
        sasl_password=env.get("SUNES_SASL_PASSWORD") or None,
    )


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> WorkerConfig:
    store = args.store
    if store not in STORES:
        raise ConfigError(
            f"unknown store {args.store!r}: use memory:// (tests, demo) or rocksdb:// (production)"
        )
    return WorkerConfig(
        brokers=split_brokers(args.brokers),
        app_id=args.app_id,
        store=store,
        data_dir=args.data_dir,
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        web_host=args.web_host,
        web_port=args.web_port,
        rules=settings_from_args(args),
        security=security_from_env(env),
        faust_overrides=faust_overrides_for(args.broker_kind),
        client_overrides=client_overrides_for(args.broker_kind),
        cache_entries=args.cache_entries,
    )
