"""What the figures page shows of the establishments this worker owns, within a scope: per
establishment, its rows (month and window) with rate, target, and units counted / pending /
missed. The same JSON goes from one worker to another (GET /ui/figures.json)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from processors.catalogue import BY_ID, RATE_INDICATORS
from processors.figures import IndicatorRow
from processors.units import COUNTED, MISSED, PENDING, UnitCount
from topics.records import EstablishmentRecord


def establishment_figures(
    finesses: Iterable[str],
    rows_of: Callable[[str], list[IndicatorRow]],
    counts_of: Callable[[str], list[UnitCount]],
    registry: Mapping[str, EstablishmentRecord],
    withheld: Callable[[str], bool] = lambda finess: False,
) -> list[dict[str, Any]]:
    """One entry per FINESS (those given, sorted), its rows in indicator then period order
    (months first, then the window); `recomputing` when its figures are withheld while its
    state is recomputed (streams/worker/recompute.py): no rows then, and the page says why."""
    out = []
    for finess in sorted(finesses):
        tally: Counter[tuple[str, str, str]] = Counter()
        for c in counts_of(finess):
            tally[(c.indicator, c.period, c.status)] += c.count
        rows = sorted(
            rows_of(finess),
            key=lambda r: (RATE_INDICATORS.index(r.indicator), r.is_window, r.period),
        )
        record = registry.get(finess)
        out.append({
            "finess": finess,
            "name": record.name if record is not None else "",
            "recomputing": withheld(finess),
            "rows": [
                {
                    **row.as_json(),
                    "label": BY_ID[row.indicator].short_label,
                    "window": row.is_window,
                    "counted": tally[(row.indicator, row.period, COUNTED)],
                    "pending": tally[(row.indicator, row.period, PENDING)],
                    "missed": tally[(row.indicator, row.period, MISSED)],
                }
                for row in rows
            ],
        })  # fmt: skip
    return out
