"""One establishment's state: its facts, the indexes that join them, and the aggregates.

`Establishment.apply(event)` merges an event into the facts (any order, duplicates ignored),
recomputes the contribution of every unit the event can affect, and returns the entities it
changed, so that a stream can write exactly those to its changelogged table. `rows()` gives the
figures. `load_entity` + `rebuild()` restore the state from that table after a restart: the
indexes and aggregates are derived, never stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from processors import facts as f
from processors.calendar import FundingCalendar, Window, load_calendar
from processors.catalogue import RATE_INDICATORS, REPORT_INDICATORS
from processors.facts import DocumentFacts, RecipientFacts, StayFacts, StayVersion
from processors.periods import month_bounds, paris_date, paris_midnight
from processors.rules import AggregateKey, Contribution, report_contribution, stay_contribution
from processors.settings import Settings
from topics.records import (
    QUALIFIED_INS,
    DocumentDeleted,
    DocumentDeposited,
    DocumentDepositFailed,
    DocumentProduced,
    EstablishmentRecord,
    Event,
    MssSent,
    StayDischargeCancelled,
    StayDischarged,
)

CLOSE_EVERY = timedelta(days=7)
EntityRef = tuple[str, str]  # (kind, id): kind is facts.STAY, facts.DOCUMENT or facts.RECIPIENT
Unit = tuple[str, str]  # ("stay", stay_id) or ("report", smallest document id of the chain)


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    """One figure: an indicator of an establishment over a month ("2023-03") or its window."""

    finess: str
    indicator: str
    period: str
    numerator: int
    denominator: int
    target: float | None

    @property
    def ratio(self) -> float:
        return self.numerator / self.denominator

    @property
    def is_window(self) -> bool:
        return not self.period[:1].isdigit()

    def as_json(self) -> dict[str, Any]:
        return {
            "finess": self.finess,
            "indicator": self.indicator,
            "period": self.period,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "ratio": self.ratio,
            "target": self.target,
        }


class Establishment:
    def __init__(
        self,
        finess: str,
        settings: Settings,
        registry: EstablishmentRecord | None = None,
    ) -> None:
        self.finess = finess
        self.settings = settings
        self.calendar: FundingCalendar = load_calendar(settings.calendar_version)
        self.registry = registry
        self.stays: dict[str, StayFacts] = {}
        self.documents: dict[str, DocumentFacts] = {}
        self.recipients: dict[str, RecipientFacts] = {}
        self.watermark: datetime | None = None  # latest discharge seen (event time)
        # Derived: indexes of the join, and the aggregates.
        self._docs_by_stay: defaultdict[str, set[str]] = defaultdict(set)
        self._docs_by_patient: defaultdict[str, set[str]] = defaultdict(set)
        self._stays_by_patient: defaultdict[str, set[str]] = defaultdict(set)
        self._replaced_by: defaultdict[str, set[str]] = defaultdict(set)
        self._contributions: dict[Unit, Contribution] = {}
        self._totals: dict[AggregateKey, int] = {}
        # Closed periods: their final figures, kept when their stays have left the state.
        self.frozen: dict[str, dict[str, tuple[int, int]]] = {}
        self._closed_on: date | None = None  # the watermark day of the last close()
        self._rows: list[IndicatorRow] | None = None  # rows() until the state changes

    # --- what the rules read (processors.rules.Facts) ---------------------------------------

    def window(self) -> Window | None:
        if self.registry is None:
            return None
        return self.calendar.window_for(self.registry.window, self.registry.postponed)

    def documents_of_stay(self, stay_id: str) -> Iterator[DocumentFacts]:
        return (self.documents[d] for d in self._docs_by_stay.get(stay_id, ()))

    def documents_of_patient(self, patient_id: str) -> Iterator[DocumentFacts]:
        return (self.documents[d] for d in self._docs_by_patient.get(patient_id, ()))

    def stays_of_patient(self, patient_id: str) -> Iterator[StayFacts]:
        return (self.stays[s] for s in self._stays_by_patient.get(patient_id, ()))

    def is_replaced(self, document_id: str) -> bool:
        return bool(self._replaced_by.get(document_id))

    # --- events ------------------------------------------------------------------------------

    def apply(self, event: Event) -> set[EntityRef]:
        """Merge one event; return the entities whose facts changed (empty for a duplicate)."""
        if event.finess != self.finess:
            raise ValueError(f"event for FINESS {event.finess} applied to {self.finess}")
        self._rows = None
        match event:
            case StayDischarged():
                return self._change_stay(event.stay_id, lambda s: s.merge_discharge(event))
            case StayDischargeCancelled():
                return self._change_stay(
                    event.stay_id, lambda s: s.merge_cancellation(event.occurred_at, event.event_id)
                )
            case DocumentProduced():
                return self._change_document(event.document_id, lambda d: d.merge_production(event))
            case DocumentDeposited():
                return self._change_document(event.document_id, lambda d: d.merge_deposit(event))
            case DocumentDeleted():
                return self._change_document(
                    event.document_id, lambda d: d.merge_deletion(event.occurred_at)
                )
            case DocumentDepositFailed():
                return set()  # a refused deposit changes no rate (rule 4)
            case MssSent():
                return self._apply_message(event)
        raise TypeError(f"unsupported event {type(event).__name__}")

    def set_registry(self, record: EstablishmentRecord | None) -> None:
        """A new registry entry can move the window: every contribution is recomputed."""
        if record is not None and record.finess != self.finess:
            raise ValueError(f"registry entry for {record.finess} given to {self.finess}")
        if record != self.registry:
            self.registry = record
            self.rebuild()
            self._rows = None

    def _change_stay(self, stay_id: str, merge: Any) -> set[EntityRef]:
        stay = self.stays.get(stay_id)
        if stay is None:
            stay = self.stays[stay_id] = StayFacts(stay_id)
        old_version = stay.version
        before = old_version.patient_id if old_version else None
        if not merge(stay):
            return set()
        after = stay.version.patient_id if stay.version else None
        if stay.version is not old_version:
            self._move_watermark(old_version, stay.version)
        if before != after:
            if before is not None:
                self._stays_by_patient[before].discard(stay_id)
            if after is not None:
                self._stays_by_patient[after].add(stay_id)
        self._refresh_stays({stay_id}, {before, after})
        return {(f.STAY, stay_id)}

    def _move_watermark(self, old: StayVersion | None, new: StayVersion | None) -> None:
        """The watermark is the latest discharge of the stays' current versions: a
        corrected-away version must not hold it (the same after a restart)."""
        if new is not None and (self.watermark is None or new.discharged_at > self.watermark):
            self.watermark = new.discharged_at
        elif old is not None and old.discharged_at == self.watermark:
            self.watermark = max(
                (s.version.discharged_at for s in self.stays.values() if s.version), default=None
            )

    def _change_document(self, document_id: str, merge: Any) -> set[EntityRef]:
        doc = self.documents.get(document_id)
        if doc is None:
            doc = self.documents[document_id] = DocumentFacts(document_id)
        before = _links(doc)
        if not merge(doc):
            return set()
        after = _links(doc)
        if before != after:
            self._unindex_document(document_id, before)
            self._index_document(document_id, after)
        self._refresh_around_documents(
            {document_id, before[2], after[2]},
            stays={before[0], after[0]},
            patients={before[1], after[1]},
        )
        return {(f.DOCUMENT, document_id)}

    def _apply_message(self, event: MssSent) -> set[EntityRef]:
        if event.channel == "citoyenne":
            if event.stay_id is None:
                return set()  # not linked to a stay: DS 4.2 cannot use it
            return self._change_stay(
                event.stay_id, lambda s: s.merge_citizen_message(event.message_id, event.sent_at)
            )
        qualifying = any(
            a.cda_level in (1, 3) and a.ins_status == QUALIFIED_INS for a in event.attachments
        )
        if not qualifying:
            return set()
        recipient = self.recipients.get(event.recipient)
        if recipient is None:
            recipient = self.recipients[event.recipient] = RecipientFacts(event.recipient)
        if not recipient.merge_message(event.message_id, event.sent_at):
            return set()
        return {(f.RECIPIENT, event.recipient)}  # DS 4.1 numerators are read at query time

    # --- indexes and contributions -------------------------------------------------------------

    def _index_document(self, document_id: str, links: tuple[str | None, ...]) -> None:
        stay_id, patient_id, replaces = links
        if stay_id is not None:
            self._docs_by_stay[stay_id].add(document_id)
        if patient_id is not None:
            self._docs_by_patient[patient_id].add(document_id)
        if replaces is not None:
            self._replaced_by[replaces].add(document_id)

    def _unindex_document(self, document_id: str, links: tuple[str | None, ...]) -> None:
        stay_id, patient_id, replaces = links
        if stay_id is not None:
            self._docs_by_stay[stay_id].discard(document_id)
        if patient_id is not None:
            self._docs_by_patient[patient_id].discard(document_id)
        if replaces is not None:
            self._replaced_by[replaces].discard(document_id)

    def _refresh_around_documents(
        self, document_ids: set[str | None], stays: set[str | None], patients: set[str | None]
    ) -> None:
        """Recompute what documents can change: their stays (now and before the event), their
        patients' stays (DS 1.4) and their report chains (DS 2.1/3.1)."""
        chains: set[str] = set()
        for document_id in document_ids:
            if document_id is None:
                continue
            doc = self.documents.get(document_id)
            if doc is not None:
                stays.add(doc.stay_id)
                patients.add(doc.patient_id)
            if document_id not in chains:
                chain = self._chain(document_id)
                chains |= chain
                self._refresh_report(chain)
        self._refresh_stays(stays, patients)

    def _refresh_stays(self, stay_ids: set[str | None], patients: set[str | None]) -> None:
        targets = {stay_id for stay_id in stay_ids if stay_id is not None}
        for patient in patients:
            if patient is not None:
                targets |= self._stays_by_patient.get(patient, set())
        for stay_id in targets:
            stay = self.stays.get(stay_id)
            if stay is not None:
                self._set_contribution(("stay", stay_id), stay_contribution(stay, self))

    def _chain(self, document_id: str) -> set[str]:
        """All versions of a document: linked through `replaces`, in both directions."""
        seen: set[str] = set()
        pending = [document_id]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            doc = self.documents.get(current)
            if doc is not None and doc.deposit is not None and doc.deposit.replaces:
                pending.append(doc.deposit.replaces)
            pending.extend(self._replaced_by.get(current, ()))
        return seen

    def _refresh_report(self, chain: set[str]) -> None:
        # A chain is one unit, keyed by its smallest id; that key may change as it grows.
        for document_id in chain:
            self._set_contribution(("report", document_id), {})
        docs = [self.documents[d] for d in chain if d in self.documents]
        if any(doc.type_code in REPORT_INDICATORS for doc in docs):
            self._set_contribution(("report", min(chain)), report_contribution(docs, self))

    def _set_contribution(self, unit: Unit, new: Contribution) -> None:
        old = self._contributions.get(unit)
        if old == new or (not old and not new):
            return  # the usual case when a neighbour's event is recomputed: nothing moves
        totals = self._totals
        if old:
            for key, value in old.items():
                left = totals[key] - value
                if left:
                    totals[key] = left
                else:
                    del totals[key]
        if new:
            for key, value in new.items():
                totals[key] = totals.get(key, 0) + value
            self._contributions[unit] = new
        else:
            del self._contributions[unit]

    def rebuild(self) -> None:
        """Derive the indexes and all aggregates again from the facts alone."""
        self._rows = None
        for index in (
            self._docs_by_stay,
            self._docs_by_patient,
            self._stays_by_patient,
            self._replaced_by,
        ):
            index.clear()
        self._contributions.clear()
        self._totals.clear()
        for stay in self.stays.values():
            if stay.version is not None:
                self._stays_by_patient[stay.version.patient_id].add(stay.stay_id)
        for doc in self.documents.values():
            self._index_document(doc.document_id, _links(doc))
        for stay in self.stays.values():
            self._set_contribution(("stay", stay.stay_id), stay_contribution(stay, self))
        done: set[str] = set()
        for document_id, doc in self.documents.items():
            if document_id not in done and doc.type_code in REPORT_INDICATORS:
                chain = self._chain(document_id)
                done |= chain
                self._refresh_report(chain)
        discharges = [s.version.discharged_at for s in self.stays.values() if s.version]
        self.watermark = max(discharges, default=None)

    # --- persistence of facts (the stream's changelogged table) ------------------------------

    def entity_json(self, ref: EntityRef) -> dict[str, Any] | None:
        kind, key = ref
        if kind == f.STAY:
            stay = self.stays.get(key)
            return None if stay is None else f.stay_to_json(stay)
        if kind == f.DOCUMENT:
            doc = self.documents.get(key)
            return None if doc is None else f.document_to_json(doc)
        if kind == f.PERIOD:
            figures = self.frozen.get(key)
            return None if figures is None else {"period": key, "figures": figures}
        recipient = self.recipients.get(key)
        return None if recipient is None else f.recipient_to_json(recipient)

    def load_entity(self, ref: EntityRef, data: dict[str, Any]) -> None:
        """Put back a stored entity; call `rebuild()` once all are loaded."""
        self._rows = None
        kind, key = ref
        if kind == f.STAY:
            self.stays[key] = f.stay_from_json(data)
        elif kind == f.DOCUMENT:
            self.documents[key] = f.document_from_json(data)
        elif kind == f.RECIPIENT:
            self.recipients[key] = f.recipient_from_json(data)
        elif kind == f.PERIOD:
            self.frozen[key] = {k: (v[0], v[1]) for k, v in data["figures"].items()}
        else:
            raise ValueError(f"unknown entity kind {kind!r}")

    def entities(self) -> Iterator[EntityRef]:
        yield from ((f.STAY, k) for k in self.stays)
        yield from ((f.DOCUMENT, k) for k in self.documents)
        yield from ((f.RECIPIENT, k) for k in self.recipients)
        yield from ((f.PERIOD, k) for k in self.frozen)

    # --- retention: closed periods keep their figures, their facts leave ------------------

    def close(self, close_after_days: int) -> set[EntityRef]:
        """Close the periods that ended more than `close_after_days` before the watermark
        (their figures become final), then drop the facts nothing open needs any more: stays
        and documents of closed periods, once past DS 1.4's lookback, and MSS Pro messages
        older than every open period. Returns the entities changed or removed."""
        if self.watermark is None:
            return set()
        today = paris_date(self.watermark)
        if self._closed_on is not None and today < self._closed_on + CLOSE_EVERY:
            return set()  # closing is a sweep over the state: once a week of event time
        self._closed_on = today
        self._rows = None
        changed = self._freeze_periods(today - timedelta(days=close_after_days))
        # Stays must outlive the lookback: a later stay of the patient may still need them.
        keep_after = today - timedelta(days=self.settings.lookback_days + self.settings.grace_days)
        changed |= self._drop_stays(keep_after)
        changed |= self._drop_documents(min(keep_after, today - timedelta(days=close_after_days)))
        changed |= self._prune_recipients()
        return changed

    def _unit_periods(self, unit: Unit) -> set[str]:
        return {key[1] if key[0] == "corr" else key[2] for key in self._contributions.get(unit, {})}

    def _freeze_periods(self, horizon: date) -> set[EntityRef]:
        window = self.window()
        open_periods = {k[1] if k[0] == "corr" else k[2] for k in self._totals} - set(self.frozen)
        closing = [p for p in open_periods if self._period_bounds(p, window)[1] < horizon]
        if not closing:
            return set()
        figures = self._open_figures()
        for period in closing:
            self.frozen[period] = {ind: nums for (ind, p), nums in figures.items() if p == period}
        return {(f.PERIOD, period) for period in closing}

    def _drop_stays(self, keep_after: date) -> set[EntityRef]:
        dropped: set[EntityRef] = set()
        limit = paris_midnight(keep_after)
        for stay_id, stay in list(self.stays.items()):
            last = stay.last_moment()
            if last is None or last >= limit:
                continue
            if not self._unit_periods(("stay", stay_id)) <= set(self.frozen):
                continue
            if stay.version is not None and self._needed_for_history(stay):
                continue
            self._set_contribution(("stay", stay_id), {})
            if stay.version is not None:
                self._stays_by_patient[stay.version.patient_id].discard(stay_id)
            del self.stays[stay_id]
            dropped.add((f.STAY, stay_id))
        return dropped

    def _needed_for_history(self, stay: StayFacts) -> bool:
        """Does a stay still here make this one's patient a returning patient (DS 1.4)?"""
        assert stay.version is not None
        reach = stay.version.discharge_day + timedelta(days=self.settings.lookback_days)
        return any(
            other.stay_id != stay.stay_id
            and other.version is not None
            and other.version.admission_day <= reach
            and other.version.admitted_at > stay.version.discharged_at
            for other in self.stays_of_patient(stay.version.patient_id)
        )

    def _drop_documents(self, keep_after: date) -> set[EntityRef]:
        dropped: set[EntityRef] = set()
        seen: set[str] = set()
        limit = paris_midnight(keep_after)
        for document_id, candidate in list(self.documents.items()):
            if document_id in seen or not self._droppable(candidate, limit):
                continue
            chain = self._chain(document_id)
            seen |= chain
            docs = [self.documents[d] for d in chain if d in self.documents]
            if all(self._droppable(doc, limit) for doc in docs) and all(
                self._unit_periods(("report", d)) <= set(self.frozen) for d in chain
            ):
                for doc in docs:
                    self._set_contribution(("report", doc.document_id), {})
                    self._unindex_document(doc.document_id, _links(doc))
                    del self.documents[doc.document_id]
                    dropped.add((f.DOCUMENT, doc.document_id))
        return dropped

    def _droppable(self, doc: DocumentFacts, limit: datetime) -> bool:
        last = doc.last_moment()
        if last is None or last >= limit:
            return False
        if doc.stay_id is not None and doc.stay_id in self.stays:
            return False  # its stay still counts it
        deposit = doc.deposit
        if deposit is None or doc.patient_id is None:
            return True
        # DS 1.4: a stay still here, admitted before this deposit, may count it.
        return all(
            s.version is None or s.version.admitted_at > deposit.deposited_at
            for s in self.stays_of_patient(doc.patient_id)
        )

    def _prune_recipients(self) -> set[EntityRef]:
        window = self.window()
        open_periods = {k[1] for k in self._totals if k[0] == "corr"} - set(self.frozen)
        if not open_periods:
            return set()
        oldest = min(self._period_bounds(p, window)[0] for p in open_periods)
        changed: set[EntityRef] = set()
        for rpps, recipient in list(self.recipients.items()):
            old = [m for m, day in recipient.qualifying_messages.items() if day < oldest]
            if not old:
                continue
            for message_id in old:
                del recipient.qualifying_messages[message_id]
            if not recipient.qualifying_messages:
                del self.recipients[rpps]
            changed.add((f.RECIPIENT, rpps))
        return changed

    # --- figures -------------------------------------------------------------------------------

    def rows(self) -> list[IndicatorRow]:
        """Every (indicator, period) with a denominator above 0 (rule 10); computed once per
        change of the state, however often /metrics and /indicators read it."""
        if self._rows is None:
            self._rows = self._compute_rows()
        return list(self._rows)

    def _compute_rows(self) -> list[IndicatorRow]:
        counts = self._open_figures()
        for period, figures in self.frozen.items():
            for indicator, numbers in figures.items():
                counts[(indicator, period)] = numbers
        target_window = self.registry.window if self.registry is not None else None
        rows = []
        for (indicator, period), (numerator, denominator) in counts.items():
            if denominator <= 0 or not self._has_rate(indicator):
                continue
            target = None
            if target_window is not None:
                target = self.calendar.target(indicator, target_window)
            rows.append(
                IndicatorRow(self.finess, indicator, period, numerator, denominator, target)
            )
        rows.sort(key=row_order)
        return rows

    def _open_figures(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(indicator, period) → (numerator, denominator) from the aggregates, for the
        periods not closed yet."""
        window = self.window()
        counts: dict[tuple[str, str], list[int]] = {}
        correspondents: defaultdict[str, set[str]] = defaultdict(set)
        for (kind, a, b), value in self._totals.items():
            if value <= 0:
                continue
            if kind == "corr":
                if a not in self.frozen:
                    correspondents[a].add(b)
            elif b not in self.frozen:
                counts.setdefault((a, b), [0, 0])[kind == "den"] += value
        for period, rpps_set in correspondents.items():
            start, end = self._period_bounds(period, window)
            last = end + timedelta(days=self.settings.grace_days)
            reached = sum(1 for rpps in rpps_set if self._reached(rpps, start, last))
            counts[("DS4.1", period)] = [reached, len(rpps_set)]
        return {key: (numbers[0], numbers[1]) for key, numbers in counts.items()}

    def _has_rate(self, indicator: str) -> bool:
        # DS 2.1 / 3.1 exist only where the establishment has its own lab / imaging unit.
        if indicator == "DS2.1":
            return self.registry is not None and self.registry.has_lab
        if indicator == "DS3.1":
            return self.registry is not None and self.registry.has_imaging
        return True

    @staticmethod
    def _period_bounds(period: str, window: Window | None) -> tuple[date, date]:
        if window is not None and period == window.name:
            return window.start, window.end
        return month_bounds(period)

    def _reached(self, rpps: str, first: date, last: date) -> bool:
        recipient = self.recipients.get(rpps)
        if recipient is None:
            return False
        return any(first <= day <= last for day in recipient.qualifying_messages.values())


def _links(doc: DocumentFacts) -> tuple[str | None, str | None, str | None]:
    """What a document is indexed by: its stay, its patient, the id it replaces."""
    replaces = doc.deposit.replaces if doc.deposit is not None else None
    return doc.stay_id, doc.patient_id, replaces


def row_order(row: IndicatorRow) -> tuple[str, int, str]:
    # Months ("2023-03") sort before the window ("F2"): digits come before letters.
    return (row.finess, RATE_INDICATORS.index(row.indicator), row.period)


def rows_of(establishments: Iterable[Establishment]) -> list[IndicatorRow]:
    rows = [row for est in establishments for row in est.rows()]
    rows.sort(key=row_order)
    return rows
