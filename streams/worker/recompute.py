"""Recomputing the establishments whose stored state was counted otherwise.

After a recovery, processors.collection lists the owned establishments whose meta entry
(processors.fingerprint) differs from this worker's: other counting settings, an older state
version, or none (a store of an earlier release). Their figures are then a mix and are
withheld (/indicators, /metrics, worklists) until each is recomputed from its facts.

A recomputation writes the table, and Faust writes a table only from the agent, into the
partition of the event being processed (the changelog's and the RocksDB partition). So the
worker asks for it through its own internal topic: one request per establishment, keyed by
FINESS like its bundles; the establishment agent recomputes it when the request comes, after
the bundles before it, in one synchronous step (no await: a rebalance never sees half of it),
and writes the units, then the meta entry, through the changelog: standbys and a later
restart read the recomputed state. A request that finds the establishment up to date (it was
recomputed by a former owner, or asked twice) does nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from processors.collection import Establishments
from processors.fingerprint import StateMeta
from streams.worker.table_store import partition_of

log = logging.getLogger(__name__)

# The value of a request on the internal topic; its key is the FINESS. Not a bundle: a bundle
# is a JSON object with "ts" and "events".
REQUEST = b'{"sunes":"recompute"}'


class Recomputation:
    """The outdated establishments of the last recovery and the progress of their recomputation."""

    def __init__(
        self, establishments: Establishments, partitions: int, registry: CollectorRegistry
    ) -> None:
        self.establishments = establishments
        self.partitions = partitions
        self.total = 0  # outdated establishments found at the last recovery
        self.units = 0  # units derived again since
        self.started = 0.0
        self.pending = Gauge(
            "sunes_state_recompute_pending",
            "Establishments whose stored state was counted with other counting settings or "
            "an older state version, waiting to be recomputed: their figures are withheld.",
            registry=registry,
        )

    @property
    def outdated(self) -> set[str]:
        return self.establishments.outdated

    def withheld(self, finess: str) -> bool:
        """Its figures would mix units counted under two settings: not shown yet."""
        return finess in self.establishments.outdated

    def planned(self) -> list[str]:
        """After a recovery: the establishments to recompute, logged with why."""
        outdated = sorted(self.establishments.outdated)
        self.total, self.units, self.started = len(outdated), 0, time.monotonic()
        self.pending.set(len(outdated))
        if outdated:
            current = StateMeta.current(self.establishments.settings)
            reasons = sorted(
                {
                    d
                    for f in outdated
                    for d in current.differences(self.establishments.get(f).meta())
                }
            )
            log.warning(
                "recomputing %d establishment(s) from their stored facts (%s): their figures "
                "are withheld until then",
                len(outdated), "; ".join(reasons),
            )  # fmt: skip
        return outdated

    def request(self, finess: str) -> tuple[bytes, bytes, int]:
        """The key, value and partition of the request for one establishment."""
        return finess.encode(), REQUEST, partition_of(finess, self.partitions)

    def run(self, finess: str) -> None:
        """Recompute one establishment (called by the agent, for a request on its partition)."""
        if finess not in self.establishments.outdated:
            return
        self.units += self.establishments.recompute(finess)
        left = len(self.establishments.outdated)
        self.pending.set(left)
        log.info("recomputed the state of %s (%d left)", finess, left)
        if not left:
            log.warning(
                "recomputed %d establishment(s), %d units, in %.1f s: figures served again",
                self.total, self.units, time.monotonic() - self.started,
            )  # fmt: skip

    def health(self) -> dict[str, Any]:
        left = len(self.establishments.outdated)
        return {
            "establishments": self.total,
            "done": self.total - left if self.total >= left else 0,
            "left": left,
            "units": self.units,
        }
