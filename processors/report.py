"""The batch reference computation: every record of a file, in any order, to indicator rows.

The stream and this report call the same core (`Establishment`), so a replayed stream and a
batch run give the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from processors.establishment import Establishment, IndicatorRow, rows_of
from processors.settings import Settings
from topics.records import EstablishmentRecord, Event, Record
from topics.validation import InvalidRecord, parse_record


@dataclass(frozen=True, slots=True)
class InvalidLine:
    line_number: int
    code: str
    reason: str


def read_ndjson(path: Path) -> Iterator[tuple[int, Record | InvalidLine]]:
    """Each non-blank line of an NDJSON file, parsed, or the reason it is invalid."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, parse_record(line)
            except InvalidRecord as exc:
                yield number, InvalidLine(number, exc.code, exc.reason)


class Registry:
    """Establishments and their facts, built from records in any order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.establishments: dict[str, Establishment] = {}
        self.records: dict[str, EstablishmentRecord] = {}

    def establishment(self, finess: str) -> Establishment:
        est = self.establishments.get(finess)
        if est is None:
            est = Establishment(finess, self.settings, self.records.get(finess))
            self.establishments[finess] = est
        return est

    def apply(self, record: Record) -> None:
        if isinstance(record, EstablishmentRecord):
            # The latest record of a FINESS is its registry entry (compacted topic).
            self.records[record.finess] = record
            if record.finess in self.establishments:
                self.establishments[record.finess].set_registry(record)
        else:
            assert isinstance(record, Event)
            self.establishment(record.finess).apply(record)

    def rows(self) -> list[IndicatorRow]:
        return rows_of(self.establishments.values())


def compute_report(
    records: Iterable[Record], settings: Settings | None = None
) -> list[IndicatorRow]:
    registry = Registry(settings or Settings())
    for record in records:
        registry.apply(record)
    return registry.rows()
