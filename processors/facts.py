"""What is known of each entity of an establishment: the facts, merged from events.

These are the truth that the stream keeps in its store (one entry per entity: a stay, a
document, an MSS Pro recipient; processors.codec gives their bytes) and that the batch report
rebuilds from a file.
Merging is order-independent and idempotent: the same set of events, in any order and with
any duplicates, gives the same facts. Everything else (indexes, aggregates) derives from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from processors.frozen import checked_frozen
from processors.periods import paris_date
from topics.records import (
    QUALIFIED_INS,
    DocumentDeposited,
    DocumentDepositFailed,
    DocumentProduced,
    StayDischarged,
)


@checked_frozen
class StayVersion:
    """One `stay.discharged`: the stay as its producer knew it at `occurred_at`."""

    event_id: str
    occurred_at: datetime
    patient_id: str
    admitted_at: datetime
    discharged_at: datetime
    stay_kind: str
    ins_status: str
    surgical: bool
    deceased: bool
    dmp_opposition: bool
    # (RPPS, MSSanté address or None)
    correspondents: tuple[tuple[str, str | None], ...]
    # Paris calendar days, derived once: the rules compare them on every recomputation.
    discharge_day: date = field(init=False, compare=False)
    admission_day: date = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "discharge_day", paris_date(self.discharged_at))
        object.__setattr__(self, "admission_day", paris_date(self.admitted_at))

    @classmethod
    def from_event(cls, event: StayDischarged) -> StayVersion:
        return cls(
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            patient_id=event.patient_id,
            admitted_at=event.admitted_at,
            discharged_at=event.discharged_at,
            stay_kind=event.stay_kind,
            ins_status=event.ins_status,
            surgical=event.surgical,
            deceased=event.deceased,
            dmp_opposition=event.dmp_opposition,
            correspondents=tuple((c.rpps, c.mss_address) for c in event.correspondents),
        )


def _later(a_at: datetime, a_id: str, b_at: datetime, b_id: str) -> bool:
    """Is (a_at, a_id) after (b_at, b_id)? The event id breaks ties so order never matters."""
    return (a_at, a_id) > (b_at, b_id)


@dataclass(slots=True)
class StayFacts:
    stay_id: str
    version: StayVersion | None = None  # the latest stay.discharged (rule 3)
    cancelled_at: datetime | None = None  # the latest stay.discharge_cancelled
    cancel_event_id: str = ""
    # MSS citoyenne messages naming the stay: message_id → sent_at (rule 9)
    citizen_messages: dict[str, datetime] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Discharged and not cancelled by a later cancellation (rule 3)."""
        if self.version is None:
            return False
        return self.cancelled_at is None or self.cancelled_at <= self.version.occurred_at

    def merge_discharge(self, event: StayDischarged) -> bool:
        current = self.version
        if current is None or _later(
            event.occurred_at, event.event_id, current.occurred_at, current.event_id
        ):
            self.version = StayVersion.from_event(event)
            return True
        return False

    def merge_cancellation(self, occurred_at: datetime, event_id: str) -> bool:
        if self.cancelled_at is None or _later(
            occurred_at, event_id, self.cancelled_at, self.cancel_event_id
        ):
            self.cancelled_at, self.cancel_event_id = occurred_at, event_id
            return True
        return False

    def merge_citizen_message(self, message_id: str, sent_at: datetime) -> bool:
        if message_id in self.citizen_messages:
            return False
        self.citizen_messages[message_id] = sent_at
        return True


@checked_frozen
class Production:
    """A `document.produced`."""

    event_id: str
    occurred_at: datetime
    type_code: str
    patient_id: str
    stay_id: str | None
    produced_at: datetime

    produced_day: date = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "produced_day", paris_date(self.produced_at))


@checked_frozen
class Deposit:
    """A `document.deposited`: the DMP acknowledged it."""

    event_id: str
    occurred_at: datetime
    type_code: str
    patient_id: str
    stay_id: str | None
    cda_level: int
    ins_status: str
    produced_at: datetime
    deposited_at: datetime
    replaces: str | None

    deposited_day: date = field(init=False, compare=False)
    produced_day: date = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "deposited_day", paris_date(self.deposited_at))
        object.__setattr__(self, "produced_day", paris_date(self.produced_at))

    @property
    def qualified(self) -> bool:
        """CDA-R2 level 1 or 3 and a qualified INS when sent."""
        return self.cda_level in (1, 3) and self.ins_status == QUALIFIED_INS


