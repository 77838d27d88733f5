"""Rows for people and programs: JSON, CSV and a terminal table."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

import orjson

from processors.catalogue import BY_ID
from processors.figures import IndicatorRow

COLUMNS = ("finess", "indicator", "period", "numerator", "denominator", "ratio", "target")


def to_json(rows: Sequence[IndicatorRow]) -> str:
    return orjson.dumps([row.as_json() for row in rows], option=orjson.OPT_INDENT_2).decode()


def to_csv(rows: Sequence[IndicatorRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        data = row.as_json()
        data["ratio"] = f"{row.ratio:.4f}"
        data["target"] = "" if row.target is None else f"{row.target:.2f}"
        writer.writerow(data[c] for c in COLUMNS)
    return out.getvalue()


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:5.1f} %"


def to_table(rows: Sequence[IndicatorRow], names: Mapping[str, str] | None = None) -> str:
    """One line per figure: establishment, indicator label, period, rate vs target; a '▼'
    marks a rate under its target."""
    names = names or {}
    header = (
        f"{'établissement':<32} {'indicateur':<42} {'période':<8} "
        f"{'taux':>8} {'cible':>8}  {'num/dén':>13}"
    )
    lines = [header, "─" * len(header)]
    for row in rows:
        who = f"{row.finess} {names.get(row.finess, '')}".strip()[:32]
        label = f"{row.indicator.replace('DS', 'DS ')} {BY_ID[row.indicator].short_label}"[:42]
        under = row.target is not None and row.ratio < row.target
        mark = " ▼" if under else ""
        lines.append(
            f"{who:<32} {label:<42} {row.period:<8} {percent(row.ratio):>8} "
            f"{percent(row.target):>8}  {row.numerator:>6}/{row.denominator:<6}{mark}"
        )
    if not rows:
        lines.append("(aucun indicateur: no stay, report or correspondent in the input)")
    return "\n".join(lines)
