"""Worklists: the units behind a figure, for the people who rescue them — in their scope.

GET /indicators/{finess}/{indicator}/{period}/units[?status=&reason=&page=&page_size=&format=]
lists the stays (reports, correspondents) of one figure with their status and reason, as
`sunes explain` does for a file. These are personal health data (stay ids, patient
pseudonyms, dates): the list is served only to a caller whose scope covers the establishment
(streams/access: 401 without identity, 403 outside the scope), and every access is logged on
`sunes.access` with who, the scope used, what was asked and how many rows were served, never
the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from processors.catalogue import RATE_INDICATORS
from processors.units import REASONS, STATUSES, Unit

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 10_000
CSV_TYPE = "text/csv"


class WorklistError(Exception):
    """A request refused: its HTTP status and a message that says how to fix it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class WorklistQuery:
    finess: str
    indicator: str
    period: str
    statuses: frozenset[str]  # empty: every status
    reasons: frozenset[str]  # empty: every reason
    page: int
    page_size: int
    csv: bool

    def describe(self) -> str:
        """What was asked, for the access log: no patient data in it."""
        wanted = ",".join(sorted(self.statuses)) or "any"
        why = ",".join(sorted(self.reasons)) or "any"
        return (
            f"{self.finess} {self.indicator} {self.period} status={wanted} reason={why} "
            f"page={self.page}"
        )


def _choices(raw: str | None, allowed: Sequence[str], name: str) -> frozenset[str]:
    picked = frozenset(v.strip() for v in (raw or "").split(",") if v.strip())
    unknown = sorted(picked - set(allowed))
    if unknown:
        raise WorklistError(
            400,
            f"?{name}={','.join(unknown)} is not known: use one or more of {', '.join(allowed)}",
        )
    return picked


def _whole(raw: str | None, name: str, default: int, highest: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= highest:
        raise WorklistError(400, f"?{name} must be a whole number from 1 to {highest}, got {raw!r}")
    return value


def parse_query(
    finess: str, indicator: str, period: str, query: Mapping[str, str], accept: str | None
) -> WorklistQuery:
    """The request's filters, or a 400 that names the parameter and what it accepts."""
    if indicator not in RATE_INDICATORS:
        raise WorklistError(
            404, f"no indicator {indicator!r}: use one of {', '.join(RATE_INDICATORS)}"
        )
    wanted_format = query.get("format", "").lower()
    if wanted_format not in ("", "json", "csv"):
        raise WorklistError(400, f"?format must be json or csv, got {wanted_format!r}")
    as_csv = wanted_format == "csv" or (not wanted_format and CSV_TYPE in (accept or ""))
    return WorklistQuery(
        finess=finess,
        indicator=indicator,
        period=period,
        statuses=_choices(query.get("status"), STATUSES, "status"),
        reasons=_choices(query.get("reason"), REASONS, "reason"),
        page=_whole(query.get("page"), "page", 1, 1_000_000),
        page_size=_whole(query.get("page_size"), "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        csv=as_csv,
    )


def select(units: Iterable[Unit], query: WorklistQuery) -> tuple[list[Unit], int]:
    """The page asked for, in the worklist's order (processors.worklist, as `sunes
    explain`), and how many units match the filters in all."""
    matching = [
        u
        for u in units
        if (not query.statuses or u.status in query.statuses)
        and (not query.reasons or u.reason in query.reasons)
    ]
    start = (query.page - 1) * query.page_size
    return matching[start : start + query.page_size], len(matching)


def page_json(query: WorklistQuery, units: list[Unit], total: int) -> dict[str, Any]:
    return {
        "finess": query.finess,
        "indicator": query.indicator,
        "period": query.period,
        "status": sorted(query.statuses),
        "reason": sorted(query.reasons),
        "total": total,
        "page": query.page,
        "page_size": query.page_size,
        "units": [unit.as_json() for unit in units],
    }
