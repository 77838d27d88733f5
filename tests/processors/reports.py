"""The batch report's figures of hand-built events (a pytest plugin, see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from processors.report import compute_report
from processors.settings import Settings
from tests.builders import parse

Figures = dict[tuple[str, str, str], tuple[int, int]]


def figures_of(objects: list[dict[str, Any]], settings: Settings | None = None) -> Figures:
    """(finess, indicator, period) → (numerator, denominator) of the batch report."""
    rows = compute_report([parse(o) for o in objects], settings)
    return {(r.finess, r.indicator, r.period): (r.numerator, r.denominator) for r in rows}


@pytest.fixture
def figures() -> Callable[..., Figures]:
    return figures_of
