"""How long each topic the product creates keeps its records, and the check of topics that
already exist against it (docs/runbook.md#topic-retentions).

    input topics, internal topic   cleanup.policy=delete, retention.bytes=-1, retention.ms =
                                   the retention horizon + the future skew + MARGIN_DAYS
    registry, changelog            cleanup.policy=compact: the latest record of each key, for ever
    dead-letter topics             cleanup.policy=delete, retention.ms = DEADLETTER_RETENTION_DAYS

Why the horizon and not for ever: a fresh app id must be able to rebuild every figure from
the input topics, so a record stays as long as an event in it can still count; a record
older than the horizon (plus the future skew, an event's time may be that far after its
record's) holds only facts that the state drops anyway, and it is personal data. Kafka's own
default (log.retention.hours=168) would delete a week-old record the worker has not read yet.

Topics that exist already are never altered: each setting found short is logged as a
WARNING with what was found, what is needed and the `kafka-configs.sh` command that fixes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from processors.settings import Settings
from topics.names import TopicSpec

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
#: Beyond the horizon: a worker stopped for a long weekend at the edge still finds its records.
MARGIN_DAYS = 7
#: Dead letters hold raw invalid input (personal data): long enough to fix a producer and
#: replay them, no longer.
DEADLETTER_RETENTION_DAYS = 30
DEADLETTER_RETENTION_MS = DEADLETTER_RETENTION_DAYS * DAY_MS


def horizon_retention_ms(settings: Settings | None = None) -> int:
    """retention.ms of the input and internal topics for these counting settings."""
    settings = settings or Settings()
    return (settings.retention_days + MARGIN_DAYS) * DAY_MS + settings.future_skew_hours * HOUR_MS


def configs_for(spec: TopicSpec, horizon_ms: int) -> dict[str, str]:
    """The topic configuration the product creates `spec` with."""
    if spec.compacted:
        return {"cleanup.policy": "compact"}
    if spec.dead_letters:
        return {"cleanup.policy": "delete", "retention.ms": str(DEADLETTER_RETENTION_MS)}
    return {"cleanup.policy": "delete", "retention.ms": str(horizon_ms), "retention.bytes": "-1"}


def _kept_for(retention_ms: int) -> str:
    if retention_ms < 0:
        return "for ever"
    if retention_ms < DAY_MS:
        return f"{retention_ms / 1000:g} s"
    return f"{retention_ms / DAY_MS:g} days"


def shortfalls(spec: TopicSpec, found: Mapping[str, str], horizon_ms: int) -> dict[str, str]:
    """The settings of an existing topic that could lose records the product needs, as
    {name: (found, needed value)}: empty when the topic is fine. Dead-letter topics keep
    whatever their owner chose."""
    if spec.dead_letters:
        return {}
    policy = {p.strip() for p in found.get("cleanup.policy", "delete").split(",")}
    if spec.compacted:
        return {} if policy == {"compact"} else {"cleanup.policy": "compact"}
    needed: dict[str, str] = {}
    if "compact" in policy:  # keyed by FINESS: compaction would keep one event per FINESS
        needed["cleanup.policy"] = "delete"
    retention = int(found.get("retention.ms", "-1"))
    if 0 <= retention < horizon_ms:
        needed["retention.ms"] = str(horizon_ms)
    if int(found.get("retention.bytes", "-1")) >= 0:
        needed["retention.bytes"] = "-1"
    return needed


def fix_command(bootstrap_servers: str, topic: str, needed: Mapping[str, str]) -> str:
    """The kafka-configs command that gives `topic` the `needed` settings."""
    settings = ",".join(f"{name}={value}" for name, value in needed.items())
    return (
        f"kafka-configs.sh --bootstrap-server {bootstrap_servers} --alter --entity-type topics "
        f"--entity-name {topic} --add-config {settings}"
    )


def warning_for(
    spec: TopicSpec, found: Mapping[str, str], needed: Mapping[str, str], bootstrap: str
) -> str:
    """One line: the topic, what was found, what is needed and why, the command."""
    shown = ", ".join(f"{name}={found.get(name, '(default)')}" for name in needed)
    why = (
        "a compacted topic keeps the latest record of each key"
        if spec.compacted
        else "records must stay at least the retention horizon, or a stopped worker loses "
        "those that expire and a fresh app id cannot rebuild the figures"
    )
    kept = ""
    if "retention.ms" in needed:
        kept = (
            f" (records deleted after {_kept_for(int(found['retention.ms']))}, "
            f"needed {_kept_for(int(needed['retention.ms']))})"
        )
    return (
        f"topic {spec.name} has {shown}{kept}; needed: "
        + ", ".join(f"{k}={v}" for k, v in needed.items())
        + f" ({why}). Fix: {fix_command(bootstrap, spec.name, needed)}"
    )


def configs_of(responses: Iterable[Any]) -> dict[str, dict[str, str]]:
    """aiokafka's DescribeConfigs responses → {topic: {config name: value}}."""
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            error_code, _message, _type, name, entries = resource[:5]
            if error_code == 0:
                configs[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
    return configs


async def check_existing(
    admin: Any, specs: Iterable[TopicSpec], horizon_ms: int, bootstrap: str
) -> list[str]:
    """Log a WARNING for each existing topic whose settings could lose records; return them."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    specs = list(specs)
    if not specs:
        return []
    resources = [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs]
    found = configs_of(await admin.describe_configs(resources))
    warnings = []
    for spec in specs:
        if spec.name not in found:
            continue
        needed = shortfalls(spec, found[spec.name], horizon_ms)
        if needed:
            warnings.append(warning_for(spec, found[spec.name], needed, bootstrap))
            log.warning("%s", warnings[-1])
    return warnings
