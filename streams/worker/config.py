"""Worker settings: SUNES_* environment variables, overridable by `sunes worker` flags
(defined in streams.cli.options; `config_from_args` turns them into a WorkerConfig).

Safe defaults: a broker on localhost, state on disk (RocksDB), the web views on loopback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.settings import Settings
from streams.access.config import AccessConfig
from streams.cli.errors import ConfigError
from streams.cli.options import (
    INGEST_MODES,
    brokers_from,
    client_profile_from,
    settings_from_args,
    topic_names_from,
)
from streams.kafka_clients import (
    BOOTSTRAP_ENV,
    LOCAL_BOOTSTRAP,
    Security,
    client_overrides_for,
    security_from_env,
)
from streams.worker.pages.config import PageConfig, page_config_from
from streams.worker.stop_bound import DEFAULT_GRACE_SECONDS
from topics.names import CONTRACT_TOPICS, TopicNames

__all__ = [
    "STORES",
    "ConfigError",
    "Security",
    "WorkerConfig",
    "client_overrides_for",
    "config_from_args",
    "faust_overrides_for",
    "security_from_env",
    "split_brokers",
]

TOKEN_ENV = "SUNES_API_TOKEN"
WEB_URL_ENV = "SUNES_WEB_URL"

# Faust store URLs: RocksDB through rocksdict (streams.worker.table_store sets the driver), or memory.
STORES = ("rocksdb://", "memory://")


# Above this a poll would hold the event loop for seconds while the worker catches up, and
# its bundles in memory all at once (bench/README.md, the ingest poll).
MAX_INGEST_BATCH = 100_000


@dataclass(frozen=True)
class WorkerConfig:
    brokers: tuple[str, ...] = (LOCAL_BOOTSTRAP,)
    app_id: str = "sunes-stream"
    topics: TopicNames = CONTRACT_TOPICS  # input, registry and dead-letter topics
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
    # Input messages per ingest poll at most (streams/worker/ingest.py): one bundle per FINESS
    # per poll, so one flush of its changed entries. 5,000, measured against 10,000 and 20,000
    # (bench/README.md, the ingest's poll): no CPU per event gained any more (9 pairs), the
    # steady rate the same within the noise, while a poll holds the event loop ~60 ms at
    # 5,000, ~165 at 10,000, ~380 at 20,000 and peak RSS grows ~20 / ~50 MiB.
    ingest_batch: int = 5000
    # Where the ingest stage runs: "process", a child process of the worker (off the main
    # thread, its bottleneck: streams/worker/ingest_process.py), or "inline", on the event loop.
    ingest: str = "process"
    security: Security = field(default_factory=Security)
    # Faust settings a broker needs (Tansu: one record per batch), from streams.brokers.
    faust_overrides: Mapping[str, Any] = field(default_factory=dict)
    client_overrides: Mapping[str, Any] = field(default_factory=dict)  # aiokafka producers
    # Who may see what (streams/access): OpenID Connect, static tokens, the legacy token.
    access: AccessConfig = field(default_factory=AccessConfig)
    # The pages for people (/ui/, streams/worker/pages): session secret, OIDC client.
    pages: PageConfig = field(default_factory=PageConfig)
    # This worker's address as the other workers reach it (Faust's canonical_url, shared in
    # the partition assignment: the pages forward a FINESS to its owner); None: web host:port.
    web_url: str | None = None
    # Seconds a stop request may take before the worker exits anyway (stop_bound.py).
    stop_grace_seconds: int = DEFAULT_GRACE_SECONDS

    def __post_init__(self) -> None:
        if not self.brokers:
            raise ConfigError(f"no broker given: set {BOOTSTRAP_ENV} or --brokers host:port")
        if self.store not in STORES:
            raise ConfigError(
                f"unknown store {self.store!r}: use memory:// (tests, demo) or rocksdb:// (production)"
            )
        for name, value in (
            ("partitions", self.partitions),
            ("web_port", self.web_port),
            ("cache_entries", self.cache_entries),
            ("stop_grace_seconds", self.stop_grace_seconds),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value}")
        if not 1 <= self.ingest_batch <= MAX_INGEST_BATCH:
            raise ConfigError(
                f"SUNES_INGEST_BATCH / --ingest-batch must be between 1 and {MAX_INGEST_BATCH} "
                f"messages per poll, got {self.ingest_batch}"
            )

        if self.ingest not in INGEST_MODES:
            raise ConfigError(
                f"SUNES_INGEST / --ingest must be {' or '.join(INGEST_MODES)}, got {self.ingest!r}"
            )

    @property
    def internal_topic(self) -> str:
        """The repartition topic: bundles of events keyed by FINESS."""
        return f"{self.app_id}-events-by-finess"

    @property
    def ingest_group(self) -> str:
        """The ingest stage's consumer group (the establishment stage's is the app id)."""
        return f"{self.app_id}-ingest"

    @property
    def changelog_topic(self) -> str:
        """The facts table's changelog, as Faust names it (compacted)."""
        return f"{self.app_id}-facts-changelog"

    @property
    def broker_urls(self) -> list[str]:
        return [b if "://" in b else f"kafka://{b}" for b in self.brokers]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.split("://", 1)[-1] for b in self.brokers)


