"""Recomputing the establishments whose stored state was counted otherwise.

After a recovery, processors.collection lists the owned establishments whose meta entry
(processors.fingerprint) differs from this worker's: other counting settings, an older state
version, or none (a store of an earlier release). Their figures are then a mix and are
withheld (/indicators, /metrics, worklists) until each is recomputed from its facts.

A recomputation writes the table, and Faust writes a table only from the agent, into the
partition of the event being processed (the changelog's and the RocksDB partition). So the
worker asks for it through its own internal topic: a request per establishment, keyed by
FINESS like its bundles. The establishment agent, when the request comes (after the bundles
before it), derives STEP units in one synchronous step, flushes them, and sends the next
request to the same partition: bundles go on between two steps, and one step never holds
the event loop (Kafka heartbeats, /health) for long. The meta entry is written after the
last step, through the changelog like the units: standbys and a later restart read the
recomputed state; a rebalance or a stop in between leaves the establishment outdated, and its
next owner recomputes it from the start. A request that finds the establishment up to date
(recomputed by a former owner, or asked twice) does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from processors.collection import Establishments
from processors.fingerprint import StateMeta
from streams.worker.table_store import partition_of

log = logging.getLogger(__name__)

# The value of a request on the internal topic; its key is the FINESS. Not a bundle: a bundle
# is a JSON object with "ts" and "events".
REQUEST = b'{"sunes":"recompute"}'
# Units derived per step of the agent: ~0.15 ms each (measured: a year of one establishment at
# 20 stays a day, 31,700 units in 4.5 s on a shared core), so a step takes ~0.15 s.
STEP = 1000


class Recomputation:
    """The outdated establishments of the last recovery and the progress of their recomputation."""

    def __init__(
        self, establishments: Establishments, partitions: int, registry: CollectorRegistry
    ) -> None:
        self.establishments = establishments
        self.partitions = partitions
        self.total = 0  # outdated establishments found at the last recovery
        self.units = 0  # units derived again since, by establishments done
        self.steps = 0
        self.started = 0.0
        # the recomputations under way: the next step of each, the units it has derived
        self.running: dict[str, tuple[Generator[int, None, int], int]] = {}
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
        """After a recovery: the establishments to recompute (from the start), logged with why."""
        self.running.clear()  # their Establishment objects are gone with the recovery
        outdated = sorted(self.establishments.outdated)
        self.total, self.units, self.steps = len(outdated), 0, 0
        self.started = time.monotonic()
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

    def retain(self, keep: Callable[[str], bool]) -> None:
        """A rebalance took partitions away: their recomputations are their new owner's."""
        self.running = {f: r for f, r in self.running.items() if keep(f)}

    def request(self, finess: str) -> tuple[bytes, bytes, int]:
        """The key, value and partition of the request for one establishment."""
        return finess.encode(), REQUEST, partition_of(finess, self.partitions)

    def run(self, finess: str) -> bool:
        """One step of an establishment's recomputation (called by the agent, for a request on
        its partition): True when another step is to be asked for."""
        if finess not in self.establishments.outdated:
            self.running.pop(finess, None)
            return False
        steps, _ = self.running.get(finess) or (
            self.establishments.recomputation(finess, STEP),
            0,
        )
        self.steps += 1
        try:
            derived = next(steps)
        except StopIteration as end:
            self.running.pop(finess, None)
            self.units += end.value
            self._done(finess)
            return False
        self.running[finess] = (steps, derived)
        return True

    def _done(self, finess: str) -> None:
        left = len(self.establishments.outdated)
        self.pending.set(left)
        log.info("recomputed the state of %s (%d left)", finess, left)
        if not left:
            log.warning(
                "recomputed %d establishment(s), %d units in %d steps, in %.1f s: figures "
                "served again",
                self.total, self.units, self.steps, time.monotonic() - self.started,
            )  # fmt: skip

    def health(self) -> dict[str, Any]:
        left = len(self.establishments.outdated)
        return {
            "establishments": self.total,
            "done": max(self.total - left, 0),
            "left": left,
            "units": self.units + sum(derived for _, derived in self.running.values()),
        }
