"""Units and reasons: one hand-built stay, report or correspondent per reason code."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from processors.collection import Establishments
from processors.facts import Deposit, DocumentFacts
from processors.formatting import REASON_LABELS
from processors.rules import standing
from processors.settings import Settings
from processors.store import MemoryStore
from processors.units import (
    CDA_LEVEL,
    COUNTED,
    DELETED,
    DEPOSIT_FAILED,
    DEPOSITED_LATE,
    FINAL_REASONS,
    INS_NOT_QUALIFIED,
    MESSAGE_LATE,
    MISSED,
    NO_DOCUMENT,
    NO_HISTORY_DEPOSIT,
    NO_MESSAGE,
    NO_QUALIFYING_ATTACHMENT,
    NOT_DEPOSITED,
    PENDING,
    REASONS,
    REPLACED_BY_NON_QUALIFYING,
    status_of,
)
from tests.builders import (
    F1,
    cda_attachment,
    deleted,
    deposit_failed,
    deposited,
    discharged,
    establishment,
    mss_sent,
    parse,
    produced,
)
from tests.processors.reports import figures_of
from tests.processors.units_checks import collection_of, units_of

LETTER, BIOLOGY = "11490-0", "11502-2"
# discharged() defaults: 2023-01-12, so with 30 days of grace a document counts until 02-11.
DISCHARGE, DEADLINE = date(2023, 1, 12), date(2023, 2, 11)
# A later discharge that moves the establishment's "now" past that deadline.
CLOCK = discharged("CLOCK", patient="PZ", admitted="2023-05-01T08:00:00+02:00",
                   discharged="2023-05-02T10:00:00+02:00")  # fmt: skip
R1 = {"rpps": "R1", "mss_address": "r1@x.mssante.fr"}


def letter(objects: list[dict[str, Any]], period: str = "2023-01") -> Any:
    """The DS 1.1 unit of stay S1."""
    return units_of([establishment(), *objects], "DS1.1", period)["S1"]


def test_a_counted_stay_has_no_reason_and_its_deposit_day() -> None:
    unit = letter([discharged("S1"), deposited("D1", LETTER, stay_id="S1")])
    assert (unit.status, unit.reason, unit.detail) == (COUNTED, None, None)
    assert (unit.kind, unit.patient_id, unit.event_day) == ("stay", "P1", DISCHARGE)
    assert (unit.deadline, unit.deposit_day) == (DEADLINE, DISCHARGE)


def test_no_document_is_pending_until_the_grace_end_then_missed() -> None:
    unit = letter([discharged("S1")])
    assert (unit.status, unit.reason, unit.deadline) == (PENDING, NO_DOCUMENT, DEADLINE)
    assert letter([discharged("S1"), CLOCK]).status == MISSED


def test_deposit_failed_gives_the_dmp_reason_and_changes_no_figure() -> None:
    events = [discharged("S1"), produced("D1", LETTER, stay_id="S1"), deposit_failed("D1")]
    unit = letter(events)
    assert (unit.status, unit.reason, unit.detail) == (PENDING, DEPOSIT_FAILED, "DMPClosed")
    assert figures_of([establishment(), *events]) == figures_of([establishment(), *events[:2]])
    # Retried and acknowledged: the deposit wins, in either order.
    retried = deposited("D1", LETTER, stay_id="S1")
    assert letter([retried, *events]).status == COUNTED


def test_not_deposited_is_a_produced_document_the_dmp_never_acknowledged() -> None:
    unit = letter([discharged("S1"), produced("D1", LETTER, stay_id="S1")])
    assert (unit.status, unit.reason, unit.deposit_day) == (PENDING, NOT_DEPOSITED, None)


def test_ins_not_qualified_at_sending() -> None:
    unit = letter(
        [discharged("S1"), deposited("D1", LETTER, stay_id="S1", ins_status="provisoire")]
    )
    assert (unit.status, unit.reason) == (PENDING, INS_NOT_QUALIFIED)
    assert (unit.detail, unit.deposit_day) == ("INS provisoire when sent", DISCHARGE)


def test_cda_level_other_than_1_or_3() -> None:
    """Contract v1 refuses other levels at validation (a dead letter), so this reason is
    given only to a deposit built directly: the day the contract admits one."""
    at = datetime.fromisoformat("2023-01-12T11:00:00+01:00")
    deposit = Deposit("e1", at, LETTER, "P1", "S1", 2, "qualifiee", at, at, None)
    est = collection_of([establishment()]).get(F1)
    outcome = standing(DocumentFacts("D1", deposit=deposit), est)
    assert (outcome.reason, outcome.detail) == (CDA_LEVEL, "CDA-R2 level 2")


def test_deleted() -> None:
    unit = letter([discharged("S1"), deposited("D1", LETTER, stay_id="S1"), deleted("D1")])
    assert (unit.status, unit.reason, unit.deposit_day) == (PENDING, DELETED, DISCHARGE)


def test_replaced_by_non_qualifying() -> None:
    """D2 stands in for D1 (rule 5) but names no stay: the stay has nothing left."""
    events = [
        discharged("S1"),
        deposited("D1", LETTER, stay_id="S1"),
        deposited("D2", LETTER, stay_id=None, replaces="D1"),
    ]
    unit = letter(events)
    assert (unit.status, unit.reason, unit.detail) == (
        PENDING,
        REPLACED_BY_NON_QUALIFYING,
        "replaced by D2",
    )


def test_the_most_actionable_reason_of_several_documents() -> None:
    """D1 was replaced by D2, deposited too late: replaced_by_non_qualifying comes before
    deposited_late in the list; the unit gives the first."""
    late = "2023-03-01T10:00:00+01:00"
    events = [
        discharged("S1"),
        deposited("D1", LETTER, stay_id="S1"),
        deposited("D2", LETTER, stay_id="S1", replaces="D1", deposited_at=late),
    ]
    unit = letter(events)
    assert (unit.status, unit.reason) == (MISSED, REPLACED_BY_NON_QUALIFYING)
    assert REASONS.index(REPLACED_BY_NON_QUALIFYING) < REASONS.index(DEPOSITED_LATE)


def test_deposited_late_says_by_how_many_days_and_is_final() -> None:
    late = "2023-02-20T10:00:00+01:00"
    unit = letter([discharged("S1"), deposited("D1", LETTER, stay_id="S1", deposited_at=late)])
    assert (unit.status, unit.reason, unit.detail) == (MISSED, DEPOSITED_LATE, "9 days late")
    assert unit.deposit_day == date(2023, 2, 20)
    # A final reason is missed even before its deadline.
    assert status_of(DEPOSITED_LATE, DEADLINE, DISCHARGE) == MISSED
    assert status_of(NO_DOCUMENT, DEADLINE, DISCHARGE) == PENDING
    assert {DEPOSITED_LATE, MESSAGE_LATE} == FINAL_REASONS


def test_no_history_deposit_for_a_returning_patient() -> None:
    events = [
        establishment(),
        discharged("S0", admitted="2022-11-01T08:00:00+01:00",
                   discharged="2022-11-03T10:00:00+01:00"),
        discharged("S1"),
    ]  # fmt: skip
    unit = units_of(events, "DS1.4", "2023-01")["S1"]
    assert (unit.status, unit.reason, unit.deadline) == (PENDING, NO_HISTORY_DEPOSIT, DEADLINE)
    history = deposited("H1", BIOLOGY, stay_id="S0", produced="2022-11-02T09:00:00+01:00",
                        deposited_at="2023-01-11T09:00:00+01:00")  # fmt: skip
    assert units_of([*events, history], "DS1.4", "2023-01")["S1"].status == COUNTED


def correspondent(objects: list[dict[str, Any]], period: str = "2023-01") -> Any:
    """The DS 4.1 unit of R1, named on S1 (discharged in January: it counts until 03-02)."""
    events = [establishment(), discharged("S1", correspondents=[R1]), *objects]
    return units_of(events, "DS4.1", period)["R1"]


def test_no_message_to_a_correspondent() -> None:
    unit = correspondent([])
    assert (unit.status, unit.reason, unit.kind, unit.patient_id) == (
        PENDING,
        NO_MESSAGE,
        "correspondent",
        None,
    )
    assert unit.deadline == date(2023, 3, 2)
    assert correspondent([CLOCK]).status == MISSED


def test_no_qualifying_attachment_to_a_correspondent() -> None:
    sent = "2023-01-20T10:00:00+01:00"
    unit = correspondent([mss_sent("pro", "R1", sent=sent, attachments=[cda_attachment(None)])])
    assert (unit.status, unit.reason, unit.deposit_day) == (
        PENDING,
        NO_QUALIFYING_ATTACHMENT,
        date(2023, 1, 20),
    )
    unqualified = mss_sent("pro", "R1", sent=sent, attachments=[cda_attachment(ins="validee")])
    assert correspondent([unqualified]).reason == NO_QUALIFYING_ATTACHMENT
    good = mss_sent("pro", "R1", sent="2023-02-20T10:00:00+01:00", attachments=[cda_attachment()])
    counted = correspondent([unqualified, good])
    assert (counted.status, counted.deposit_day) == (COUNTED, date(2023, 2, 20))


def test_message_late_to_a_correspondent() -> None:
    sent = "2023-03-10T10:00:00+01:00"
    unit = correspondent([mss_sent("pro", "R1", sent=sent, attachments=[cda_attachment()])])
    assert (unit.status, unit.reason, unit.detail) == (MISSED, MESSAGE_LATE, "8 days late")


def test_citizen_message_no_message_and_message_late() -> None:
    stay = discharged("S1")
    assert letter_of_patient([stay]).reason == NO_MESSAGE
    late = mss_sent("citoyenne", "p@patient.mssante.fr", stay_id="S1",
                    sent="2023-03-01T10:00:00+01:00")  # fmt: skip
    unit = letter_of_patient([stay, late])
    assert (unit.status, unit.reason, unit.detail) == (MISSED, MESSAGE_LATE, "18 days late")


def letter_of_patient(objects: list[dict[str, Any]]) -> Any:
    """The DS 4.2 unit of stay S1."""
    return units_of([establishment(), *objects], "DS4.2", "2023-01")["S1"]


def test_reports_are_named_by_their_first_document() -> None:
    events = [
        establishment(),
        produced("bio-1", BIOLOGY, produced_at="2023-01-05T09:00:00+01:00"),
        deposited("bio-2", BIOLOGY, produced="2023-01-06T09:00:00+01:00",
                  deposited_at="2023-01-07T09:00:00+01:00"),
        deposited("bio-2b", BIOLOGY, produced="2023-01-20T09:00:00+01:00",
                  deposited_at="2023-01-21T09:00:00+01:00", replaces="bio-2"),
        deposited("bio-3", BIOLOGY, produced="2023-01-31T23:30:00+01:00",
                  deposited_at="2023-03-15T09:00:00+01:00"),
    ]  # fmt: skip
    units = units_of(events, "DS2.1", "2023-01")
    assert {u.unit_id: (u.status, u.reason) for u in units.values()} == {
        "bio-1": (MISSED, NOT_DEPOSITED),
        "bio-2": (COUNTED, None),
        "bio-3": (MISSED, DEPOSITED_LATE),
    }
    assert units["bio-2"].kind == "report"
    assert (units["bio-3"].event_day, units["bio-3"].detail) == (date(2023, 1, 31), "13 days late")
    # The window's units are its months'.
    assert set(units_of(events, "DS2.1", "F2")) == set(units)


def test_now_is_the_latest_day_of_any_fact_even_without_a_discharge() -> None:
    reports = [
        establishment(),
        produced("bio-1", BIOLOGY, produced_at="2023-01-05T09:00:00+01:00"),
        mss_sent("pro", "R1", sent="2023-02-03T10:00:00+01:00", attachments=[]),
    ]
    est = collection_of(reports).get(F1)
    assert (est.watermark, est.now) == (None, date(2023, 2, 3))
    est = collection_of([*reports, CLOCK]).get(F1)
    assert (est.watermark, est.now) == (date(2023, 5, 2), date(2023, 5, 2))


def test_unknown_finess_or_period_has_no_units() -> None:
    establishments = collection_of([establishment(), discharged("S1")])
    assert establishments.units("999999999", "DS1.1", "2023-01") == []
    assert establishments.units(F1, "DS1.1", "2023-02") == []
    assert establishments.units(F1, "DS2.1", "2023-01") == []
    assert establishments.unit_counts("999999999") == []
    assert establishments.unit_counts() == establishments.unit_counts(F1)


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_is_documented(reason: str) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "indicators.md").read_text()
    assert f"`{reason}`" in docs
    assert REASON_LABELS[reason]


def test_listing_units_neither_flushes_nor_misses_unwritten_changes() -> None:
    """The worker writes once per bundle: a worklist read between two writes sees the
    applied events and writes nothing itself."""
    store = MemoryStore()
    establishments = Establishments(Settings(), store, 10)
    for obj in (establishment(), discharged("S1"), deposited("D1", LETTER, stay_id="S1")):
        establishments.apply(parse(obj))
    establishments.flush()
    written = dict(store.data)
    for obj in (discharged("S2"), deleted("D1")):
        establishments.apply(parse(obj))
    units = {u.unit_id: u.reason for u in establishments.units(F1, "DS1.1", "2023-01")}
    assert units == {"S1": DELETED, "S2": NO_DOCUMENT}
    assert store.data == written
