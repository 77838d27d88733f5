"""The batch reference computation: every record of a file, in any order, to indicator rows.

The stream and this report share one collection (processors.collection), so a replayed
stream and a batch run give the same figures. The retention rules judge each event against
the time of the run (`received`), where the worker uses each message's Kafka timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from processors.collection import Establishments
from processors.figures import IndicatorRow
from processors.retention import time_bounds_error
from processors.settings import Settings
from topics.records import Event, Record
from topics.validation import InvalidRecord, parse_record


@dataclass(frozen=True, slots=True)
class InvalidLine:
    line_number: int
    code: str
    reason: str


def checked_record(raw: bytes, received: datetime, settings: Settings) -> Record:
    """A valid record the rules may count, or InvalidRecord saying why not."""
    record = parse_record(raw)
    if isinstance(record, Event):
        error = time_bounds_error(record, received, settings)
        if error is not None:
            raise error
    return record


def read_ndjson(
    path: Path, settings: Settings | None = None, received: datetime | None = None
) -> Iterator[tuple[int, Record | InvalidLine]]:
    """Each non-blank line of an NDJSON file, parsed, or the reason it is invalid."""
    settings = settings or Settings()
    received = received or datetime.now(UTC)
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, checked_record(line, received, settings)
            except InvalidRecord as exc:
                yield number, InvalidLine(number, exc.code, exc.reason)


def compute_report(
    records: Iterable[Record], settings: Settings | None = None
) -> list[IndicatorRow]:
    establishments = Establishments(settings or Settings())
    for record in records:
        establishments.apply(record)
    return establishments.rows()


def read_establishments(
    path: Path, settings: Settings, received: datetime | None = None
) -> tuple[Establishments, list[InvalidLine]]:
    """A file read as `sunes report` reads it: its valid records applied, its invalid lines."""
    establishments = Establishments(settings)
    invalid = []
    for _, item in read_ndjson(path, settings, received):
        if isinstance(item, InvalidLine):
            invalid.append(item)
        else:
            establishments.apply(item)
    return establishments, invalid