@dataclass(frozen=True, slots=True)
class Failure:
    """A `document.deposit_failed`: the DMP refused the deposit. It changes no rate (rule 4);
    kept to explain a unit that is not counted."""

    event_id: str
    occurred_at: datetime
    reason: str  # the DMP's, e.g. DMPClosed


@dataclass(slots=True)
class DocumentFacts:
    document_id: str
    production: Production | None = None
    deposit: Deposit | None = None  # the latest acknowledged deposit of this id
    # When a document.deleted was seen (the earliest, if several), in any order (rule 4).
    deleted_at: datetime | None = None
    failure: Failure | None = None  # the latest document.deposit_failed of this id

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def known(self) -> bool:
        return self.production is not None or self.deposit is not None

    @property
    def type_code(self) -> str | None:
        source = self.deposit or self.production
        return source.type_code if source else None

    @property
    def patient_id(self) -> str | None:
        source = self.deposit or self.production
        return source.patient_id if source else None

    @property
    def stay_id(self) -> str | None:
        source = self.deposit or self.production
        return source.stay_id if source else None

    @property
    def produced_at(self) -> datetime | None:
        # The deposit carries the production date the DMP received; prefer it.
        source = self.deposit or self.production
        return source.produced_at if source else None

    @property
    def produced_day(self) -> date | None:
        """The Paris day of `produced_at`."""
        source = self.deposit or self.production
        return source.produced_day if source else None

    def merge_production(self, event: DocumentProduced) -> bool:
        current = self.production
        if current is None or _later(
            event.occurred_at, event.event_id, current.occurred_at, current.event_id
        ):
            self.production = Production(
                event.event_id,
                event.occurred_at,
                event.type_code,
                event.patient_id,
                event.stay_id,
                event.produced_at,
            )
            return True
        return False

    def merge_deposit(self, event: DocumentDeposited) -> bool:
        current = self.deposit
        if current is None or _later(
            event.occurred_at, event.event_id, current.occurred_at, current.event_id
        ):
            self.deposit = Deposit(
                event.event_id,
                event.occurred_at,
                event.type_code,
                event.patient_id,
                event.stay_id,
                event.cda_level,
                event.ins_status,
                event.produced_at,
                event.deposited_at,
                event.replaces,
            )
            return True
        return False

    def merge_deletion(self, occurred_at: datetime) -> bool:
        if self.deleted_at is not None and self.deleted_at <= occurred_at:
            return False
        self.deleted_at = occurred_at
        return True

    def merge_failure(self, event: DocumentDepositFailed) -> bool:
        current = self.failure
        if current is None or _later(
            event.occurred_at, event.event_id, current.occurred_at, current.event_id
        ):
            self.failure = Failure(event.event_id, event.occurred_at, event.reason)
            return True
        return False

    def days(self) -> list[date]:
        """The Paris days of its production and deposit: what `now` is read from."""
        found = []
        if self.production is not None:
            found.append(self.production.produced_day)
        if self.deposit is not None:
            found += [self.deposit.produced_day, self.deposit.deposited_day]
        return found


@dataclass(slots=True)
class RecipientFacts:
    """MSS Pro messages to one correspondent (RPPS): those that carry a qualifying CDA-R2
    document (rule 8), and the others (they only explain a correspondent not reached)."""

    rpps: str
    # message_id → sent day (Europe/Paris): all DS 4.1 needs (rule 8)
    qualifying_messages: dict[str, date] = field(default_factory=dict)
    other_messages: dict[str, date] = field(default_factory=dict)

    def merge_message(self, message_id: str, sent_at: datetime, qualifying: bool = True) -> bool:
        if message_id in self.qualifying_messages or message_id in self.other_messages:
            return False
        kept = self.qualifying_messages if qualifying else self.other_messages
        kept[message_id] = paris_date(sent_at)
        return True
