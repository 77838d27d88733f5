"""The units of one figure, each with its status and reason: a worklist read from the store.

A rare human request (`sunes explain`, the worker's worklist), so it may scan the
establishment's stored stays or documents; each unit's outcome comes from the same rules
(processors.rules) as the contribution the figure was summed from. Pending units come first,
soonest deadline first: they are the ones someone can still act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

from processors import state as kinds
from processors.breakdown import (
    People,
    correspondent_deadline,
    correspondents,
    period_months,
)
from processors.catalogue import REPORT_INDICATORS
from processors.facts import RecipientFacts, StayFacts
from processors.periods import month_bounds, month_key
from processors.rules import grace_end, report_outcome, stay_outcomes
from processors.units import (
    COUNTED,
    MESSAGE_LATE,
    MISSED,
    NO_QUALIFYING_ATTACHMENT,
    PENDING,
    Outcome,
    Unit,
    status_of,
)

if TYPE_CHECKING:
    from processors.establishment import Establishment

# Worklist order: what can still be done first.
_STATUS_ORDER = {PENDING: 0, MISSED: 1, COUNTED: 2}


def establishment_units(est: Establishment, indicator: str, period: str) -> list[Unit]:
    """Every unit of the row (indicator, period) of `est`; none when there is no such row."""
    if not any(r.indicator == indicator and r.period == period for r in est.rows()):
        return []
    months = period_months(period, est.window())
    if indicator == "DS4.1":
        units = list(_correspondent_units(est, indicator, period, months))
    elif indicator in REPORT_INDICATORS.values():
        units = list(_report_units(est, indicator, period, set(months)))
    else:
        units = list(_stay_units(est, indicator, period, set(months)))
    units.sort(key=_worklist_order)
    return units


def _worklist_order(unit: Unit) -> tuple[int, date, date, str]:
    return (
        _STATUS_ORDER[unit.status],
        unit.deadline or date.max,
        unit.event_day or date.max,
        unit.unit_id,
    )


def _unit(
    est: Establishment,
    indicator: str,
    period: str,
    kind: str,
    ident: tuple[str, str | None],
    outcome: Outcome,
    days: tuple[date | None, date | None],
) -> Unit:
    """A unit from its outcome; `days` are its deadline and its event day."""
    deadline, event_day = days
    return Unit(
        finess=est.finess,
        indicator=indicator,
        period=period,
        kind=kind,
        unit_id=ident[0],
        patient_id=ident[1],
        status=status_of(outcome.reason, deadline, est.now),
        reason=outcome.reason,
        detail=outcome.detail,
        deadline=deadline,
        event_day=event_day,
        deposit_day=outcome.day,
    )


def _stay_units(
    est: Establishment, indicator: str, period: str, months: set[str]
) -> Iterator[Unit]:
    for stay_id, stay in est.state.entries(kinds.STAY):
        assert isinstance(stay, StayFacts)
        version = stay.version
        if version is None or month_key(version.discharge_day) not in months:
            continue
        outcome = stay_outcomes(stay, est).get(indicator)
        if outcome is not None:
            days = (grace_end(version.discharge_day, est.settings), version.discharge_day)
            yield _unit(
                est, indicator, period, "stay", (stay_id, version.patient_id), outcome, days
            )


def _report_units(
    est: Establishment, indicator: str, period: str, months: set[str]
) -> Iterator[Unit]:
    done: set[str] = set()
    for document_id, _ in est.state.entries(kinds.DOCUMENT):
        if document_id in done:
            continue
        chain = est.chain(document_id)
        done |= chain
        docs = [doc for doc in map(est.state.document, sorted(chain)) if doc is not None]
        report = report_outcome(docs, est)
        if report is None or report.indicator != indicator:
            continue
        if month_key(report.produced_day) not in months:
            continue
        ident = (report.first.document_id, report.first.patient_id)
        days = (report.deadline, report.produced_day)
        yield _unit(est, indicator, period, "report", ident, report.outcome, days)


def _correspondent_units(
    est: Establishment, indicator: str, period: str, months: list[str]
) -> Iterator[Unit]:
    group = correspondents(People(est.aggregates), months)
    start = month_bounds(min(months))[0]
    deadline = correspondent_deadline(months, est.settings)
    for rpps in sorted(group.named):
        outcome = group.outcome(rpps)
        recipient = est.state.recipient(rpps)
        if recipient is not None:
            outcome = _message_detail(outcome, recipient, start, deadline)
        yield _unit(
            est, indicator, period, "correspondent", (rpps, None), outcome, (deadline, None)
        )


def _message_detail(
    outcome: Outcome, recipient: RecipientFacts, start: date, deadline: date
) -> Outcome:
    """The day of the message an outcome is about, from the correspondent's facts."""
    qualifying = sorted(recipient.qualifying_messages.values())
    if outcome.reason is None:
        day = next((d for d in qualifying if start <= d <= deadline), None)
        return Outcome(None, None, day)
    if outcome.reason == MESSAGE_LATE:
        day = next((d for d in qualifying if d > deadline), None)
        late = None if day is None else f"{(day - deadline).days} days late"
        return Outcome(MESSAGE_LATE, late, day)
    if outcome.reason == NO_QUALIFYING_ATTACHMENT:
        others = sorted(d for d in recipient.other_messages.values() if start <= d <= deadline)
        return Outcome(NO_QUALIFYING_ATTACHMENT, None, others[0] if others else None)
    return outcome
