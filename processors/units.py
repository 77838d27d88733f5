"""The units behind each figure: their status (counted, pending, missed) and reason codes.

A unit is what a denominator counts once: a stay (DS 1.1–1.4, 4.2), a report (DS 2.1, 3.1),
a correspondent (DS 4.1). The rules (processors.rules) give each unit an `Outcome` — counted,
or the one reason it is not — and derive its contribution from it; whether an uncounted unit
is still `pending` or `missed` is decided at read time against the establishment's `now`.
The reasons are documented in docs/indicators.md ("Units and reasons").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from processors.values import Value

COUNTED, PENDING, MISSED = "counted", "pending", "missed"
STATUSES: Final = (COUNTED, PENDING, MISSED)

DEPOSIT_FAILED: Final = "deposit_failed"
NOT_DEPOSITED: Final = "not_deposited"
INS_NOT_QUALIFIED: Final = "ins_not_qualified"
CDA_LEVEL: Final = "cda_level"
REPLACED_BY_NON_QUALIFYING: Final = "replaced_by_non_qualifying"
DELETED: Final = "deleted"
NO_DOCUMENT: Final = "no_document"
NO_HISTORY_DEPOSIT: Final = "no_history_deposit"
NO_QUALIFYING_ATTACHMENT: Final = "no_qualifying_attachment"
NO_MESSAGE: Final = "no_message"
DEPOSITED_LATE: Final = "deposited_late"
MESSAGE_LATE: Final = "message_late"

# The closed list, most actionable first: when several documents of a unit fail for
# different reasons, the unit's reason is the first of this list.
REASONS: Final[tuple[str, ...]] = (
    DEPOSIT_FAILED,
    NOT_DEPOSITED,
    INS_NOT_QUALIFIED,
    CDA_LEVEL,
    REPLACED_BY_NON_QUALIFYING,
    DELETED,
    NO_DOCUMENT,
    NO_HISTORY_DEPOSIT,
    NO_QUALIFYING_ATTACHMENT,
    NO_MESSAGE,
    DEPOSITED_LATE,
    MESSAGE_LATE,
)
RANK: Final[dict[str, int]] = {reason: rank for rank, reason in enumerate(REASONS)}
# Reasons no later event can undo before the deadline: the unit is missed, never pending.
FINAL_REASONS: Final = frozenset({DEPOSITED_LATE, MESSAGE_LATE})


class Outcome(Value):
    """What the rules say of one unit for one indicator: counted (reason None) or why not
    (processors.values)."""

    __slots__ = ("day", "detail", "reason")
    FIELDS = ("reason", "detail", "day")
    reason: Final[str | None]
    detail: Final[str | None]
    day: Final[date | None]  # the deposit (or message) day that counted, or that the reason names

    def __init__(
        self, reason: str | None = None, detail: str | None = None, day: date | None = None
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.day = day

    def _fields(self) -> tuple[object, ...]:
        return (self.reason, self.detail, self.day)

    @property
    def counted(self) -> bool:
        return self.reason is None

    def rank(self) -> int:
        return -1 if self.reason is None else RANK[self.reason]


def best(outcomes: list[tuple[Outcome, str]]) -> Outcome | None:
    """The unit's outcome from its candidates (outcome, tie-breaking id): counted if any is
    (the earliest day), else the most actionable reason. Independent of the input order."""
    if not outcomes:
        return None
    if len(outcomes) == 1:  # the usual case: one document of the type, one version
        return outcomes[0][0]
    return min(outcomes, key=lambda item: (item[0].rank(), item[0].day or date.min, item[1]))[0]


def status_of(reason: str | None, deadline: date | None, now: date | None) -> str:
    """Counted; pending while it may still count (deadline not passed, reason not final);
    else missed."""
    if reason is None:
        return COUNTED
    if reason not in FINAL_REASONS and deadline is not None and now is not None and deadline >= now:
        return PENDING
    return MISSED


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit of a figure's denominator, with what a person needs to act on it."""

    finess: str
    indicator: str
    period: str  # "2023-03" or a window name ("F3"), as IndicatorRow.period
    kind: str  # "stay" | "report" | "correspondent"
    unit_id: str  # stay_id (NDA), the report's first document_id, or the RPPS
    patient_id: str | None  # the pseudonymous IPP; never the INS
    status: str  # COUNTED | PENDING | MISSED
    reason: str | None  # None when counted; for a pending unit, what is still missing
    detail: str | None  # e.g. the DMP's failure reason "DMPClosed", "12 days late"
    deadline: date | None  # the last day it can still count (grace end)
    event_day: date | None  # discharge day (stays), production day (reports)
    deposit_day: date | None  # the deposit (or message) day that counted or that is named

    def as_json(self) -> dict[str, Any]:
        return {
            "finess": self.finess,
            "indicator": self.indicator,
            "period": self.period,
            "kind": self.kind,
            "unit_id": self.unit_id,
            "patient_id": self.patient_id,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "deadline": _day(self.deadline),
            "event_day": _day(self.event_day),
            "deposit_day": _day(self.deposit_day),
        }


@dataclass(frozen=True, slots=True)
class UnitCount:
    """How many units of a figure have a status and reason (no patient data: for metrics)."""

    finess: str
    indicator: str
    period: str
    status: str
    reason: str | None
    count: int

    def as_json(self) -> dict[str, Any]:
        return {
            "finess": self.finess,
            "indicator": self.indicator,
            "period": self.period,
            "status": self.status,
            "reason": self.reason,
            "count": self.count,
        }
