"""One establishment's join: merge an event into its facts, recompute the units it touches.

`Establishment.apply(event)` merges an event into the facts (any order, duplicates ignored),
recomputes the contribution of every unit the event can affect — the stays its facts reach
before and after the change (processors.reach), the report chain of a document, a
correspondent — and moves the aggregates by the difference. Facts, join indexes and contributions live in the store
(processors.state); the aggregates in RAM, rebuilt from the stored contributions after a
restart (`load_contribution`). Figures: processors.figures; each figure's units, their
status and reason: processors.units (counted from the aggregates by processors.breakdown,
listed from the store by processors.worklist).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from processors import state as kinds
from processors.aggregates import Aggregates, Contribution
from processors.breakdown import establishment_unit_counts
from processors.calendar import FundingCalendar, Window, load_calendar
from processors.facts import DocumentFacts, RecipientFacts, StayFacts, StayVersion
from processors.figures import IndicatorRow, establishment_rows
from processors.fingerprint import StateMeta
from processors.periods import paris_midnight
from processors.reach import DocumentReach, document_reach, reaches_later_stay, stay_reach
from processors.rules import (
    qualifying_pro_message,
    recipient_contribution,
    report_contribution,
    stay_contribution,
    stay_contribution_update,
)
from processors.settings import Settings
from processors.state import EstablishmentState
from processors.units import Unit, UnitCount
from processors.worklist import establishment_units
from topics.records import (
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

Links = tuple[str | None, str | None, str | None]  # a document's stay, patient, replaced id


class Establishment:
    def __init__(
        self,
        finess: str,
        settings: Settings,
        state: EstablishmentState,
        registry: EstablishmentRecord | None = None,
    ) -> None:
        self.finess = finess
        self.settings = settings
        self.calendar: FundingCalendar = load_calendar(settings.calendar_version)
        self.registry = registry
        self.state = state
        self.aggregates = Aggregates()
        self._derived: Derived | None = None  # rows, now, unit counts until the state changes
        # Events with a timestamp before this are refused: they could name purged facts.
        self.purge_horizon: datetime | None = None

    # --- what the rules read (processors.rules.Facts) ---------------------------------------

    # An index entry may name an entity that no longer matches it (a write lost with a
    # crash: see apply): each read checks the entity's own facts.

    # Lists rather than generators: most are empty or short, read on every event.

    def documents_of_stay(self, stay_id: str) -> list[DocumentFacts]:
        ids = self.state.ids(kinds.DOCS_OF_STAY, stay_id)
        document = self.state.document
        return [d for d in map(document, ids) if d is not None and d.stay_id == stay_id]

    def documents_of_patient(self, patient_id: str) -> list[DocumentFacts]:
        docs = self._documents(kinds.DOCS_OF_PATIENT, patient_id)
        return [doc for doc in docs if doc.patient_id == patient_id]

    def stays_of_patient(self, patient_id: str) -> list[StayFacts]:
        found = []
        for stay_id in self.state.ids(kinds.STAYS_OF_PATIENT, patient_id):
            stay = self.state.stay(stay_id)
            if stay is not None and stay.version and stay.version.patient_id == patient_id:
                found.append(stay)
        return found

    def is_replaced(self, document_id: str) -> bool:
        return bool(self.replacements(document_id))

    def replacements(self, document_id: str) -> list[str]:
        return [
            doc.document_id
            for doc in self._documents(kinds.REPLACED_BY, document_id)
            if doc.deposit is not None and doc.deposit.replaces == document_id
        ]

    def _documents(self, index: str, key: str) -> list[DocumentFacts]:
        ids = self.state.ids(index, key)
        if not ids:
            return []  # the usual case of REPLACED_BY
        document = self.state.document
        return [doc for doc in map(document, ids) if doc is not None]

    # --- events ------------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Merge one event; False when it changed no fact (a duplicate, an older version).

        The indexes and contributions the event touches are derived again even then: after a
        crash, a replayed bundle may find its facts stored but not all that derives from
        them (the changelog got part of the bundle's writes), and this puts them right."""
        if event.finess != self.finess:
            raise ValueError(f"event for FINESS {event.finess} applied to {self.finess}")
        match event:  # the most frequent first (each case is an isinstance)
            case DocumentProduced():
                changed = self._change_document(
                    event.document_id, lambda d: d.merge_production(event)
                )
            case DocumentDeposited():
                changed = self._change_document(event.document_id, lambda d: d.merge_deposit(event))
            case StayDischarged():
                changed = self._change_stay(event.stay_id, lambda s: s.merge_discharge(event))
            case StayDischargeCancelled():
                changed = self._change_stay(
                    event.stay_id, lambda s: s.merge_cancellation(event.occurred_at, event.event_id)
                )
            case DocumentDeleted():
                changed = self._change_document(
                    event.document_id, lambda d: d.merge_deletion(event.occurred_at)
                )
            case DocumentDepositFailed():  # no rate changes (rule 4); it explains a unit
                changed = self._change_document(event.document_id, lambda d: d.merge_failure(event))
            case MssSent():
                changed = self._apply_message(event)
            case _:
                raise TypeError(f"unsupported event {type(event).__name__}")
        return changed

    def set_registry(self, record: EstablishmentRecord | None) -> None:
        """Contributions are monthly: a new window or new flags change only the rows."""
        if record is not None and record.finess != self.finess:
            raise ValueError(f"registry entry for {record.finess} given to {self.finess}")
        if record != self.registry:
            self.registry = record
            self._derived = None

    # A changed fact recomputes only the units it reaches (processors.reach), judged on its
    # facts before and after. An unchanged one (a duplicate, or a replay after a crash that
    # kept the fact but maybe not what derives from it) derives again every unit of its
    # patient and chain, as the full path would: the facts before the lost write are gone.

    def _change_stay(
        self, stay_id: str, merge: Callable[[StayFacts], bool], messages: bool = False
    ) -> bool:
        """`messages`: the merge adds a citizen message, which only the stay's DS 4.2 and
        latest day read."""
        known = self.state.stay(stay_id)
        stay = known or StayFacts(stay_id)
        before = stay.version.patient_id if stay.version else None
        reach_before = stay_reach(known)
        changed = merge(stay)
        if not changed and known is None:
            return False  # nothing stored, nothing derived
        if changed:
            self.state.put(kinds.STAY, stay_id, stay)
        after = stay.version.patient_id if stay.version else None
        if before is not None and before != after:
            self.state.discard_id(kinds.STAYS_OF_PATIENT, before, stay_id)
        if after is not None:
            self.state.add_id(kinds.STAYS_OF_PATIENT, after, stay_id)  # idempotent
        if changed and messages:
            self._update_stay(stay, messages=True)
        elif changed:
            self._refresh_reached_by_stay(stay, reach_before, stay_reach(stay))
        else:
            self._refresh_stays({stay_id}, {before, after})
        return changed

    def _change_document(self, document_id: str, merge: Callable[[DocumentFacts], bool]) -> bool:
        state = self.state
        known = state.document(document_id)
        doc = known or DocumentFacts(document_id)
        before = _NO_LINKS if known is None else _links(doc)
        reach_before = document_reach(known)
        changed = merge(doc)
        if not changed and known is None:
            return False
        if changed:
            state.put(kinds.DOCUMENT, document_id, doc)
        after = _links(doc)
        if before != after and known is not None:  # a new document was indexed by nothing
            self._index_document(document_id, before, add=False)
        self._index_document(document_id, after, add=True)  # idempotent
        replaces = after[2]
        if before[2] is None and replaces is None and not state.ids(kinds.REPLACED_BY, document_id):
            # The usual case: one version, linked to none (`chain` is itself alone), whose
            # unit `_refresh_report` derives from the facts in hand.
            chains = {document_id}
            self._set_contribution(kinds.REPORT_UNIT, document_id, report_contribution([doc], self))
        else:
            chains = self._refresh_reports({document_id, before[2], replaces})
        if changed:
            # Its standing changed, and that of the documents it replaces (before, after).
            # A list, not a set: hashing a reach hashes its deposit's every field, and a
            # reach read twice only recomputes the same units twice over (same result).
            reaches = [reach_before, document_reach(doc)]
            for replaced in {before[2], after[2]}:
                if replaced:
                    reaches.append(document_reach(self.state.document(replaced)))
            self._refresh_reached_by_documents(reaches)
        else:
            stays, patients = set(), set()
            for chained in chains:
                chained_doc = self.state.document(chained)
                if chained_doc is not None:
                    stays.add(chained_doc.stay_id)
                    patients.add(chained_doc.patient_id)
            self._refresh_stays(stays | {before[0], after[0]}, patients | {before[1], after[1]})
        return changed

    def _apply_message(self, event: MssSent) -> bool:
        if event.channel == "citoyenne":
            if event.stay_id is None:
                return False  # not linked to a stay: DS 4.2 cannot use it
            return self._change_stay(
                event.stay_id,
                lambda s: s.merge_citizen_message(event.message_id, event.sent_at),
                messages=True,
            )
        # Messages without a qualifying attachment count for nobody; kept to explain DS 4.1.
        qualifying = qualifying_pro_message(event)
        known = self.state.recipient(event.recipient)
        recipient = known or RecipientFacts(event.recipient)
        changed = recipient.merge_message(event.message_id, event.sent_at, qualifying)
        if not changed and known is None:
            return False
        if changed:
            self.state.put(kinds.RECIPIENT, recipient.rpps, recipient)
        self._set_contribution(
            kinds.CORRESPONDENT_UNIT,
            recipient.rpps,
            recipient_contribution(recipient, self.settings),
        )
        return changed

    # --- indexes and contributions -------------------------------------------------------------

    def _index_document(self, document_id: str, links: Links, add: bool) -> None:
        """Index a document by its links (`add`), or take it out of them. A flag rather than
        the state's bound method: compiled, a direct call."""
        stay_id, patient_id, replaces = links
        _change_id(self.state, kinds.DOCS_OF_STAY, stay_id, document_id, add)
        _change_id(self.state, kinds.DOCS_OF_PATIENT, patient_id, document_id, add)
        _change_id(self.state, kinds.REPLACED_BY, replaces, document_id, add)

    def _refresh_reports(self, document_ids: set[str | None]) -> set[str]:
        """Recompute the report chains of these documents (DS 2.1/3.1); their documents."""
        done: set[str] = set()
        for document_id in document_ids:
            if document_id is None or document_id in done:
                continue
            chain = self.chain(document_id)
            done |= chain
            self._refresh_report(chain)
        return done

    def _refresh_reached_by_stay(
        self, stay: StayFacts, before: StayVersion | None, after: StayVersion | None
    ) -> None:
        """The stay (stored: changed, it was just put), and the patient's stays that read it
        as an earlier stay (rule 6): of those, only whether they are in DS 1.4."""
        stay_id = stay.stay_id
        self._set_contribution(kinds.STAY_UNIT, stay_id, stay_contribution(stay, self))
        if before == after:  # the other stays read the same of it
            return
        lookback_days = self.settings.lookback_days
        done = {stay_id}
        for earlier in (before, after):
            if earlier is None:
                continue
            for other in self.stays_of_patient(earlier.patient_id):
                version = other.version
                if (
                    other.stay_id not in done
                    and version is not None
                    and reaches_later_stay(earlier, version, lookback_days)
                ):
                    done.add(other.stay_id)
                    self._update_stay(other, returning=True)

    def _refresh_reached_by_documents(self, reaches: list[DocumentReach]) -> None:
        """The stays these documents count for, or counted for before the change: of those,
        the indicators of the documents' types, and DS 1.4's outcome where they are history."""
        types: dict[str, set[str]] = {}  # stay → the type codes it reads that changed
        history: list[DocumentReach] = []
        for reach in reaches:
            if reach.stay_id is not None and reach.type_code is not None:
                types.setdefault(reach.stay_id, set()).add(reach.type_code)
            if reach.history is not None:
                history.append(reach)
        if not history:  # the usual case: no history deposit before or after
            for stay_id, codes in types.items():
                target = self.state.stay(stay_id)
                if target is not None:
                    self._update_stay(target, frozenset(codes))
            return
        by_history: dict[str, StayFacts] = {}
        for patient in {reach.history.patient_id for reach in history if reach.history}:
            for stay in self.stays_of_patient(patient):
                version = stay.version
                if version is not None:
                    for reach in history:  # a loop, not any(): one or two, per stay
                        if reach.reaches_by_history(version):
                            by_history[stay.stay_id] = stay
                            break
        for stay_id, codes in types.items():
            found = by_history.pop(stay_id, None)
            target = found or self.state.stay(stay_id)
            if target is not None:
                self._update_stay(target, frozenset(codes), history=found is not None)
        for target in by_history.values():
            self._update_stay(target, history=True)

    def _update_stay(
        self,
        stay: StayFacts,
        type_codes: frozenset[str] = frozenset(),
        history: bool = False,
        returning: bool = False,
        messages: bool = False,
    ) -> None:
        """Derive again the part of a stay's contribution that a change reaches."""
        stored = self.state.contribution(kinds.STAY_UNIT, stay.stay_id)
        new = stay_contribution_update(stay, stored, self, type_codes, history, returning, messages)
        self._set_contribution(kinds.STAY_UNIT, stay.stay_id, new, stored)

    def _refresh_stays(self, stay_ids: set[str | None], patients: set[str | None]) -> None:
        targets = {stay_id for stay_id in stay_ids if stay_id is not None}
        for patient in patients:
            if patient is not None:
                targets |= self.state.ids(kinds.STAYS_OF_PATIENT, patient)
        for stay_id in targets:
            stay = self.state.stay(stay_id)
            if stay is not None:
                self._set_contribution(kinds.STAY_UNIT, stay_id, stay_contribution(stay, self))

    def chain(self, document_id: str) -> set[str]:
        """All versions of a document: linked through `replaces`, in both directions."""
        doc = self.state.document(document_id)
        if (doc is None or doc.deposit is None or not doc.deposit.replaces) and not (
            self.state.ids(kinds.REPLACED_BY, document_id)
        ):
            return {document_id}  # the usual case: one version, linked to none
        seen: set[str] = set()
        pending = [document_id]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            doc = self.state.document(current)
            if doc is not None and doc.deposit is not None and doc.deposit.replaces:
                pending.append(doc.deposit.replaces)
            pending.extend(self.replacements(current))
        return seen

    def _refresh_report(self, chain: set[str]) -> None:
        # A chain is one unit, keyed by its smallest id; that key may change as it grows.
        if len(chain) == 1:  # the usual case: one version, its own unit, no other to empty
            (unit,) = chain
            doc = self.state.document(unit)
            new = {} if doc is None else report_contribution([doc], self)
            self._set_contribution(kinds.REPORT_UNIT, unit, new)
            return
        docs = [doc for doc in map(self.state.document, sorted(chain)) if doc is not None]
        new = report_contribution(docs, self)
        unit = min(chain)
        for document_id in chain:
            if document_id != unit:
                self._set_contribution(kinds.REPORT_UNIT, document_id, {})
        self._set_contribution(kinds.REPORT_UNIT, unit, new)

    def _set_contribution(
        self, unit_kind: str, ident: str, new: Contribution, old: Contribution | None = None
    ) -> None:
        """`old`: the unit's stored contribution, when the caller read it already."""
        if old is None:
            old = self.state.contribution(unit_kind, ident)
        if old == new:
            return  # the usual case when a neighbour's event is recomputed: nothing moves
        self._derived = None
        self.aggregates.replace(old, new)
        self.state.put(unit_kind, ident, new)

    # --- restart and full recomputation ---------------------------------------------------------

    def load_contribution(self, contribution: Contribution) -> None:
        """Add a stored unit's contribution to the aggregates (restart: no fact is read)."""
        self._derived = None
        self.aggregates.add(contribution)

    def recompute(self) -> int:
        """Derive every contribution again from the stored facts alone, at once (the tests:
        incremental == full). Returns the units derived."""
        return exhaust(self.recomputation(None))

    def recomputation(self, step: int | None) -> Generator[int, None, int]:
        """Derive every contribution again from the stored facts, `step` units at a time (a
        worker whose counting settings or state version differ from the stored ones:
        processors.fingerprint). Only the units that change are written, and the aggregates
        move by the difference: what they hold beside the units stays.

        Yields the units derived so far after each `step` of them; returns them all. Between two steps events may be applied: they derive the units they touch under
        these settings already, so each fact is read again at its turn, never from a snapshot.
        """
        self._derived = None
        done = 0

        def counted() -> bool:  # True when a step is complete
            nonlocal done
            done += 1
            return step is not None and done % step == 0

        for stay_id in self.state.idents(kinds.STAY):
            stay = self.state.stay(stay_id)
            if stay is not None:
                self._set_contribution(kinds.STAY_UNIT, stay_id, stay_contribution(stay, self))
                if counted():
                    yield done
        chained: set[str] = set()
        for document_id in self.state.idents(kinds.DOCUMENT):
            if document_id not in chained and self.state.document(document_id) is not None:
                chain = self.chain(document_id)
                chained |= chain
                self._refresh_report(chain)
                if counted():
                    yield done
        for rpps in self.state.idents(kinds.RECIPIENT):
            recipient = self.state.recipient(rpps)
            if recipient is not None:
                contribution = recipient_contribution(recipient, self.settings)
                self._set_contribution(kinds.CORRESPONDENT_UNIT, rpps, contribution)
                if counted():
                    yield done
        for kind in kinds.UNIT_KINDS:  # a unit no fact derives any more (a lost write)
            for ident in self.state.idents(kind):
                if not self._derives(kind, ident):
                    self._set_contribution(kind, ident, {})
        return done

    def _derives(self, unit_kind: str, ident: str) -> bool:
        """Whether a stored fact derives this unit."""
        if unit_kind == kinds.STAY_UNIT:
            return self.state.stay(ident) is not None
        if unit_kind == kinds.CORRESPONDENT_UNIT:
            return self.state.recipient(ident) is not None
        chain = self.chain(ident)  # a chain's smallest id may name no stored document
        return min(chain) == ident and any(self.state.document(d) is not None for d in chain)

    def meta(self) -> StateMeta | None:
        """What the stored entries were computed with; None for a store older than that."""
        value: StateMeta | None = self.state.get(kinds.META, kinds.META_ID)
        return value

    def stamp(self) -> None:
        """Record that the stored entries are computed with this establishment's settings."""
        current = StateMeta.current(self.settings)
        if self.meta() != current:
            self.state.put(kinds.META, kinds.META_ID, current)

    # --- figures ---------------------------------------------------------------------------

    @property
    def watermark(self) -> date | None:
        """The Paris day of the latest current discharge (the metrics' former "now")."""
        return self._derive().watermark

    @property
    def watermark_moment(self) -> float | None:
        """The watermark as a timestamp: the start of that Paris day."""
        day = self.watermark
        return None if day is None else paris_midnight(day).timestamp()

    @property
    def now(self) -> date | None:
        """The establishment's "now": the latest Paris day of any of its facts — a discharge,
        a production, a deposit, an MSS message (docs/indicators.md). Pending vs missed."""
        return self._derive().now

    def rows(self) -> list[IndicatorRow]:
        """Every (indicator, period) with a denominator above 0 (rule 10); computed once per
        change of the state, however often /metrics and /indicators read it."""
        return list(self._derive().rows)

    def unit_counts(self) -> list[UnitCount]:
        """Units of every row by status and reason, read from the aggregates (no store
        scan); computed once per change of the state."""
        derived = self._derive()
        if derived.unit_counts is None:
            derived.unit_counts = establishment_unit_counts(
                self.finess, self.aggregates, derived.rows, self.window(), derived.now,
                self.settings,
            )  # fmt: skip
        return list(derived.unit_counts)

    def units(self, indicator: str, period: str) -> list[Unit]:
        """Every unit of one row, counted or not, with its reason (scans the store)."""
        return establishment_units(self, indicator, period)

    def figures_version(self) -> object:
        """The same object while the figures stay the same (until the state or the registry
        entry changes): what a reader caching things computed from them compares with `is`."""
        return self._derive()

    def window(self) -> Window | None:
        if self.registry is None:
            return None
        return self.calendar.window_for(self.registry.window, self.registry.postponed)

    def _derive(self) -> Derived:
        if self._derived is None:
            aggregates = self.aggregates
            rows = establishment_rows(self.finess, aggregates, self.registry, self.calendar)
            now, watermark = aggregates.latest_event_day(), aggregates.latest_discharge_day()
            self._derived = Derived(rows, _day(now), _day(watermark))
        return self._derived


