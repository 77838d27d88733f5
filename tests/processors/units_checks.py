"""Checks that a collection's units add up to its figures (shared by the units' tests)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from processors.collection import Establishments
from processors.settings import Settings
from processors.units import COUNTED, MISSED, PENDING, REASONS, Unit
from tests.builders import F1, parse


def collection_of(
    objects: list[dict[str, Any]], settings: Settings | None = None
) -> Establishments:
    establishments = Establishments(settings or Settings())
    for obj in objects:
        establishments.apply(parse(obj))
    return establishments


def units_of(
    objects: list[dict[str, Any]],
    indicator: str,
    period: str,
    settings: Settings | None = None,
    finess: str = F1,
) -> dict[str, Unit]:
    """unit_id → unit of one figure, after checking that the collection adds up."""
    establishments = collection_of(objects, settings)
    assert_units_add_up(establishments)
    return {u.unit_id: u for u in establishments.units(finess, indicator, period)}


def assert_units_add_up(establishments: Establishments) -> Counter[tuple[str, str | None]]:
    """For every row: counted units = numerator, all units = denominator, every unit has one
    status and (uncounted) one reason of the list, and unit_counts() says what units() lists.
    Returns the (status, reason) tally over all rows."""
    tally: Counter[tuple[str, str | None]] = Counter()
    for est in establishments.all():
        counts: dict[tuple[str, str], Counter[tuple[str, str | None]]] = {}
        for count in est.unit_counts():
            assert count.count > 0 and count.finess == est.finess
            counts.setdefault((count.indicator, count.period), Counter())[
                (count.status, count.reason)
            ] += count.count
        rows = est.rows()
        assert set(counts) == {(row.indicator, row.period) for row in rows}
        for row in rows:
            units = est.units(row.indicator, row.period)
            listed = Counter((u.status, u.reason) for u in units)
            assert listed == counts[(row.indicator, row.period)], row
            assert sum(listed.values()) == row.denominator, row
            assert listed[(COUNTED, None)] == row.numerator, row
            assert len({u.unit_id for u in units}) == len(units), row
            for unit in units:
                assert (unit.finess, unit.indicator, unit.period) == (
                    row.finess,
                    row.indicator,
                    row.period,
                )
                assert (unit.status == COUNTED) == (unit.reason is None), unit
                assert unit.status in (COUNTED, PENDING, MISSED)
                assert unit.reason is None or unit.reason in REASONS
            tally += listed
    return tally
