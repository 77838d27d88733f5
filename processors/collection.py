"""The establishments of a batch run or of a worker: one collection, one store, one cache.

`sunes report` and the stream worker use this same class; they differ only in the store
(processors.store.MemoryStore, or the worker's changelogged table) and the cache capacity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from processors.codec import decode_contribution, decode_moment
from processors.establishment import Establishment
from processors.figures import IndicatorRow, rows_of
from processors.purge import Purged, purge
from processors.settings import Settings
from processors.state import (
    ARCHIVE,
    PURGE_HORIZON,
    UNIT_KINDS,
    EstablishmentState,
    StateCache,
    parse_store_key,
)
from processors.store import KeyValueStore, MemoryStore
from processors.units import Unit, UnitCount
from topics.records import EstablishmentRecord, Event, Record


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
        return self.get(record.finess).apply(record)

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
        horizons: dict[str, bytes] = {}
        for key, raw in self.store.items():
            finess, kind, _ = parse_store_key(key)
            if (kind in UNIT_KINDS or kind == ARCHIVE) and keep(finess):
                contributions[finess].append(raw)
            elif kind == PURGE_HORIZON and keep(finess):
                horizons[finess] = raw
        self.by_finess = {}
        for finess, raws in contributions.items():
            est = self.get(finess)
            for raw in raws:
                est.load_contribution(decode_contribution(raw))
        for finess, raw in horizons.items():
            self.get(finess).purge_horizon = decode_moment(raw)
        return sum(len(raws) for raws in contributions.values())

    def purge(self, finess: str, clock: datetime, limit: int = 10_000) -> Purged:
        """Purge one establishment's facts past the horizon at `clock` (processors.purge),
        about `limit` entries at most, and write it (one flush)."""
        est = self.by_finess.get(finess)
        if est is None:
            return Purged()
        result = purge(est, clock, limit)
        self.flush()
        return result

    def purge_horizon(self, finess: str) -> datetime | None:
        """Events of this FINESS with a timestamp before this are refused (processors.purge)."""
        est = self.by_finess.get(finess)
        return None if est is None else est.purge_horizon

    def retain(self, keep: Callable[[str], bool]) -> None:
        """Forget the establishments `keep` rejects (partitions lost in a rebalance: their new
        owner reads them from the store), and their cached entries."""
        self.flush()
        self.cache.forget(keep)
        self.by_finess = {f: est for f, est in self.by_finess.items() if keep(f)}

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
