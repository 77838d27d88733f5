"""Funding windows and targets, read from versioned data (processors/data/funding_calendar.json).

The programme changed its calendar once (2023): windows and targets are data, never constants
in code. An establishment is enrolled in one window, possibly postponed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class Window:
    name: str  # "F1".."F4"
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        # Figures add a window up from its months (processors.figures): whole months only.
        if self.start.day != 1 or (self.end + timedelta(days=1)).day != 1:
            raise ValueError(
                f"window {self.name} must span whole months, got {self.start} to {self.end}"
            )

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def months(self) -> list[str]:
        """The months it spans, "YYYY-MM"."""
        months, day = [], self.start
        while day <= self.end:
            months.append(f"{day.year:04d}-{day.month:02d}")
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        return months


@dataclass(frozen=True, slots=True)
class FundingCalendar:
    version: str
    source: str
    windows: dict[str, Window]
    postponed_end: dict[str, date]
    targets: dict[str, dict[str, int]]  # indicator → window → percent

    def window_for(self, name: str, postponed: bool) -> Window:
        """The dates an establishment enrolled in `name` is measured on."""
        window = self.windows[name]
        if postponed and name in self.postponed_end:
            return Window(name, window.start, self.postponed_end[name])
        return window

    def target(self, indicator: str, window: str) -> float | None:
        """The target as a ratio 0–1, or None where the window sets none."""
        percent = self.targets.get(indicator, {}).get(window)
        return None if percent is None else percent / 100


def _parse_version(version: str, raw: dict[str, Any]) -> FundingCalendar:
    return FundingCalendar(
        version=version,
        source=raw["source"],
        windows={
            name: Window(name, date.fromisoformat(w["start"]), date.fromisoformat(w["end"]))
            for name, w in raw["windows"].items()
        },
        postponed_end={k: date.fromisoformat(v) for k, v in raw["postponed_end"].items()},
        targets={k: dict(v) for k, v in raw["targets"].items()},
    )


@cache
def _raw_calendar() -> dict[str, Any]:
    text = resources.files("processors").joinpath("data/funding_calendar.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def calendar_versions() -> list[str]:
    return sorted(_raw_calendar()["versions"])


@cache
def load_calendar(version: str | None = None) -> FundingCalendar:
    raw = _raw_calendar()
    chosen = version or raw["default_version"]
    if chosen not in raw["versions"]:
        raise ValueError(
            f"unknown funding calendar version {chosen!r}; known: {', '.join(calendar_versions())}"
        )
    return _parse_version(chosen, raw["versions"][chosen])