@dataclass(slots=True)
class Derived:
    """What the figures read from the aggregates, kept until they change."""

    rows: list[IndicatorRow]
    now: date | None
    watermark: date | None
    unit_counts: list[UnitCount] | None = None


def exhaust(steps: Generator[int, None, int]) -> int:
    """Run a recomputation to its end at once; what it returns."""
    while True:
        try:
            next(steps)
        except StopIteration as end:
            result: int = end.value
            return result


def _day(day: str | None) -> date | None:
    return None if day is None else date.fromisoformat(day)


_NO_LINKS: Final[Links] = (None, None, None)  # what a document not yet stored is indexed by


def _change_id(
    state: EstablishmentState, index: str, key: str | None, ident: str, add: bool
) -> None:
    if key is not None:
        if add:
            state.add_id(index, key, ident)
        else:
            state.discard_id(index, key, ident)


def _links(doc: DocumentFacts) -> Links:
    """What a document is indexed by: its stay, its patient, the id it replaces (its
    deposit's when deposited, else its production's: DocumentFacts' properties, read once)."""
    deposit = doc.deposit
    if deposit is not None:
        return deposit.stay_id, deposit.patient_id, deposit.replaces
    production = doc.production
    if production is not None:
        return production.stay_id, production.patient_id, None
    return _NO_LINKS
