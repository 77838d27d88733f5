"""The establishments of a batch run or of a worker: one collection, one store, one cache.

`sunes report` and the stream worker use this same class; they differ only in the store
(processors.store.MemoryStore, or the worker's changelogged table) and the cache capacity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Generator

from processors.codec import decode_contribution
from processors.establishment import Establishment, exhaust
from processors.figures import IndicatorRow, rows_of
from processors.fingerprint import StateMeta
from processors.settings import Settings
from processors.state import (
    CODECS,
    META,
    UNIT_KINDS,
    EstablishmentState,
    StateCache,
    parse_store_key,
)
from processors.store import KeyValueStore, MemoryStore
from processors.units import Unit, UnitCount
from topics.records import EstablishmentRecord, Event, Record


def _meta(raw: bytes) -> StateMeta:
    decode: Callable[[bytes], StateMeta] = CODECS[META][1]
    return decode(raw)


class Establishments:
    def __init__(
        self,
        settings: Settings,
        store: KeyValueStore | None = None,
        cache_entries: int | None = None,
    ) -> None:
        self.settings = settings
        self.store: KeyValueStore = store if store is not None else MemoryStore()
        self.cache = StateCache(self.store, cache_entries)
        self.registry: dict[str, EstablishmentRecord] = {}
        self.by_finess: dict[str, Establishment] = {}
        # The establishments whose stored entries were computed with other counting settings
        # or an older state version (processors.fingerprint), found by `recover`: their
        # figures are mixed until `recompute` (streams/worker/recompute.py withholds them).
        self.outdated: set[str] = set()
        self._stamped: set[str] = set()  # their meta entry checked since the last recovery

    def get(self, finess: str) -> Establishment:
        est = self.by_finess.get(finess)
        if est is None:
            state = EstablishmentState(finess, self.cache)
            est = Establishment(finess, self.settings, state, self.registry.get(finess))
            self.by_finess[finess] = est
        return est

    def apply(self, record: Record) -> bool:
        """Merge a record; False when it changed no fact."""
        if isinstance(record, EstablishmentRecord):
            self.set_registry(record)
            return True
        assert isinstance(record, Event)
        est = self.get(record.finess)
        if record.finess not in self._stamped:
            self._stamped.add(record.finess)
            if record.finess not in self.outdated:
                est.stamp()  # a new establishment: its entries are this worker's
        return est.apply(record)

    def set_registry(self, record: EstablishmentRecord) -> None:
        # The latest record of a FINESS is its registry entry (compacted topic).
        self.registry[record.finess] = record
        est = self.by_finess.get(record.finess)
        if est is not None:
            est.set_registry(record)

    def delete_registry(self, finess: str) -> None:
        """A tombstone on the compacted registry topic: the FINESS has no entry any more."""
        self.registry.pop(finess, None)
        est = self.by_finess.get(finess)
        if est is not None:
            est.set_registry(None)

    def flush(self) -> int:
        """Write every changed entry to the store once; the number written."""
        return self.cache.flush()

    def recover(self, keep: Callable[[str], bool] = lambda finess: True) -> int:
        """Forget everything derived and read the aggregates back from the stored
        contributions of the establishments `keep` accepts (a restart, a rebalance: the store
        may have changed under us). No fact is decoded. Returns the units read."""
        self.cache.forget()
        contributions: defaultdict[str, list[bytes]] = defaultdict(list)
        stored: set[str] = set()
        metas: dict[str, bytes] = {}
        for key, raw in self.store.items():
            finess, kind, _ = parse_store_key(key)
            if not keep(finess):
                continue
            stored.add(finess)
            if kind in UNIT_KINDS:
                contributions[finess].append(raw)
            elif kind == META:
                metas[finess] = raw
        current = StateMeta.current(self.settings)
        self.outdated = {f for f in stored if f not in metas or _meta(metas[f]) != current}
        self._stamped = set()
        self.by_finess = {}
        for finess, raws in contributions.items():
            est = self.get(finess)
            for raw in raws:
                est.load_contribution(decode_contribution(raw))
        return sum(len(raws) for raws in contributions.values())

    def recompute(self, finess: str) -> int:
        """Recompute an outdated establishment at once (`recomputation`); its units."""
        return exhaust(self.recomputation(finess, None))

    def recomputation(self, finess: str, step: int | None) -> Generator[int, None, int]:
        """Derive every contribution of an outdated establishment again from its facts under
        this collection's settings, `step` units at a time, each step's writes flushed; then
        write its meta entry (last: a stop before leaves it outdated, to be recomputed again
        from the start). Yields the units derived so far after each step; returns them all."""
        est = self.get(finess)
        steps = est.recomputation(step)
        while True:
            try:
                units = next(steps)
            except StopIteration as end:
                total: int = end.value
                break
            self.flush()
            yield units
        self.flush()
        est.stamp()
        self.flush()
        self.outdated.discard(finess)
        self._stamped.add(finess)
        return total

    def retain(self, keep: Callable[[str], bool]) -> None:
        """Forget the establishments `keep` rejects (partitions lost in a rebalance: their new
        owner reads them from the store), and their cached entries."""
        self.flush()
        self.cache.forget(keep)
        self.by_finess = {f: est for f, est in self.by_finess.items() if keep(f)}
        self.outdated = {f for f in self.outdated if keep(f)}

    def rows(self, finess: str | None = None) -> list[IndicatorRow]:
        if finess is not None:
            est = self.by_finess.get(finess)
            return est.rows() if est is not None else []
        return rows_of(row for est in self.by_finess.values() for row in est.rows())

    def units(self, finess: str, indicator: str, period: str) -> list[Unit]:
        """Every unit of one figure with its status and reason; [] for an unknown FINESS."""
        est = self.by_finess.get(finess)
        return est.units(indicator, period) if est is not None else []

    def unit_counts(self, finess: str | None = None) -> list[UnitCount]:
        """Units by status and reason of every figure (of one FINESS), from the aggregates."""
        if finess is not None:
            est = self.by_finess.get(finess)
            return est.unit_counts() if est is not None else []
        return [count for est in self.by_finess.values() for count in est.unit_counts()]

    def all(self) -> list[Establishment]:
        return list(self.by_finess.values())
