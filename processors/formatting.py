"""Rows and units for people and programs: JSON, CSV and a terminal table."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import orjson

from processors.catalogue import BY_ID
from processors.figures import IndicatorRow
from processors.units import (
    CDA_LEVEL,
    COUNTED,
    DELETED,
    DEPOSIT_FAILED,
    DEPOSITED_LATE,
    INS_NOT_QUALIFIED,
    MESSAGE_LATE,
    MISSED,
    NO_DOCUMENT,
    NO_HISTORY_DEPOSIT,
    NO_MESSAGE,
    NO_QUALIFYING_ATTACHMENT,
    NOT_DEPOSITED,
    PENDING,
    REPLACED_BY_NON_QUALIFYING,
    STATUSES,
    Unit,
)

COLUMNS = ("finess", "indicator", "period", "numerator", "denominator", "ratio", "target")


def to_json(rows: Sequence[IndicatorRow]) -> str:
    return orjson.dumps([row.as_json() for row in rows], option=orjson.OPT_INDENT_2).decode()


def _csv(columns: Sequence[str], records: Iterable[dict[str, Any]]) -> str:
    """A header row, then one line per record: the columns in order, None as empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for data in records:
        writer.writerow("" if data[c] is None else data[c] for c in columns)
    return out.getvalue()


def to_csv(rows: Sequence[IndicatorRow]) -> str:
    def record(row: IndicatorRow) -> dict[str, Any]:
        data = row.as_json()
        data["ratio"] = f"{row.ratio:.4f}"
        data["target"] = "" if row.target is None else f"{row.target:.2f}"
        return data

    return _csv(COLUMNS, (record(row) for row in rows))


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


# --- units (sunes explain): the same rows as the worker's worklist --------------------------

UNIT_COLUMNS = (
    "finess", "indicator", "period", "kind", "unit_id", "patient_id", "status", "reason",
    "detail", "deadline", "event_day", "deposit_day",
)  # fmt: skip
STATUS_LABELS = {COUNTED: "compté", PENDING: "en attente", MISSED: "manqué"}
# What a person reads in the table; the codes (JSON, CSV, metrics) are in processors.units.
REASON_LABELS = {
    DEPOSIT_FAILED: "dépôt refusé par le DMP",
    NOT_DEPOSITED: "produit, jamais déposé",
    INS_NOT_QUALIFIED: "INS non qualifiée à l'envoi",
    CDA_LEVEL: "niveau CDA-R2 non admis",
    REPLACED_BY_NON_QUALIFYING: "remplacé par une version non conforme",
    DELETED: "supprimé du DMP",
    NO_DOCUMENT: "aucun document",
    NO_HISTORY_DEPOSIT: "aucun document antérieur déposé",
    NO_QUALIFYING_ATTACHMENT: "messages sans pièce jointe CDA-R2 à INS qualifiée",
    NO_MESSAGE: "aucun message",
    DEPOSITED_LATE: "déposé hors délai",
    MESSAGE_LATE: "envoyé hors délai",
}
# (unit column, event-day column) by unit kind
KIND_HEADERS = {
    "stay": ("séjour (NDA)", "sortie"),
    "report": ("compte rendu", "production"),
    "correspondent": ("RPPS", ""),
}


def units_to_json(units: Sequence[Unit]) -> str:
    return orjson.dumps([u.as_json() for u in units], option=orjson.OPT_INDENT_2).decode()


def units_to_csv(units: Sequence[Unit]) -> str:
    return _csv(UNIT_COLUMNS, (unit.as_json() for unit in units))


def _plural(status: str, count: int) -> str:
    label = STATUS_LABELS[status]
    return label + "s" if count > 1 and status != PENDING else label  # "en attente" stays


# The details of processors.rules (short English, as in JSON), in the table's French.
_DETAIL_WORDS = (
    (" when sent", " à l'envoi"),
    ("CDA-R2 level", "CDA-R2 niveau"),
    ("replaced by", "remplacé par"),
    (" days late", " jours de retard"),
    ("deposited as", "déposé comme"),
)


def french_detail(detail: str | None) -> str:
    text = detail or ""
    for english, french in _DETAIL_WORDS:
        text = text.replace(english, french)
    return text


def _french_day(day: date | None) -> str:
    return "–" if day is None else day.strftime("%d/%m/%Y")


def units_to_table(
    units: Sequence[Unit],
    row: IndicatorRow,
    everything: Sequence[Unit],
    now: date | None,
    name: str = "",
) -> str:
    """A figure's units for a person: a heading (the rate, how many units of each status),
    then one line per unit of `units` (a selection of `everything`) with the dates to act."""
    label = f"{row.indicator.replace('DS', 'DS ')} {BY_ID[row.indicator].short_label}"
    who = f"{row.finess} {name}".strip()
    statuses = Counter(u.status for u in everything)
    tally = ", ".join(f"{statuses[s]} {_plural(s, statuses[s])}" for s in STATUSES)
    target = "" if row.target is None else f", cible {percent(row.target).strip()}"
    lines = [
        f"{label} — {who} — période {row.period}",
        f"taux {percent(row.ratio).strip()} ({row.numerator}/{row.denominator}){target} — "
        f"{tally} — au {_french_day(now)}",
        "",
    ]
    kind = everything[0].kind if everything else "stay"
    unit_header, day_header = KIND_HEADERS[kind]
    header = (
        f"{unit_header:<16} {'patient':<12} {day_header:<10} {'limite':<10} {'dépôt':<10} "
        f"{'statut':<10} {'motif':<34} détail"
    )
    lines += [header, "─" * (len(header) + 20)]
    for u in units:
        reason = "" if u.reason is None else REASON_LABELS[u.reason]
        event_day = _french_day(u.event_day) if kind != "correspondent" else ""
        lines.append(
            f"{u.unit_id:<16} {u.patient_id or '–':<12} {event_day:<10} "
            f"{_french_day(u.deadline):<10} {_french_day(u.deposit_day):<10} "
            f"{STATUS_LABELS[u.status]:<10} {reason:<34} {french_detail(u.detail)}".rstrip()
        )
    if not units:
        lines.append("(aucune unité ne correspond au filtre)")
    return "\n".join(lines)
