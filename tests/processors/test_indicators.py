"""Every indicator on one establishment with known answers, targets, settings and exclusions."""

from __future__ import annotations

import pytest

from processors.report import compute_report
from processors.settings import Settings
from tests.builders import (
    F1,
    F2,
    cda_attachment,
    deposited,
    discharged,
    establishment,
    mss_sent,
    parse,
    produced,
)

LETTER, PRESCRIPTION, OPERATIVE, BIOLOGY, IMAGING = (
    "11490-0", "57833-6", "34874-8", "11502-2", "18748-4",
)  # fmt: skip
R1 = {"rpps": "10000000001", "mss_address": "dr.un@ch.mssante.fr"}
R2 = {"rpps": "10000000002", "mss_address": "dr.deux@ch.mssante.fr"}

EVENTS = [
    establishment(window="F2"),
    # S1: surgical, letter + prescription + operative report, citizen message, 2 correspondents
    discharged("S1", surgical=True, correspondents=[R1, R2]),
    deposited("S1-let", LETTER, stay_id="S1"),
    deposited("S1-ord", PRESCRIPTION, stay_id="S1"),
    deposited("S1-cro", OPERATIVE, stay_id="S1"),
    mss_sent("citoyenne", "p1@patient.mssante.fr", stay_id="S1"),
    mss_sent("pro", R1["rpps"], attachments=[cda_attachment()]),
    # S2: surgical, letter only, patient opposed DMP feeding and died
    discharged("S2", patient="P2", surgical=True, dmp_opposition=True, deceased=True),
    deposited("S2-let", LETTER, stay_id="S2", patient="P2"),
    # S3: no document, INS only validated
    discharged("S3", patient="P3", ins_status="validee"),
    # S4: a consultation: out of scope by default
    discharged("S4", patient="P4", stay_kind="consultation"),
    deposited("S4-let", LETTER, stay_id="S4", patient="P4"),
    # reports
    deposited("bio", BIOLOGY, patient="P9"),
    produced("img", IMAGING, patient="P9"),
]


def _table(
    settings: Settings | None = None,
) -> dict[tuple[str, str], tuple[int, int, float | None]]:
    rows = compute_report([parse(e) for e in EVENTS], settings)
    return {(r.indicator, r.period): (r.numerator, r.denominator, r.target) for r in rows}


def test_every_indicator_with_defaults() -> None:
    got = _table()
    assert got[("DS1.1", "2023-01")] == (2, 3, 0.55)
    assert got[("DS1.2", "2023-01")] == (1, 3, 0.48)
    assert got[("DS1.3", "2023-01")] == (1, 2, 0.55)
    assert ("DS1.4", "2023-01") not in got  # nobody came back
    assert got[("DS2.1", "2023-01")] == (1, 1, 0.50)
    assert got[("DS3.1", "2023-01")] == (0, 1, 0.45)
    assert got[("DS4.1", "2023-01")] == (1, 2, 0.42)
    assert got[("DS4.2", "2023-01")] == (1, 3, 0.42)
    # the window figure of each, over the window's dates
    assert got[("DS1.1", "F2")] == (2, 3, 0.55)


@pytest.mark.parametrize(
    ("settings", "expected_ds11", "expected_ds13"),
    [
        (Settings(exclude_dmp_opposition=True), (1, 2), (1, 1)),
        (Settings(exclude_deceased=True), (1, 2), (1, 1)),
        (Settings(exclude_unqualified_ins=True), (2, 2), (1, 2)),
        (
            Settings(stay_scope=frozenset({"hospitalisation_complete", "consultation"})),
            (3, 4),
            (1, 2),
        ),
    ],
)
def test_exclusions_and_scope_are_settings(
    settings: Settings, expected_ds11: tuple[int, int], expected_ds13: tuple[int, int]
) -> None:
    got = _table(settings)
    assert got[("DS1.1", "2023-01")][:2] == expected_ds11
    assert got[("DS1.3", "2023-01")][:2] == expected_ds13
    # exclusions leave DS 4.2's denominator alone
    if not settings.stay_scope - {"hospitalisation_complete", "hospitalisation_partielle", "had"}:
        assert got[("DS4.2", "2023-01")][1] == 3


def test_targets_follow_the_establishment_window() -> None:
    events = [establishment(finess=F2, window="F1"), discharged("S1", finess=F2,
              discharged="2022-03-01T10:00:00+01:00", admitted="2022-02-27T10:00:00+01:00")]  # fmt: skip
    rows = {(r.indicator, r.period): r for r in compute_report([parse(e) for e in events])}
    assert rows[("DS1.1", "F1")].target == 0.49
    assert rows[("DS4.2", "F1")].target is None  # volet 2 had no F1 target


def test_postponed_f1_takes_the_new_end_of_f2() -> None:
    stay = discharged(
        "S1", admitted="2023-02-27T10:00:00+01:00", discharged="2023-03-01T10:00:00+01:00"
    )
    plain = {
        (r.indicator, r.period)
        for r in compute_report([parse(establishment(window="F1")), parse(stay)])
    }
    later = {(r.indicator, r.period) for r in compute_report(
        [parse(establishment(window="F1", postponed=True)), parse(stay)])}  # fmt: skip
    assert ("DS1.1", "F1") not in plain
    assert ("DS1.1", "F1") in later


def test_unknown_establishment_has_months_but_no_window_and_no_report_rates() -> None:
    events = [discharged("S1"), deposited("bio", BIOLOGY)]
    rows = compute_report([parse(e) for e in events])
    assert {(r.finess, r.indicator, r.period, r.target) for r in rows} == {
        (F1, "DS1.1", "2023-01", None),
        (F1, "DS1.2", "2023-01", None),
        (F1, "DS4.2", "2023-01", None),
    }


def test_ratio_is_numerator_over_denominator() -> None:
    row = next(r for r in compute_report([parse(e) for e in EVENTS]) if r.indicator == "DS1.1")
    assert row.ratio == pytest.approx(2 / 3)
    assert row.as_json()["ratio"] == pytest.approx(2 / 3)
