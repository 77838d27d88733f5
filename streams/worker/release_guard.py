"""One release at a time on an app id: a starting worker waits for the workers of another
release to leave its consumer groups, and refuses to start if they stay.

The workers of an app id exchange bundles on the internal topic (`streams/worker/bundles.py`)
and entries on the changelog (`processors/codec.py`). A release reads what older ones wrote,
not what newer ones write: an older worker dead-letters a newer ingest's bundles as
`invalid_json`, and counts on over entries of a state version it does not know. So the
runbook upgrades every worker of an app id together (docs/runbook.md, "Upgrading a worker"),
and this module enforces it from the new release's side: every Kafka client of a worker
carries, in its client id, the formats it writes (`COMPATIBILITY`); before a worker joins,
it describes its two groups (the establishment stage's, named after the app id, and the
ingest stage's) and any member whose client id does not carry the same formats is of
another release (releases before this guard carry Faust's and aiokafka's default ids).

A killed worker's member lingers until its session times out (6 s for ours): the guard
waits up to `WAIT_SECONDS` for the others to leave before it refuses. An older release
started next to a running newer one is not stopped by it (old code has no guard): the
runbook says not to roll back while the internal topic holds the new release's bundles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, for_code

from processors.codec import STATE_VERSION
from streams.cli.errors import CliError, Exit
from streams.kafka_clients import Security, aiokafka_security
from streams.worker.bundles import VERSION_3

log = logging.getLogger(__name__)

# The bundle format the ingest writes and the state version the agent writes: a release that
# changes either changes this, and cannot run next to the previous one.
COMPATIBILITY = f"sunes-b{VERSION_3[0]}-s{STATE_VERSION}"
WAIT_SECONDS = 30.0  # > a killed member's 6 s session timeout and the rebalance after it
POLL_SECONDS = 2.0


def client_id(role: str) -> str:
    """The client id of a worker's Kafka client (`role`: agent, ingest)."""
    return f"{COMPATIBILITY}-{role}"


def foreign_members(described: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(group, client id) of the members of these described groups (DescribeGroups
    responses' `groups`) that are not of this release."""
    mark = f"{COMPATIBILITY}-"
    return sorted(
        (str(group["group"]), who)
        for group in described
        for member in group["members"]
        # Tansu leaves client_id empty; a member id is the client id, '-' and a UUID
        if not (who := str(member["client_id"] or member["member_id"])).startswith(mark)
    )


class ReleaseMixError(CliError):
    """Workers of another release run on this app id."""

    exit = Exit.USAGE


async def wait_for_one_release(
    bootstrap_servers: str,
    security: Security,
    groups: Iterable[str],
    wait_seconds: float = WAIT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Return once no member of another release is in these groups (a worker's: its app
    id, Faust's group, and `WorkerConfig.ingest_group`); raise ReleaseMixError if some stay
    `wait_seconds`, the last KafkaError if the groups could not be described as long."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id("guard"),
        **aiokafka_security(security),
    )
    deadline = time.monotonic() + wait_seconds
    logged: list[tuple[str, str]] = []
    try:
        await admin.start()
        while True:
            try:
                foreign = foreign_members(await _described(admin, groups))
                failure = None
            except KafkaError as exc:  # a fresh broker's coordinator is not ready at once
                if not exc.retriable:
                    raise
                foreign, failure = [], exc
            if not foreign and failure is None:
                return
            if time.monotonic() >= deadline:
                if failure is not None:
                    raise failure
                raise ReleaseMixError(_refusal(foreign, wait_seconds))
            if foreign and foreign != logged:  # once per change, not every poll
                logged = foreign
                log.warning(
                    "%d worker client(s) of another release in the groups (%s): "
                    "waiting up to %.0f s for them to leave before starting release %s",
                    len(foreign), _listed(foreign), wait_seconds, COMPATIBILITY,
                )  # fmt: skip
            await asyncio.sleep(poll_seconds)
    finally:
        await admin.close()


async def _described(admin: AIOKafkaAdminClient, groups: Iterable[str]) -> list[dict[str, Any]]:
    # one group per request: the embedded Tansu broker mis-encodes a response of several
    described = [g for group in groups for r in await admin.describe_consumer_groups([group])
                 for g in r.to_object()["groups"]]  # fmt: skip
    for group in described:
        if group["error_code"]:  # e.g. the coordinator still loading the group
            raise for_code(group["error_code"])(f"describing group {group['group']}")
    return described


def _listed(foreign: list[tuple[str, str]]) -> str:
    return ", ".join(f"{client} in {group}" for group, client in foreign)


def _refusal(foreign: list[tuple[str, str]], waited: float) -> str:
    return (
        f"workers of another release still run on this app id after {waited:.0f} s "
        f"({_listed(foreign)}; this release is {COMPATIBILITY}): an older worker cannot read "
        "what this release writes. Stop every worker of the app id, then start this release "
        "on all of them (docs/runbook.md, 'Upgrading a worker')"
    )
