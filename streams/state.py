"""The establishments a worker owns, derived from its facts table.

The changelogged table holds the facts (one entry per stay, document, MSS Pro recipient);
this store keeps, in memory, the `Establishment` objects built from them: indexes and
aggregates. After a restart or a rebalance it is rebuilt from the table, so an at-least-once
replay can never count twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import orjson
from aiokafka.partitioner import murmur2

from processors.establishment import EntityRef, Establishment, IndicatorRow, rows_of
from processors.settings import Settings
from topics.records import EstablishmentRecord, Event

SEPARATOR = "|"


def table_key(finess: str, ref: EntityRef) -> str:
    return f"{finess}{SEPARATOR}{ref[0]}{SEPARATOR}{ref[1]}"


def parse_table_key(key: str) -> tuple[str, EntityRef]:
    finess, kind, entity_id = key.split(SEPARATOR, 2)
    return finess, (kind, entity_id)


def partition_of(finess: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a FINESS key (murmur2, as Java's)."""
    return int(murmur2(finess.encode()) & 0x7FFFFFFF) % partitions


def _compact(data: object) -> bytes:
    """JSON bytes of exactly their size: orjson ≥ 3.12 keeps ≥ 4 KiB behind each result,
    which the table would hold for every entity (ijl/orjson#483)."""
    return bytes(memoryview(orjson.dumps(data)))


class EstablishmentStore:
    def __init__(self, settings: Settings, partitions: int, close_after_days: int = 60) -> None:
        self.settings = settings
        self.partitions = partitions
        # Periods close (final figures, facts dropped) this long after their end.
        self.close_after_days = close_after_days
        self.registry: dict[str, EstablishmentRecord] = {}
        self.establishments: dict[str, Establishment] = {}

    def establishment(self, finess: str) -> Establishment:
        est = self.establishments.get(finess)
        if est is None:
            est = Establishment(finess, self.settings, self.registry.get(finess))
            self.establishments[finess] = est
        return est

    def apply(self, events: Iterable[Event]) -> list[tuple[str, bytes | None]]:
        """Merge events; return the table writes that make them durable: (key, JSON) with
        each changed entity's final state, or (key, None) for one that left the state."""
        changed: dict[str, set[EntityRef]] = {}
        for event in events:
            est = self.establishment(event.finess)
            refs = changed.setdefault(event.finess, set())
            refs |= est.apply(event)
            refs |= est.close(self.close_after_days)
        writes: list[tuple[str, bytes | None]] = []
        for finess, refs in changed.items():
            est = self.establishments[finess]
            for ref in refs:
                data = est.entity_json(ref)
                writes.append(
                    (table_key(finess, ref), None if data is None else orjson.dumps(data))
                )
        return writes

    def set_registry(self, record: EstablishmentRecord) -> None:
        self.registry[record.finess] = record
        est = self.establishments.get(record.finess)
        if est is not None:
            est.set_registry(record)

    def rebuild(self, items: Iterable[tuple[str, bytes]], owned_partitions: set[int]) -> None:
        """Forget everything derived and build it again from the table's entries, keeping
        only the establishments whose partition this worker owns."""
        grouped: defaultdict[str, list[tuple[EntityRef, bytes]]] = defaultdict(list)
        for key, value in items:
            finess, ref = parse_table_key(key)
            if partition_of(finess, self.partitions) in owned_partitions:
                grouped[finess].append((ref, value))
        self.establishments = {}
        for finess, entities in grouped.items():
            est = self.establishment(finess)
            for ref, value in entities:
                est.load_entity(ref, orjson.loads(value))
            est.rebuild()

    def retain(self, owned_partitions: set[int]) -> None:
        """Forget the establishments of partitions this worker no longer owns (after a
        rebalance: their new owner rebuilds them from the table)."""
        self.establishments = {
            finess: est
            for finess, est in self.establishments.items()
            if partition_of(finess, self.partitions) in owned_partitions
        }

    def rows(self, finess: str | None = None) -> list[IndicatorRow]:
        if finess is not None:
            est = self.establishments.get(finess)
            return est.rows() if est is not None else []
        return rows_of(self.establishments.values())

    def open_entities(self) -> int:
        return sum(
            len(e.stays) + len(e.documents) + len(e.recipients)
            for e in self.establishments.values()
        )
