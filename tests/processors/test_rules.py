"""SPEC.md's counting rules 1–10, each on a small data set with hand-computed figures."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.aggregates import DENOMINATOR, NUMERATOR, Contribution, EventDay, RateKey, UnitKey
from processors.collection import Establishments
from processors.facts import DocumentFacts
from processors.periods import month_bounds, month_key
from processors.rules import Facts, _months_reached, report_contribution, report_outcome
from processors.settings import Settings
from processors.state import DOCUMENT
from tests.builders import (
    F1,
    cancelled,
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
from tests.processors.test_reach import any_event

LETTER, PRESCRIPTION, OPERATIVE, BIOLOGY, IMAGING = (
    "11490-0",
    "57833-6",
    "34874-8",
    "11502-2",
    "18748-4",
)


def test_rule_1_period_is_the_paris_calendar_date() -> None:
    # 2023-03-31T23:30Z is 2023-04-01 01:30 in Paris: April, and outside F2 (ends 03-31).
    got = figures_of(
        [
            establishment(window="F2"),
            discharged("S1", admitted="2023-03-30T10:00:00Z", discharged="2023-03-31T23:30:00Z"),
            discharged(
                "S2", admitted="2023-03-30T10:00:00+02:00", discharged="2023-04-01T00:30:00+02:00"
            ),
            discharged("S3", admitted="2023-03-30T10:00:00Z", discharged="2023-03-31T21:30:00Z"),
        ]
    )
    assert got[(F1, "DS1.1", "2023-04")] == (0, 2)
    assert got[(F1, "DS1.1", "2023-03")] == (0, 1)  # 21:30Z = 23:30 Paris, still March 31
    assert got[(F1, "DS1.1", "F2")] == (0, 1)


def test_rule_2_duplicate_events_change_nothing() -> None:
    stay = discharged("S1")
    letter = deposited("D1", LETTER, stay_id="S1")
    once = figures_of([establishment(), stay, letter])
    twice = figures_of([establishment(), stay, letter, letter, stay, stay])
    assert once == twice
    assert once[(F1, "DS1.1", "2023-01")] == (1, 1)


def test_rule_3_latest_discharge_version_wins_in_any_order() -> None:
    first = discharged(
        "S1", discharged="2023-01-20T10:00:00+01:00", occurred="2023-01-20T10:00:00+01:00"
    )
    fix = discharged(
        "S1", discharged="2023-02-02T10:00:00+01:00", occurred="2023-02-02T11:00:00+01:00"
    )
    for events in ([first, fix], [fix, first]):
        got = figures_of([establishment(), *events])
        assert (F1, "DS1.1", "2023-01") not in got
        assert got[(F1, "DS1.1", "2023-02")] == (0, 1)


def test_rule_3_cancellation_removes_the_stay_and_a_later_discharge_brings_it_back() -> None:
    stay = discharged("S1", occurred="2023-01-12T10:00:00+01:00")
    letter = deposited("D1", LETTER, stay_id="S1")
    cancel = cancelled("S1", occurred="2023-01-13T10:00:00+01:00")
    assert (F1, "DS1.1", "2023-01") not in figures_of([establishment(), letter, cancel, stay])
    again = discharged("S1", occurred="2023-01-14T10:00:00+01:00")
    got = figures_of([establishment(), again, cancel, letter, stay])
    assert got[(F1, "DS1.1", "2023-01")] == (1, 1)
    # A cancellation older than the discharge does not remove it.
    old_cancel = cancelled("S1", occurred="2023-01-11T10:00:00+01:00")
    assert figures_of([establishment(), stay, old_cancel])[(F1, "DS1.1", "2023-01")] == (0, 1)


def test_rule_4_qualifying_deposit_conditions() -> None:
    events = [
        establishment(),
        discharged("OK"),
        deposited("d-ok", LETTER, stay_id="OK"),
        discharged("WRONG_TYPE"),
        deposited("d-type", PRESCRIPTION, stay_id="WRONG_TYPE"),
        discharged("NO_INS"),
        deposited("d-ins", LETTER, stay_id="NO_INS", ins_status="validee"),
        discharged("DELETED"),
        deleted("d-del"),  # deletion before the deposit: order does not matter
        deposited("d-del", LETTER, stay_id="DELETED"),
        discharged("LATE"),  # discharged 2023-01-12: grace ends 2023-02-11
        deposited("d-late", LETTER, stay_id="LATE", deposited_at="2023-02-12T08:00:00+01:00"),
        discharged("LAST_DAY"),
        deposited("d-last", LETTER, stay_id="LAST_DAY", deposited_at="2023-02-11T23:00:00+01:00"),
        discharged("FAILED"),
        deposit_failed("d-failed"),
        discharged("LEVEL3"),
        deposited("d-l3", LETTER, stay_id="LEVEL3", cda_level=3),
        deposited("d-other-stay", LETTER, stay_id="NOT_A_STAY_OF_OURS"),
    ]
    got = figures_of(events)
    # counted: OK, LAST_DAY, LEVEL3 — out of 8 stays
    assert got[(F1, "DS1.1", "2023-01")] == (3, 8)


def test_rule_4_grace_zero_means_the_same_day() -> None:
    events = [
        establishment(),
        discharged("S1", discharged="2023-01-12T10:00:00+01:00"),
        deposited("D1", LETTER, stay_id="S1", deposited_at="2023-01-12T23:59:00+01:00"),
        discharged("S2", discharged="2023-01-12T10:00:00+01:00"),
        deposited("D2", LETTER, stay_id="S2", deposited_at="2023-01-13T00:01:00+01:00"),
    ]
    assert figures_of(events, Settings(grace_days=0))[(F1, "DS1.1", "2023-01")] == (1, 2)
    assert figures_of(events, Settings(grace_days=1))[(F1, "DS1.1", "2023-01")] == (2, 2)


def test_rule_5_replacement_stands_in_for_the_original() -> None:
    original = deposited("A", LETTER, stay_id="S1")
    good = deposited("B", LETTER, stay_id="S1", replaces="A")
    bad = deposited("B", LETTER, stay_id="S1", replaces="A", ins_status="provisoire")
    base = [establishment(), discharged("S1")]
    assert figures_of([*base, original])[(F1, "DS1.1", "2023-01")] == (1, 1)
    # The replacement counts on its own: once, whatever the order.
    assert figures_of([*base, good, original])[(F1, "DS1.1", "2023-01")] == (1, 1)
    # A replacement that does not qualify takes the original with it.
    assert figures_of([*base, bad, original])[(F1, "DS1.1", "2023-01")] == (0, 1)
    # Deleting the replacement does not bring the original back.
    gone = figures_of([*base, original, good, deleted("B")])
    assert gone[(F1, "DS1.1", "2023-01")] == (0, 1)


def test_rule_6_returning_patient_with_history_deposited_during_the_stay() -> None:
    events = [
        establishment(),
        # P1: earlier stay in 2022, returns 2023-01-10..12; a 2022 document is deposited then.
        discharged("P1-old", patient="P1", admitted="2022-11-01T08:00:00+01:00",
                   discharged="2022-11-03T10:00:00+01:00"),
        discharged("P1-new", patient="P1"),
        deposited("hist", BIOLOGY, patient="P1", stay_id="P1-old",
                  produced="2022-11-02T09:00:00+01:00", deposited_at="2023-01-11T09:00:00+01:00"),
        # P2: returning, but the old document was deposited before the admission.
        discharged("P2-old", patient="P2", admitted="2022-12-01T08:00:00+01:00",
                   discharged="2022-12-02T10:00:00+01:00"),
        discharged("P2-new", patient="P2"),
        deposited("early", LETTER, patient="P2", stay_id="P2-old",
                  produced="2022-12-02T09:00:00+01:00", deposited_at="2022-12-03T09:00:00+01:00"),
        # P3: earlier stay beyond the lookback: not a returning patient.
        discharged("P3-old", patient="P3", admitted="2021-11-01T08:00:00+01:00",
                   discharged="2021-11-02T10:00:00+01:00"),
        discharged("P3-new", patient="P3"),
        # P4: earlier stay cancelled: not a returning patient.
        discharged("P4-old", patient="P4", admitted="2022-10-01T08:00:00+01:00",
                   discharged="2022-10-02T10:00:00+01:00", occurred="2022-10-02T10:00:00+01:00"),
        cancelled("P4-old", occurred="2022-10-03T10:00:00+01:00"),
        discharged("P4-new", patient="P4"),
        # P5: the history document was produced during the new stay: not history.
        discharged("P5-old", patient="P5", admitted="2022-10-01T08:00:00+01:00",
                   discharged="2022-10-02T10:00:00+01:00"),
        discharged("P5-new", patient="P5"),
        deposited("fresh", LETTER, patient="P5", stay_id="P5-new",
                  produced="2023-01-11T09:00:00+01:00", deposited_at="2023-01-11T10:00:00+01:00"),
    ]  # fmt: skip
    got = figures_of(events)
    assert got[(F1, "DS1.4", "2023-01")] == (1, 3)  # P1, P2, P5 return; P1 counts
    assert got[(F1, "DS1.4", "F2")] == (1, 3)
    assert figures_of(events, Settings(lookback_days=500))[(F1, "DS1.4", "2023-01")] == (1, 4)


def test_rule_7_reports_by_production_date_replacements_are_one_report() -> None:
    events = [
        establishment(),
        produced("bio-1", BIOLOGY, produced_at="2023-01-05T09:00:00+01:00"),  # never deposited
        deposited("bio-2", BIOLOGY, produced="2023-01-06T09:00:00+01:00",
                  deposited_at="2023-01-07T09:00:00+01:00"),
        deposited("bio-2b", BIOLOGY, produced="2023-01-20T09:00:00+01:00",
                  deposited_at="2023-01-21T09:00:00+01:00", replaces="bio-2"),
        deposited("bio-3", BIOLOGY, produced="2023-01-31T23:30:00+01:00",  # Paris: January
                  deposited_at="2023-03-15T09:00:00+01:00"),  # later than production + 30 days
        deposited("img-1", IMAGING, produced="2023-02-01T09:00:00+01:00",
                  deposited_at="2023-02-01T10:00:00+01:00", ins_status="recuperee"),
    ]  # fmt: skip
    got = figures_of(events)
    assert got[(F1, "DS2.1", "2023-01")] == (1, 3)
    assert got[(F1, "DS3.1", "2023-02")] == (0, 1)
    without_lab = figures_of([establishment(has_lab=False), *events[1:]])
    assert (F1, "DS2.1", "2023-01") not in without_lab
    assert (F1, "DS3.1", "2023-02") in without_lab


def test_rule_8_distinct_equipped_correspondents_reached_in_period_plus_grace() -> None:
    good = [cda_attachment(level=1)]
    events = [
        establishment(),
        discharged("S1", correspondents=[{"rpps": "R1", "mss_address": "r1@x.mssante.fr"},
                                         {"rpps": "R2", "mss_address": "r2@x.mssante.fr"},
                                         {"rpps": "R9", "mss_address": None}]),
        discharged("S2", discharged="2023-02-10T10:00:00+01:00",
                   correspondents=[{"rpps": "R1", "mss_address": "r1@x.mssante.fr"},
                                   {"rpps": "R3", "mss_address": "r3@x.mssante.fr"}]),
        mss_sent("pro", "R1", sent="2023-02-20T10:00:00+01:00", attachments=good),
        mss_sent("pro", "R2", sent="2023-01-20T10:00:00+01:00",
                 attachments=[cda_attachment(level=None)]),
        mss_sent("pro", "R2", sent="2023-01-21T10:00:00+01:00",
                 attachments=[cda_attachment(ins="validee")]),
        mss_sent("pro", "R3", sent="2023-04-01T10:00:00+02:00", attachments=good),
        mss_sent("pro", "R9", sent="2023-01-20T10:00:00+01:00", attachments=good),
    ]  # fmt: skip
    got = figures_of(events)
    assert got[(F1, "DS4.1", "2023-01")] == (1, 2)  # R1 reached by 2023-01-31 + 30 days
    assert got[(F1, "DS4.1", "2023-02")] == (1, 2)  # R3's message is after 2023-03-30
    assert got[(F1, "DS4.1", "F2")] == (2, 3)  # distinct over the window: R1, R2, R3


def test_rule_9_citizen_message_linked_to_the_stay_within_grace() -> None:
    events = [
        establishment(),
        discharged("S1"),
        mss_sent("citoyenne", "patient@patient.mssante.fr", stay_id="S1"),
        discharged("S2"),
        mss_sent("citoyenne", "patient@patient.mssante.fr", stay_id="S2",
                 sent="2023-03-01T10:00:00+01:00"),
        discharged("S3"),
        mss_sent("citoyenne", "patient@patient.mssante.fr", stay_id=None),
        discharged("S4", stay_kind="urgence"),
        mss_sent("citoyenne", "patient@patient.mssante.fr", stay_id="S4"),
    ]  # fmt: skip
    assert figures_of(events)[(F1, "DS4.2", "2023-01")] == (1, 3)


def test_rule_10_rows_for_months_and_window_with_a_denominator() -> None:
    events = [
        establishment(window="F3"),  # 2023-01-01 → 2023-07-31 as amended in 2023
        discharged(
            "S1", admitted="2023-07-30T10:00:00+02:00", discharged="2023-07-31T10:00:00+02:00"
        ),
        discharged(
            "S2", admitted="2023-08-01T10:00:00+02:00", discharged="2023-08-02T10:00:00+02:00"
        ),
    ]
    got = figures_of(events)
    assert got[(F1, "DS1.1", "2023-07")] == (0, 1)
    assert got[(F1, "DS1.1", "2023-08")] == (0, 1)
    assert got[(F1, "DS1.1", "F3")] == (0, 1)
    assert (F1, "DS1.3", "2023-07") not in got  # no surgical stay: no row, not a 0 %
    assert (F1, "DS2.1", "F3") not in got  # no report
    original = figures_of(events, Settings(calendar_version="2021"))  # F3 ended 2023-06-30
    assert (F1, "DS1.1", "F3") not in original


# --- a report's contribution: its one-version path against report_outcome ----------------------


def _general_report_contribution(chain: list[DocumentFacts], facts: Facts) -> Contribution:
    """What report_contribution gave before its one-version path: every day listed, then
    report_outcome (the path of multi-version chains and of the worklist)."""
    days = [day for doc in chain for day in doc.days()]
    contribution: Contribution = {EventDay(max(days).isoformat()): 1} if days else {}
    report = report_outcome(chain, facts)
    if report is not None:
        month = month_key(report.produced_day)
        contribution[RateKey(DENOMINATOR, report.indicator, month)] = 1
        reason = report.outcome.reason
        if reason is None:
            contribution[RateKey(NUMERATOR, report.indicator, month)] = 1
        else:
            deadline = report.deadline.isoformat()
            contribution[UnitKey(report.indicator, month, reason, deadline)] = 1
    return contribution


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(any_event(), min_size=1, max_size=30), grace=st.sampled_from([0, 30]))
def test_a_report_contribution_is_that_of_report_outcome(
    events: list[dict[str, Any]], grace: int
) -> None:
    """Every chain a feed leaves (one version or more; produced, deposited, failed, deleted,
    replaced): the same keys in the same order as the general path."""
    collection = Establishments(Settings(grace_days=grace))
    for obj in events:
        collection.apply(parse(obj))
    for est in collection.all():
        for document_id in est.state.idents(DOCUMENT):
            chain = [doc for doc in map(est.state.document, sorted(est.chain(document_id))) if doc]
            expected = _general_report_contribution(chain, est)
            assert list(report_contribution(chain, est).items()) == list(expected.items())


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=date(2022, 1, 1), max_value=date(2026, 12, 31)),
    grace_days=st.sampled_from([0, 1, 15, 30, 31, 45, 90, 400]),
)
def test_the_months_a_message_reaches_are_its_month_and_those_whose_end_plus_grace_reach_it(
    day: date, grace_days: int
) -> None:
    """rules._months_reached (kept by day) against rule 8 read month by month: every month
    before the day's whose last day + grace is on or after the day, oldest first."""
    month = month_key(day)
    earlier, first = [], date(day.year - 2, day.month, 1)
    while month_key(first) < month:
        last = month_bounds(month_key(first))[1]
        if last + timedelta(days=grace_days) >= day:
            earlier.append(month_key(first))
        first = last + timedelta(days=1)
    assert _months_reached(day, grace_days) == (month, tuple(earlier))
    assert _months_reached(day, grace_days) == (month, tuple(earlier))  # kept: the same
