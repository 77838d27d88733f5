"""Plain aiokafka clients for what Faust does not do: topic set-up and the registry reader."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from streams.worker.config import Security
from topics.names import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)


def aiokafka_security(security: Security) -> dict[str, Any]:
    """aiokafka keyword arguments for TLS / SASL."""
    if not security.tls and not security.sasl_mechanism:
        return {}
    kwargs: dict[str, Any] = {}
    if security.sasl_mechanism:
        kwargs.update(
            security_protocol="SASL_SSL" if security.tls else "SASL_PLAINTEXT",
            sasl_mechanism=security.sasl_mechanism,
            sasl_plain_username=security.sasl_username,
            sasl_plain_password=security.sasl_password,
        )
    else:
        kwargs["security_protocol"] = "SSL"
    if security.tls:
        kwargs["ssl_context"] = security.ssl_context()
    return kwargs


class TopicSetupError(RuntimeError):
    """The topics could not be created; the text says what to do instead."""


TOPIC_ALREADY_EXISTS = 36  # Kafka error code: a concurrent creator won the race


async def ensure_topics(
    bootstrap_servers: str,
    security: Security | None = None,
    topics: Iterable[TopicSpec] = ALL_TOPICS,
    replication_factor: int | None = None,
) -> list[str]:
    """Create the missing topics with the partitions and compaction of topics/names.py
    (a broker that auto-creates topics would make the registry a plain, non-compacted one);
    return their names. Replication: as given, else up to 3 as the cluster allows."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="sunes-admin",
        **aiokafka_security(security or Security()),
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [spec for spec in topics if spec.name not in existing]
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
                    topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
                )
                for spec in missing
            ]
        )
    except KafkaError as exc:
        raise TopicSetupError(
            f"cannot create topics on {bootstrap_servers}: {exc!r}. Create them yourself "
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