def split_brokers(value: str) -> tuple[str, ...]:
    return tuple(b.strip() for b in value.replace(";", ",").split(",") if b.strip())


def faust_overrides_for(profile: str) -> dict[str, Any]:
    """Faust settings of a client profile (streams.kafka_clients.CLIENT_PROFILES)."""
    if profile != "tansu":
        return {}
    from streams.brokers.tansu import TANSU_FAUST_SETTINGS

    return dict(TANSU_FAUST_SETTINGS)


def api_token_from(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """SUNES_API_TOKEN, or the first line of --api-token-file; None when neither is given."""
    given = env.get(TOKEN_ENV, "").strip() or None
    path: Path | None = args.api_token_file
    if path is None:
        return given
    if given is not None:
        raise ConfigError(f"give the access token once: {TOKEN_ENV} or --api-token-file, not both")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the access token file {path} ({exc.__class__.__name__}): check "
            "SUNES_API_TOKEN_FILE / --api-token-file"
        ) from None
    token = (text.strip().splitlines() or [""])[0].strip()
    if not token:
        raise ConfigError(f"the access token file {path} is empty: put the token on its first line")
    return token


def access_config_from(args: argparse.Namespace, env: Mapping[str, str]) -> AccessConfig:
    return AccessConfig(
        oidc_issuer=args.oidc_issuer,
        oidc_audience=args.oidc_audience,
        oidc_scope_claim=args.oidc_scope_claim,
        oidc_leeway_seconds=args.oidc_leeway_seconds,
        tokens_file=args.access_tokens_file,
        legacy_token=api_token_from(args, env),
        figures_access=args.figures_access,
    )


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> WorkerConfig:
    store = args.store
    if store not in STORES:
        raise ConfigError(
            f"unknown store {args.store!r}: use memory:// (tests, demo) or rocksdb:// (production)"
        )
    profile = client_profile_from(args)
    return WorkerConfig(
        brokers=split_brokers(brokers_from(args, env, LOCAL_BOOTSTRAP) or ""),
        app_id=args.app_id,
        topics=topic_names_from(args),
        store=store,
        data_dir=args.data_dir,
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        web_host=args.web_host,
        web_port=args.web_port,
        rules=settings_from_args(args),
        security=security_from_env(env),
        faust_overrides=faust_overrides_for(profile),
        client_overrides=client_overrides_for(profile),
        cache_entries=args.cache_entries,
        ingest_batch=args.ingest_batch,
        ingest=args.ingest,
        access=access_config_from(args, env),
        pages=page_config_from(env),
        web_url=web_url_from(env),
        stop_grace_seconds=args.stop_grace_seconds,
    )


def web_url_from(env: Mapping[str, str]) -> str | None:
    url = env.get(WEB_URL_ENV, "").strip().rstrip("/") or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{WEB_URL_ENV} must be this worker's address as the others reach it "
            f"(http://host:port), got {url!r}"
        )
    return url
