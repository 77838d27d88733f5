"""The establishments of a batch run or of a worker: one collection, one store, one cache.

`sunes report` and the stream worker use this same class; they differ only in the store
(processors.store.MemoryStore, or the worker's changelogged table) and the cache capacity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Final

from processors.codec import decode_contribution, decode_moment
from processors.establishment import Establishment, exhaust
from processors.figures import IndicatorRow, rows_of
from processors.fingerprint import StateMeta
from processors.purge import Purged, Purger, complete_journal, journal_parts
from processors.settings import Settings
from processors.state import (
    ARCHIVE,
    CODECS,
    META,
    PURGE_HORIZON,
    PURGE_JOURNAL,
    UNIT_KINDS,
    EstablishmentState,
    StateCache,
    parse_store_key,
    store_key,
)
from processors.store import KeyValueStore, MemoryStore
from processors.units import Unit, UnitCount
from topics.records import EstablishmentRecord, Event, Record

# What a recovery reads back: the units' contributions, the archived months, the horizon.
_RECOVERED: Final = UNIT_KINDS | {ARCHIVE, PURGE_HORIZON}


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
        self.purging: dict[str, Purger] = {}  # passes in progress, resumed chunk by chunk

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
        self.purging = {}
        found: defaultdict[str, dict[tuple[str, str], bytes]] = defaultdict(dict)
        journals: defaultdict[str, dict[str, bytes]] = defaultdict(dict)
        stored: set[str] = set()
        metas: dict[str, bytes] = {}
        for key, raw in self.store.items():
            finess, kind, ident = parse_store_key(key)
            if not keep(finess):
                continue
            stored.add(finess)
            if kind in _RECOVERED:
                found[finess][(kind, ident)] = raw
            elif kind == META:
                metas[finess] = raw
            elif kind == PURGE_JOURNAL:
                journals[finess][ident] = raw
        for finess, journal in journals.items():  # a purge a crash interrupted: as if finished
            for kind, ident, value in complete_journal(journal) or []:
                if kind in _RECOVERED and value is None:
                    found[finess].pop((kind, ident), None)
                elif kind in _RECOVERED and value is not None:
                    found[finess][(kind, ident)] = value
        current = StateMeta.current(self.settings)
        self.outdated = {f for f in stored if f not in metas or _meta(metas[f]) != current}
        self._stamped = set()
        self.by_finess = {}
        units = 0
        for finess, entries in found.items():
            est = self.get(finess)
            for (kind, _), raw in entries.items():
                if kind == PURGE_HORIZON:
                    est.purge_horizon = decode_moment(raw)
                else:
                    est.load_contribution(decode_contribution(raw))
                    units += 1
        return units

    def purge(self, finess: str, clock: datetime, limit: int = 10_000) -> Purged:
        """Go on with the pass that purges one establishment's facts past the horizon at
        `clock` (processors.purge), about `limit` entries examined or purged; `done` when the
        pass is over. Its writes: the journal first, then the writes, then the journal's
        deletion (the changelog keeps their order: one FINESS, one partition), so that a
        crash amid them is finished, never half done (`recover`, `settle`)."""
        est = self.by_finess.get(finess)
        if est is None or finess in self.outdated:  # its units are recomputed first
            return Purged()
        self.flush()
        self.settle(finess)
        self._clear_journal(finess)  # what a crash may have left of an earlier one
        purger = self.purging.get(finess)
        if purger is None or purger.est is not est or purger.clock != clock:
            purger = self.purging[finess] = Purger(est, clock)
        result = purger.run(limit)
        if result.done:
            del self.purging[finess]
        writes = self.cache.pending(finess)
        if writes:
            parts = journal_parts(writes)
            for number, part in enumerate(parts):
                self.store.set(store_key(finess, PURGE_JOURNAL, str(number)), part)
            self.store.set(store_key(finess, PURGE_JOURNAL, ""), str(len(parts)).encode())
            self.flush()
            self._clear_journal(finess)
        return result

    def settle(self, finess: str) -> bool:
        """Finish the purge of `finess` a crash interrupted, if its journal is still stored
        whole (`recover` counted it as finished): its writes again, then the journal's
        deletion. From the worker's agent, before a bundle of that FINESS (one read when
        there is none); True if there was one."""
        header = self.store.get(store_key(finess, PURGE_JOURNAL, ""))
        if header is None:
            return False
        entries = {"": header}
        for number in range(int(header)):
            part = self.store.get(store_key(finess, PURGE_JOURNAL, str(number)))
            if part is not None:
                entries[str(number)] = part
        self.flush()
        self.cache.forget(lambda other: other != finess)
        for kind, ident, value in complete_journal(entries) or []:
            if value is None:
                self.store.delete(store_key(finess, kind, ident))
            else:
                self.store.set(store_key(finess, kind, ident), value)
        self._clear_journal(finess)
        return True

    def _clear_journal(self, finess: str) -> None:
        """The header first: a journal without it never counts."""
        self.store.delete(store_key(finess, PURGE_JOURNAL, ""))
        prefix = store_key(finess, PURGE_JOURNAL, "")
        for key, _ in list(self.store.items(prefix)):
            if key.startswith(prefix):
                self.store.delete(key)

    def purge_horizon(self, finess: str) -> datetime | None:
        """Events of this FINESS with a timestamp before this are refused (processors.purge)."""
        est = self.by_finess.get(finess)
        return None if est is None else est.purge_horizon

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
        self.purging = {}

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
