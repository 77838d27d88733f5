"""Plain aiokafka clients for what Faust does not do: topic set-up and the registry reader."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import Security
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


async def ensure_topics(
    bootstrap_servers: str,
    security: Security,
    topics: tuple[TopicSpec, ...] = ALL_TOPICS,
    replication_factor: int = 1,
) -> list[str]:
    """Create the contract's topics that do not exist yet (the registry compacted)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **aiokafka_security(security))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        created = []
        for spec in missing:
            configs = {"cleanup.policy": "compact"} if spec.compacted else {}
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            spec.name, spec.partitions, replication_factor, topic_configs=configs
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another worker created it meanwhile
        if created:
            log.info("created topics %s", ", ".join(created))
        return created
    finally:
        await admin.close()
