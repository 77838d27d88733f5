"""The settings every Kafka client of the product shares, and the plain aiokafka clients Faust
does not provide (topic set-up; the registry reader uses `aiokafka_security`).

One security configuration (`Security`, from the SUNES_TLS* / SUNES_SASL_* variables) and one
client profile (`kafka` or `tansu`, from $SUNES_CLIENT_PROFILE or --broker-kind) serve the
worker, `sunes publish` and `sunes simulate` alike.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.cli.errors import CliError, ConfigError, Exit
from topics.names import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)

#: Where every command (and streams.brokers' external broker) finds the bootstrap servers.
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
#: The older name, still read after BOOTSTRAP_ENV.
BOOTSTRAP_ALIAS_ENV = "SUNES_BROKERS"
#: The worker's broker when none is given.
LOCAL_BOOTSTRAP = "127.0.0.1:9092"

#: Which client settings to use: `kafka` (aiokafka's and Faust's defaults) or `tansu` (what
#: the embedded demo broker needs). Not to be confused with streams.brokers.KIND_ENV
#: (SUNES_BROKER), which broker the tests and benchmarks start.
CLIENT_PROFILE_ENV = "SUNES_CLIENT_PROFILE"
CLIENT_PROFILES = ("kafka", "tansu")

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Security:
    """TLS and SASL towards the brokers (a hospital's Kafka usually wants both)."""

    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)  # never in a repr or a log

    def __post_init__(self) -> None:
        given = [self.sasl_mechanism, self.sasl_username, self.sasl_password]
        if any(given) and not all(given):
            raise ConfigError(
                "SASL needs a mechanism, a username and a password: set SUNES_SASL_MECHANISM, "
                "SUNES_SASL_USERNAME and SUNES_SASL_PASSWORD"
            )

    @property
    def protocol(self) -> str:
        """Kafka's security.protocol for these settings."""
        if self.sasl_mechanism:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def security_from_env(env: Mapping[str, str] = os.environ) -> Security:
    """The SUNES_TLS* / SUNES_SASL_* settings, or ConfigError naming the wrong one."""
    mechanism = env.get("SUNES_SASL_MECHANISM") or None
    if mechanism is not None and mechanism not in SASL_MECHANISMS:
        raise ConfigError(
            f"SUNES_SASL_MECHANISM={mechanism!r} is not supported; use one of "
            + ", ".join(SASL_MECHANISMS)
        )
    files = {}
    for name in ("SUNES_TLS_CA_FILE", "SUNES_TLS_CERT_FILE", "SUNES_TLS_KEY_FILE"):
        value = env.get(name) or None
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"{name}={value!r} is not a file: give the path of a PEM file")
        files[name] = value
    return Security(
        tls=env.get("SUNES_TLS", "").strip().lower() in _TRUE,
        ca_file=files["SUNES_TLS_CA_FILE"],
        cert_file=files["SUNES_TLS_CERT_FILE"],
        key_file=files["SUNES_TLS_KEY_FILE"],
        sasl_mechanism=mechanism,
        sasl_username=env.get("SUNES_SASL_USERNAME") or None,
        sasl_password=env.get("SUNES_SASL_PASSWORD") or None,
    )


def aiokafka_security(security: Security) -> dict[str, Any]:
    """aiokafka keyword arguments for TLS / SASL."""
    if not security.tls and not security.sasl_mechanism:
        return {}
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    if security.sasl_mechanism:
        kwargs.update(
            sasl_mechanism=security.sasl_mechanism,
            sasl_plain_username=security.sasl_username,
            sasl_plain_password=security.sasl_password,
        )
    if security.tls:
        kwargs["ssl_context"] = security.ssl_context()
    return kwargs


def client_overrides_for(profile: str) -> dict[str, Any]:
    """aiokafka producer settings of a client profile (see CLIENT_PROFILES)."""
    if profile != "tansu":
        return {}
    from streams.brokers.tansu import TANSU_PRODUCER_OVERRIDES

    return dict(TANSU_PRODUCER_OVERRIDES)


class TopicSetupError(CliError, RuntimeError):
    """The topics could not be created; the text says what to do instead."""

    exit = Exit.KAFKA


TOPIC_ALREADY_EXISTS = 36  # Kafka error code: a concurrent creator won the race


async def ensure_topics(
    bootstrap_servers: str,
    security: Security | None = None,
    topics: Iterable[TopicSpec] = ALL_TOPICS,
    replication_factor: int | None = None,
    horizon_ms: int | None = None,
) -> list[str]:
    """Create the missing topics with the partitions and compaction of topics/names.py
    (a broker that auto-creates topics would make the registry a plain, non-compacted one)
    and the retention of streams/topic_configs.py (`horizon_ms`: the input topics'; default,
    that of the default counting settings); return their names. Replication: as given, else
    up to 3 as the cluster allows. Existing topics are not altered: a setting that could
    lose records is logged as a WARNING with the command that fixes it."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    from streams.topic_configs import check_existing, configs_for, horizon_retention_ms

    security = security or Security()
    topics = list(topics)
    if horizon_ms is None:
        horizon_ms = horizon_retention_ms()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="sunes-admin",
        **aiokafka_security(security),
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [spec for spec in topics if spec.name not in existing]
        present = [spec for spec in topics if spec.name in existing]
        await check_existing(admin, present, horizon_ms, bootstrap_servers)
        if not missing:
            return []
        if replication_factor is None:
            replication_factor = max(1, min(3, len((await admin.describe_cluster())["brokers"])))
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    spec.partitions,
                    replication_factor,
                    topic_configs=configs_for(spec, horizon_ms),
                )
                for spec in missing
            ]
        )
    except (KafkaError, OSError) as exc:  # OSError: TLS handshake, refused connection
        check = ""
        if security.protocol != "PLAINTEXT":
            check = f" Check the SUNES_TLS* / SUNES_SASL_* settings ({security.protocol})."
        raise TopicSetupError(
            f"cannot create topics on {bootstrap_servers}: {exc!r}.{check} Create them yourself "
            "(see topics/names.py) and pass --no-create-topics"
        ) from exc
    finally:
        await admin.close()
    errors = [
        f"{name}: {message or code}"
        for name, code, message in response.topic_errors
        if code not in (0, TOPIC_ALREADY_EXISTS)
    ]
    if errors:
        raise TopicSetupError(
            "cannot create topics: " + "; ".join(errors) + ". Create them yourself (see "
            "topics/names.py) and pass --no-create-topics"
        )
    log.info("created topics %s", ", ".join(spec.name for spec in missing))
    return [spec.name for spec in missing]
