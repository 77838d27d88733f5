"""Purge: the facts no accepted event can reach any more leave the store; their figures stay.

The clock is the worker's (the latest Kafka record timestamp it has seen, never an event
date). At clock T the refusal horizon is H = T - retention_days: every event accepted from
then on has all its timestamps at or after H (processors.retention; the establishment stage
refuses, as `too_late`, an event with a timestamp before the horizon of its establishment's
last purge, whatever its record timestamp). A fact is purged when every date it holds is
before the *purge cutoff* C = H - (lookback_days + grace_days + 32 days), and so is every
fact linked to it:

- a *group* is what one unit's rules can read, closed under the links: a patient's stays
  and documents (DS 1.4 reads the patient's earlier stays and history documents), the
  documents naming a stay, the versions of a document (`replaces`, both ways). A group is
  purged whole or not at all, so no remaining unit ever read a purged fact;
- an event accepted later (dates >= H) that names the group's patient cannot make a purged
  stay count for DS 1.4 (discharged more than lookback_days before any admission >= H), nor
  a purged document a history deposit (deposited before any such admission); and it changes
  no purged unit (their stays were admitted, their documents produced, before it);
- MSS Pro recipients lose their messages sent before C, message by message: such a message
  reaches months that end, grace included, before H, so no later message reaches them.

What a purged unit contributed moves to an *archived* entry per month (`FINESS|ua|YYYY-MM`),
written with the deletions (through a journal: processors.collection, `purge`), read back at
every recovery: the aggregates, hence every figure, are unchanged by construction (sum of
units + archive). The archive holds
counts by month, indicator, reason and day, and DS 4.1's correspondents (RPPS: professionals)
— no patient, stay or document identifier.

An event that names a purged stay or document with only recent timestamps (a cancellation
or deletion arriving more than the whole margin after the facts, a replacement of a purged
document) finds nothing to change: the archived months stay as they were (docs/indicators.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from processors import state as kinds
from processors.aggregates import (
    AggregateKey,
    Contribution,
    DischargeDay,
    EventDay,
)
from processors.codec import decode_journal, encode_journal
from processors.establishment import Establishment
from processors.facts import DocumentFacts, RecipientFacts, StayFacts
from processors.periods import month_key, paris_date
from processors.retention import timestamps_of
from processors.rules import recipient_contribution
from processors.settings import Settings
from topics.records import Event
from topics.validation import TOO_LATE, InvalidRecord

# Slack of the cutoff beyond lookback and grace: a month's end after a message (at most 31
# days) and a Paris calendar day either side of an instant.
MARGIN_SLACK_DAYS = 32


def refusal_horizon(clock: datetime, settings: Settings) -> datetime:
    """Events with a timestamp before this are refused at `clock` (processors.retention)."""
    return clock - timedelta(days=settings.retention_days)


def purge_cutoff(clock: datetime, settings: Settings) -> datetime:
    """Facts whose every date is before this (and their group's) are purged at `clock`."""
    margin = settings.lookback_days + settings.grace_days + MARGIN_SLACK_DAYS
    return refusal_horizon(clock, settings) - timedelta(days=margin)


def stay_dates(stay: StayFacts) -> list[datetime]:
    found = list(stay.citizen_messages.values())
    if stay.cancelled_at is not None:
        found.append(stay.cancelled_at)
    v = stay.version
    if v is not None:
        found += [v.occurred_at, v.admitted_at, v.discharged_at]
    return found


def document_dates(doc: DocumentFacts) -> list[datetime]:
    found = []
    if doc.production is not None:
        found += [doc.production.occurred_at, doc.production.produced_at]
    if doc.deposit is not None:
        d = doc.deposit
        found += [d.occurred_at, d.produced_at, d.deposited_at]
    if doc.deleted_at is not None:
        found.append(doc.deleted_at)
    if doc.failure is not None:
        found.append(doc.failure.occurred_at)
    return found


def refused_after_purge(event: Event, horizon: datetime | None) -> InvalidRecord | None:
    """Why `event` must not be counted: a timestamp before the refusal horizon of its
    establishment's last purge (it could name purged facts), whatever its record timestamp
    said; None when it may."""
    if horizon is None:
        return None
    field, earliest = min(timestamps_of(event), key=lambda item: item[1])
    if earliest >= horizon:
        return None
    return InvalidRecord(
        TOO_LATE,
        f"field '{field}': {earliest.isoformat()} (period {month_key(paris_date(earliest))}) "
        f"is before the horizon {paris_date(horizon).isoformat()} of this establishment's last "
        "purge: facts of that period have left the state, the event is not counted",
    )


def month_of(key: AggregateKey) -> str:
    """The month an aggregate key belongs to: the archive's entries are monthly."""
    if isinstance(key, DischargeDay | EventDay):
        return key.day[:7]
    return key.month


@dataclass
class Purged:
    """What one purge removed, by kind of entry (no identifier: counts only)."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    done: bool = True  # False: stopped at the chunk's limit, call again

    def add(self, kind: str, count: int = 1) -> None:
        self.counts[LABELS.get(kind, kind)] += count

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# What Purged counts, by kind of entry (a metric label: no identifier).
LABELS = {
    kinds.STAY: "stay",
    kinds.DOCUMENT: "document",
    kinds.RECIPIENT: "recipient",
    kinds.STAYS_OF_PATIENT: "index",
    kinds.DOCS_OF_PATIENT: "index",
    kinds.DOCS_OF_STAY: "index",
    kinds.REPLACED_BY: "index",
    kinds.STAY_UNIT: "unit",
    kinds.REPORT_UNIT: "unit",
    kinds.CORRESPONDENT_UNIT: "unit",
}
MESSAGE = "message"  # an MSS Pro message taken out of its recipient's entry

Node = tuple[str, str]  # (kinds.STAY | kinds.DOCUMENT | PATIENT, id)
PATIENT = "patient"


class Purger:
    """Purges one establishment's state at a clock, a bounded amount of work at a time: one
    pass over its stays, documents and recipients, resumed by each `run`."""

    def __init__(self, est: Establishment, clock: datetime) -> None:
        self.est = est
        self.state = est.state
        self.clock = clock
        self.horizon = refusal_horizon(clock, est.settings)
        self.cutoff = purge_cutoff(clock, est.settings)
        self.cutoff_day: date = paris_date(self.cutoff) - timedelta(days=1)
        self.archive: dict[str, Contribution] = {}
        self.result = Purged()
        self._seen: set[Node] = set()
        self._walk = self._steps()

    def run(self, limit: int) -> Purged:
        """Go on with the pass for about `limit` entries examined or purged (whole groups);
        what it purged, `done` False when the pass is not over. Writes stay in the state
        cache: flush after."""
        self.result = Purged(done=False)
        for examined, _ in enumerate(self._walk, start=1):
            if examined + self.result.total >= limit:
                return self._finish(self.result)
        self.result.done = True
        return self._finish(self.result)

    def _steps(self) -> Iterator[None]:
        """The pass, one step per entity examined (read lazily from the store)."""
        for kind in (kinds.STAY, kinds.DOCUMENT):
            dates = stay_dates if kind == kinds.STAY else document_dates
            for ident, facts in self.state.entries(kind):
                yield None
                node = (kind, ident)
                if node in self._seen or any(m >= self.cutoff for m in dates(facts)):
                    continue
                group = self._group(node)
                self._seen |= group
                if self._purgeable(group):
                    self._purge_group(group, self.result)
        for _rpps, recipient in self.state.entries(kinds.RECIPIENT):
            yield None
            self._purge_messages(recipient, self.result)

    def _group(self, start: Node) -> set[Node]:
        """Every entity the rules may read together with `start` (see the module doc)."""
        group: set[Node] = set()
        pending = [start]
        state = self.state
        while pending:
            node = pending.pop()
            if node in group:
                continue
            group.add(node)
            kind, ident = node
            if kind == PATIENT:
                pending += [(kinds.STAY, s) for s in state.ids(kinds.STAYS_OF_PATIENT, ident)]
                pending += [(kinds.DOCUMENT, d) for d in state.ids(kinds.DOCS_OF_PATIENT, ident)]
            elif kind == kinds.STAY:
                stay = state.stay(ident)
                if stay is not None and stay.version is not None:
                    pending.append((PATIENT, stay.version.patient_id))
                pending += [(kinds.DOCUMENT, d) for d in state.ids(kinds.DOCS_OF_STAY, ident)]
            else:
                pending += [(kinds.DOCUMENT, d) for d in state.ids(kinds.REPLACED_BY, ident)]
                doc = state.document(ident)
                if doc is not None:
                    if doc.stay_id is not None:
                        pending.append((kinds.STAY, doc.stay_id))
                    if doc.patient_id is not None:
                        pending.append((PATIENT, doc.patient_id))
                    if doc.deposit is not None and doc.deposit.replaces:
                        pending.append((kinds.DOCUMENT, doc.deposit.replaces))
        return group

    def _purgeable(self, group: set[Node]) -> bool:
        for kind, ident in group:
            if kind == kinds.STAY:
                stay = self.state.stay(ident)
                if stay is not None and any(m >= self.cutoff for m in stay_dates(stay)):
                    return False
            elif kind == kinds.DOCUMENT:
                doc = self.state.document(ident)
                if doc is not None and any(m >= self.cutoff for m in document_dates(doc)):
                    return False
        return True

    def _purge_group(self, group: set[Node], result: Purged) -> None:
        state = self.state
        for kind, ident in group:
            if kind == PATIENT:
                for index in (kinds.STAYS_OF_PATIENT, kinds.DOCS_OF_PATIENT):
                    if state.ids(index, ident):
                        state.put(index, ident, None)
                        result.add(index)
                continue
            unit_kind, index = (
                (kinds.STAY_UNIT, kinds.DOCS_OF_STAY)
                if kind == kinds.STAY
                else (kinds.REPORT_UNIT, kinds.REPLACED_BY)
            )
            if state.get(kind, ident) is not None:
                state.put(kind, ident, None)
                result.add(kind)
            if state.ids(index, ident):
                state.put(index, ident, None)
                result.add(index)
            contribution = state.contribution(unit_kind, ident)
            if contribution:
                self._fold(contribution)
                state.put(unit_kind, ident, None)
                result.add(unit_kind)

    def _purge_messages(self, recipient: RecipientFacts, result: Purged) -> None:
        old = [
            (kept, message_id)
            for kept in (recipient.qualifying_messages, recipient.other_messages)
            for message_id, day in kept.items()
            if day < self.cutoff_day
        ]
        if not old:
            return
        rpps = recipient.rpps
        before = self.state.contribution(kinds.CORRESPONDENT_UNIT, rpps)
        remaining = RecipientFacts(
            rpps, dict(recipient.qualifying_messages), dict(recipient.other_messages)
        )
        for kept, message_id in old:
            del (
                remaining.qualifying_messages
                if kept is recipient.qualifying_messages
                else remaining.other_messages
            )[message_id]
        after: Contribution = {}
        if remaining.qualifying_messages or remaining.other_messages:
            after = recipient_contribution(remaining, self.est.settings)
            self.state.put(kinds.RECIPIENT, rpps, remaining)
        else:
            self.state.put(kinds.RECIPIENT, rpps, None)
            result.add(kinds.RECIPIENT)
        result.add(MESSAGE, len(old))
        # The purged messages' keys: what the unit contributed and no longer does.
        self._fold({k: v - after.get(k, 0) for k, v in before.items() if v != after.get(k, 0)})
        self.state.put(kinds.CORRESPONDENT_UNIT, rpps, after)
        if not after:
            result.add(kinds.CORRESPONDENT_UNIT)

    def _fold(self, contribution: Contribution) -> None:
        for key, value in contribution.items():
            month = month_of(key)
            entry = self.archive.get(month)
            if entry is None:
                entry = dict(self.state.contribution(kinds.ARCHIVE, month))
                self.archive[month] = entry
            total = entry.get(key, 0) + value
            if total:
                entry[key] = total
            else:
                entry.pop(key, None)

    def _finish(self, result: Purged) -> Purged:
        for month, entry in self.archive.items():
            self.state.put(kinds.ARCHIVE, month, entry)
        self.archive.clear()
        if result.total:
            previous = self.est.purge_horizon
            if previous is None or previous < self.horizon:
                self.est.purge_horizon = self.horizon
                self.state.put(kinds.PURGE_HORIZON, "", self.horizon)
        return result


# A purge chunk's writes are stored first as a journal (processors.collection): parts of at
# most about this many bytes (a changelog record stays under Kafka's 1 MB), then a header
# that says how many parts; only a journal with its header and all its parts counts.
JOURNAL_PART_BYTES = 400_000

Write = tuple[str, str, bytes | None]  # (kind, id, value or None: deleted)


def journal_parts(writes: list[Write]) -> list[bytes]:
    parts: list[bytes] = []
    current: list[Write] = []
    size = 0
    for write in writes:
        weight = len(write[1]) + len(write[2] or b"") + 16
        if current and size + weight > JOURNAL_PART_BYTES:
            parts.append(encode_journal(current))
            current, size = [], 0
        current.append(write)
        size += weight
    if current:
        parts.append(encode_journal(current))
    return parts


def complete_journal(entries: dict[str, bytes]) -> list[Write] | None:
    """The writes of a journal (its entries by id: "" the header, "0", "1"… the parts), or
    None when it is not complete (a crash while it was written, or while it was deleted)."""
    header = entries.get("")
    if header is None:
        return None
    parts = [entries.get(str(i)) for i in range(int(header))]
    if any(part is None for part in parts):
        return None
    return [write for part in parts if part is not None for write in decode_journal(part)]
