"""The projection of a funding-window rate: every figure counted by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from processors.calendar import Window
from processors.projection import (
    Tally,
    days_to_come,
    project,
    recent_days,
    recent_months,
    tallies,
)

F2 = Window("F2", date(2022, 7, 1), date(2023, 3, 31))


@dataclass(frozen=True)
class Count:
    indicator: str
    period: str
    status: str
    count: int


def test_recent_weeks_are_the_previous_month_and_the_current_one_up_to_now() -> None:
    assert recent_months(date(2023, 3, 20)) == ("2023-02", "2023-03")
    assert recent_days(date(2023, 3, 20)) == 28 + 20
    # Across a year, and a leap February.
    assert recent_months(date(2024, 1, 5)) == ("2023-12", "2024-01")
    assert recent_days(date(2024, 1, 5)) == 31 + 5
    assert recent_days(date(2024, 3, 1)) == 29 + 1


def test_days_to_come_in_the_window() -> None:
    assert days_to_come(F2, date(2023, 3, 20)) == 11  # 21 → 31 March
    assert days_to_come(F2, date(2023, 3, 31)) == 0
    assert days_to_come(F2, date(2023, 5, 2)) == 0
    assert days_to_come(F2, date(2022, 6, 15)) == 274  # the whole window, not yet open


def test_projection_and_best_case_of_a_window_under_way() -> None:
    months = {
        "2023-01": Tally(counted=99, pending=0, missed=1),  # not in the recent weeks
        "2023-02": Tally(counted=30, pending=6, missed=12),
        "2023-03": Tally(counted=20, pending=20, missed=8),
    }
    so_far = Tally(counted=300, pending=26, missed=174)
    got = project(F2, date(2023, 3, 20), so_far, months)
    assert got is not None
    # Recent weeks: 96 units over 48 days, 50 counted; 11 days to come at 2 a day.
    assert got.recent_ratio == pytest.approx(50 / 96)
    assert got.daily_units == pytest.approx(2.0)
    assert got.to_come == pytest.approx(22.0)
    # (300 + 50/96 × (26 + 22)) / (500 + 22) and (300 + 26 + 22) / 522.
    assert got.projected_ratio == pytest.approx(325 / 522)
    assert got.best_case_ratio == pytest.approx(348 / 522)


def test_a_window_that_ended_has_nothing_to_come_but_its_pending_units() -> None:
    months = {"2023-04": Tally(counted=10, missed=10), "2023-05": Tally(counted=0)}
    so_far = Tally(counted=40, pending=10, missed=50)
    got = project(F2, date(2023, 5, 2), so_far, months)
    assert got is not None
    assert got.to_come == 0
    assert got.projected_ratio == pytest.approx((40 + 0.5 * 10) / 100)
    assert got.best_case_ratio == pytest.approx(50 / 100)


def test_before_the_window_opens_the_whole_window_is_to_come() -> None:
    months = {"2022-05": Tally(counted=31, missed=31), "2022-06": Tally(counted=15, missed=15)}
    got = project(F2, date(2022, 6, 15), Tally(), months)
    assert got is not None
    # 92 units over 31 + 15 days: 2 a day for 274 days.
    assert got.to_come == pytest.approx(548.0)
    assert got.projected_ratio == pytest.approx(0.5)
    assert got.best_case_ratio == pytest.approx(1.0)


def test_without_recent_units_the_window_rate_goes_on() -> None:
    so_far = Tally(counted=3, pending=1, missed=4)
    got = project(F2, date(2023, 3, 20), so_far, {})
    assert got is not None
    assert got.to_come == 0 and got.recent_ratio == pytest.approx(3 / 8)
    assert got.projected_ratio == pytest.approx((3 + 3 / 8) / 8)
    assert got.best_case_ratio == pytest.approx(4 / 8)


def test_nothing_to_go_on() -> None:
    assert project(F2, date(2023, 3, 20), Tally(), {"2022-01": Tally(counted=5)}) is None


def test_the_projection_lies_between_the_worst_and_the_best_case() -> None:
    so_far = Tally(counted=10, pending=30, missed=60)
    got = project(F2, date(2023, 3, 1), so_far, {"2023-02": Tally(counted=1, pending=27)})
    assert got is not None
    assert so_far.counted / (so_far.units + got.to_come) <= got.projected_ratio
    assert got.projected_ratio <= got.best_case_ratio


def test_tallies_add_up_the_unit_counts_by_status() -> None:
    counts = [
        Count("DS1.1", "2023-03", "counted", 3),
        Count("DS1.1", "2023-03", "pending", 2),
        Count("DS1.1", "2023-03", "missed", 1),  # one reason
        Count("DS1.1", "2023-03", "missed", 4),  # another reason
        Count("DS1.1", "F2", "counted", 7),
        Count("DS1.2", "2023-03", "pending", 5),
    ]
    assert tallies(counts) == {
        ("DS1.1", "2023-03"): Tally(counted=3, pending=2, missed=5),
        ("DS1.1", "F2"): Tally(counted=7),
        ("DS1.2", "2023-03"): Tally(pending=5),
    }
