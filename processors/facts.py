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
from typing import Final

from processors.periods import paris_date
from processors.values import Value
from topics.records import (
    QUALIFIED_INS,
    DocumentDeposited,
    DocumentDepositFailed,
    DocumentProduced,
    StayDischarged,
)

# each version's fields, in order (Value.FIELDS)
_STAY_VERSION_FIELDS = (
    "event_id", "occurred_at", "patient_id", "admitted_at", "discharged_at", "stay_kind",
    "ins_status", "surgical", "deceased", "dmp_opposition", "correspondents",
)  # fmt: skip
_PRODUCTION_FIELDS = (
    "event_id", "occurred_at", "type_code", "patient_id", "stay_id", "produced_at",
)  # fmt: skip
_DEPOSIT_FIELDS = (
    "event_id", "occurred_at", "type_code", "patient_id", "stay_id", "cda_level", "ins_status",
    "produced_at", "deposited_at", "replaces",
)  # fmt: skip
_FAILURE_FIELDS = ("event_id", "occurred_at", "reason")


class StayVersion(Value):
    """One `stay.discharged`: the stay as its producer knew it at `occurred_at`."""

    __slots__ = (*_STAY_VERSION_FIELDS, "_discharge_day", "_admission_day")
    FIELDS = _STAY_VERSION_FIELDS
    event_id: Final[str]
    occurred_at: Final[datetime]
    patient_id: Final[str]
    admitted_at: Final[datetime]
    discharged_at: Final[datetime]
    stay_kind: Final[str]
    ins_status: Final[str]
    surgical: Final[bool]
    deceased: Final[bool]
    dmp_opposition: Final[bool]
    # (RPPS, MSSanté address or None)
    correspondents: Final[tuple[tuple[str, str | None], ...]]
    # Paris calendar days (the properties below), derived on first read and kept: the rules
    # compare them on every recomputation, but an entry decoded may never be asked (a tz
    # conversion is ~4k instructions compiled). Set by nothing else: not fields, left out of eq.
    _discharge_day: date | None
    _admission_day: date | None

    def __init__(
        self,
        event_id: str,
        occurred_at: datetime,
        patient_id: str,
        admitted_at: datetime,
        discharged_at: datetime,
        stay_kind: str,
        ins_status: str,
        surgical: bool,
        deceased: bool,
        dmp_opposition: bool,
        correspondents: tuple[tuple[str, str | None], ...],
    ) -> None:
        self.event_id = event_id
        self.occurred_at = occurred_at
        self.patient_id = patient_id
        self.admitted_at = admitted_at
        self.discharged_at = discharged_at
        self.stay_kind = stay_kind
        self.ins_status = ins_status
        self.surgical = surgical
        self.deceased = deceased
        self.dmp_opposition = dmp_opposition
        self.correspondents = correspondents
        self._discharge_day = self._admission_day = None

    def _fields(self) -> tuple[object, ...]:
        return (
            self.event_id, self.occurred_at, self.patient_id, self.admitted_at,
            self.discharged_at, self.stay_kind, self.ins_status, self.surgical, self.deceased,
            self.dmp_opposition, self.correspondents,
        )  # fmt: skip

    @property
    def discharge_day(self) -> date:
        """The Paris day of `discharged_at`."""
        day = self._discharge_day
        if day is None:
            day = self._discharge_day = paris_date(self.discharged_at)
        return day

    @property
    def admission_day(self) -> date:
        """The Paris day of `admitted_at`."""
        day = self._admission_day
        if day is None:
            day = self._admission_day = paris_date(self.admitted_at)
        return day

    @classmethod
    def from_event(cls, event: StayDischarged) -> StayVersion:
        return cls(
            event.event_id,
            event.occurred_at,
            event.patient_id,
            event.admitted_at,
            event.discharged_at,
            event.stay_kind,
            event.ins_status,
            event.surgical,
            event.deceased,
            event.dmp_opposition,
            tuple((c.rpps, c.mss_address) for c in event.correspondents),
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

    # Written out: mypyc compiles it (the dataclass's generated one would be interpreted).
    def __init__(
        self,
        stay_id: str,
        version: StayVersion | None = None,
        cancelled_at: datetime | None = None,
        cancel_event_id: str = "",
        citizen_messages: dict[str, datetime] | None = None,
    ) -> None:
        self.stay_id = stay_id
        self.version = version
        self.cancelled_at = cancelled_at
        self.cancel_event_id = cancel_event_id
        self.citizen_messages = {} if citizen_messages is None else citizen_messages

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


class Production(Value):
    """A `document.produced`."""

    __slots__ = (*_PRODUCTION_FIELDS, "_produced_day")
    FIELDS = _PRODUCTION_FIELDS
    event_id: Final[str]
    occurred_at: Final[datetime]
    type_code: Final[str]
    patient_id: Final[str]
    stay_id: Final[str | None]
    produced_at: Final[datetime]
    _produced_day: date | None  # derived on first read, as StayVersion's days

    def __init__(
        self,
        event_id: str,
        occurred_at: datetime,
        type_code: str,
        patient_id: str,
        stay_id: str | None,
        produced_at: datetime,
    ) -> None:
        self.event_id = event_id
        self.occurred_at = occurred_at
        self.type_code = type_code
        self.patient_id = patient_id
        self.stay_id = stay_id
        self.produced_at = produced_at
        self._produced_day = None

    def _fields(self) -> tuple[object, ...]:
        return (
            self.event_id, self.occurred_at, self.type_code, self.patient_id, self.stay_id,
            self.produced_at,
        )  # fmt: skip

    @property
    def produced_day(self) -> date:
        """The Paris day of `produced_at`."""
        day = self._produced_day
        if day is None:
            day = self._produced_day = paris_date(self.produced_at)
        return day


class Deposit(Value):
    """A `document.deposited`: the DMP acknowledged it."""

    __slots__ = (*_DEPOSIT_FIELDS, "_deposited_day", "_produced_day")
    FIELDS = _DEPOSIT_FIELDS
    event_id: Final[str]
    occurred_at: Final[datetime]
    type_code: Final[str]
    patient_id: Final[str]
    stay_id: Final[str | None]
    cda_level: Final[int]
    ins_status: Final[str]
    produced_at: Final[datetime]
    deposited_at: Final[datetime]
    replaces: Final[str | None]
    _deposited_day: date | None  # derived on first read, as StayVersion's days
    _produced_day: date | None

    def __init__(
        self,
        event_id: str,
        occurred_at: datetime,
        type_code: str,
        patient_id: str,
        stay_id: str | None,
        cda_level: int,
        ins_status: str,
        produced_at: datetime,
        deposited_at: datetime,
        replaces: str | None,
    ) -> None:
        self.event_id = event_id
        self.occurred_at = occurred_at
        self.type_code = type_code
        self.patient_id = patient_id
        self.stay_id = stay_id
        self.cda_level = cda_level
        self.ins_status = ins_status
        self.produced_at = produced_at
        self.deposited_at = deposited_at
        self.replaces = replaces
        self._deposited_day = self._produced_day = None

    def _fields(self) -> tuple[object, ...]:
        return (
            self.event_id, self.occurred_at, self.type_code, self.patient_id, self.stay_id,
            self.cda_level, self.ins_status, self.produced_at, self.deposited_at, self.replaces,
        )  # fmt: skip

    @property
    def deposited_day(self) -> date:
        """The Paris day of `deposited_at`."""
        day = self._deposited_day
        if day is None:
            day = self._deposited_day = paris_date(self.deposited_at)
        return day

    @property
    def produced_day(self) -> date:
        """The Paris day of `produced_at`."""
        day = self._produced_day
        if day is None:
            day = self._produced_day = paris_date(self.produced_at)
        return day

    @property
    def qualified(self) -> bool:
        """CDA-R2 level 1 or 3 and a qualified INS when sent."""
        return self.cda_level in (1, 3) and self.ins_status == QUALIFIED_INS


class Failure(Value):
    """A `document.deposit_failed`: the DMP refused the deposit. It changes no rate (rule 4);
    kept to explain a unit that is not counted."""

    __slots__ = _FAILURE_FIELDS
    FIELDS = _FAILURE_FIELDS
    event_id: Final[str]
    occurred_at: Final[datetime]
    reason: Final[str]  # the DMP's, e.g. DMPClosed

    def __init__(self, event_id: str, occurred_at: datetime, reason: str) -> None:
        self.event_id = event_id
        self.occurred_at = occurred_at
        self.reason = reason

    def _fields(self) -> tuple[object, ...]:
        return (self.event_id, self.occurred_at, self.reason)


@dataclass(slots=True)
class DocumentFacts:
    document_id: str
    production: Production | None = None
    deposit: Deposit | None = None  # the latest acknowledged deposit of this id
    # When a document.deleted was seen (the earliest, if several), in any order (rule 4).
    deleted_at: datetime | None = None
    failure: Failure | None = None  # the latest document.deposit_failed of this id

    def __init__(  # written out, as StayFacts'
        self,
        document_id: str,
        production: Production | None = None,
        deposit: Deposit | None = None,
        deleted_at: datetime | None = None,
        failure: Failure | None = None,
    ) -> None:
        self.document_id = document_id
        self.production = production
        self.deposit = deposit
        self.deleted_at = deleted_at
        self.failure = failure

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

    def __init__(  # written out, as StayFacts'
        self,
        rpps: str,
        qualifying_messages: dict[str, date] | None = None,
        other_messages: dict[str, date] | None = None,
    ) -> None:
        self.rpps = rpps
        self.qualifying_messages = {} if qualifying_messages is None else qualifying_messages
        self.other_messages = {} if other_messages is None else other_messages

    def merge_message(self, message_id: str, sent_at: datetime, qualifying: bool = True) -> bool:
        if message_id in self.qualifying_messages or message_id in self.other_messages:
            return False
        kept = self.qualifying_messages if qualifying else self.other_messages
        kept[message_id] = paris_date(sent_at)
        return True
