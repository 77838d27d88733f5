"""The event contract v1 as records: one frozen dataclass per event type.

Each field is `Annotated[python type, field kind]`; `topics.validation` parses JSON into these
records and `topics.schema` writes the JSON Schemas from the same annotations. A field with a
dataclass default may be absent from the JSON.

Reasons never quote a wrong value of a `Text` field (identifiers, addresses, names) unless it
is declared `CODE`: a closed vocabulary (record type, LOINC type code, region, failure code).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, ClassVar

from topics.fields import Boolean, Choice, Display, Finess, IntChoice, ListOf, Text, Timestamp

STAY_KINDS = (
    "hospitalisation_complete",
    "hospitalisation_partielle",
    "had",
    "seance",
    "urgence",
    "consultation",
)
INS_STATUSES = ("provisoire", "recuperee", "validee", "qualifiee")
QUALIFIED_INS = "qualifiee"
CDA_LEVELS = (1, 3)
MSS_CHANNELS = ("pro", "citoyenne")
WINDOWS = ("F1", "F2", "F3", "F4")

# A text field whose values are codes of a closed vocabulary: a reason may quote a short one.
CODE = Text(display=Display.VOCABULARY)


@dataclass(frozen=True, slots=True)
class Correspondent:
    rpps: Annotated[str, Text()]
    mss_address: Annotated[str | None, Text(nullable=True)] = None


@dataclass(frozen=True, slots=True)
class Attachment:
    document_id: Annotated[str, Text()]
    type_code: Annotated[str, CODE]
    ins_status: Annotated[str, Choice(INS_STATUSES)]
    cda_level: Annotated[int | None, IntChoice(CDA_LEVELS, nullable=True)] = None


@dataclass(frozen=True, slots=True)
class Event:
    """Fields every event carries."""

    TYPE: ClassVar[str] = ""
    type: Annotated[str, CODE]
    event_id: Annotated[str, Text()]
    occurred_at: Annotated[datetime, Timestamp()]
    finess: Annotated[str, Finess()]


@dataclass(frozen=True, slots=True)
class StayDischarged(Event):
    TYPE: ClassVar[str] = "stay.discharged"
    stay_id: Annotated[str, Text()]
    patient_id: Annotated[str, Text()]
    admitted_at: Annotated[datetime, Timestamp()]
    discharged_at: Annotated[datetime, Timestamp()]
    stay_kind: Annotated[str, Choice(STAY_KINDS)]
    ins_status: Annotated[str, Choice(INS_STATUSES)]
    surgical: Annotated[bool, Boolean()] = False
    deceased: Annotated[bool, Boolean()] = False
    dmp_opposition: Annotated[bool, Boolean()] = False
    correspondents: Annotated[tuple[Correspondent, ...], ListOf(Correspondent)] = ()


@dataclass(frozen=True, slots=True)
class StayDischargeCancelled(Event):
    TYPE: ClassVar[str] = "stay.discharge_cancelled"
    stay_id: Annotated[str, Text()]


@dataclass(frozen=True, slots=True)
class DocumentProduced(Event):
    TYPE: ClassVar[str] = "document.produced"
    document_id: Annotated[str, Text()]
    type_code: Annotated[str, CODE]
    patient_id: Annotated[str, Text()]
    produced_at: Annotated[datetime, Timestamp()]
    stay_id: Annotated[str | None, Text(nullable=True)] = None


@dataclass(frozen=True, slots=True)
class DocumentDeposited(Event):
    TYPE: ClassVar[str] = "document.deposited"
    document_id: Annotated[str, Text()]
    type_code: Annotated[str, CODE]
    patient_id: Annotated[str, Text()]
    cda_level: Annotated[int, IntChoice(CDA_LEVELS)]
    ins_status: Annotated[str, Choice(INS_STATUSES)]
    produced_at: Annotated[datetime, Timestamp()]
    deposited_at: Annotated[datetime, Timestamp()]
    stay_id: Annotated[str | None, Text(nullable=True)] = None
    replaces: Annotated[str | None, Text(nullable=True)] = None


@dataclass(frozen=True, slots=True)
class DocumentDepositFailed(Event):
    TYPE: ClassVar[str] = "document.deposit_failed"
    document_id: Annotated[str, Text()]
    reason: Annotated[str, CODE]


@dataclass(frozen=True, slots=True)
class DocumentDeleted(Event):
    TYPE: ClassVar[str] = "document.deleted"
    document_id: Annotated[str, Text()]


@dataclass(frozen=True, slots=True)
class MssSent(Event):
    TYPE: ClassVar[str] = "mss.sent"
    message_id: Annotated[str, Text()]
    channel: Annotated[str, Choice(MSS_CHANNELS)]
    patient_id: Annotated[str, Text()]
    recipient: Annotated[str, Text()]
    sent_at: Annotated[datetime, Timestamp()]
    stay_id: Annotated[str | None, Text(nullable=True)] = None
    attachments: Annotated[tuple[Attachment, ...], ListOf(Attachment)] = ()


@dataclass(frozen=True, slots=True)
class EstablishmentRecord:
    """The registry entry of a FINESS géographique (compacted topic, key = FINESS)."""

    TYPE: ClassVar[str] = "establishment"
    type: Annotated[str, CODE]
    finess: Annotated[str, Finess()]
    name: Annotated[str, Text()]
    finess_ej: Annotated[str, Finess()]
    region: Annotated[str, CODE]
    window: Annotated[str, Choice(WINDOWS)]
    postponed: Annotated[bool, Boolean()] = False
    has_lab: Annotated[bool, Boolean()] = False
    has_imaging: Annotated[bool, Boolean()] = False
    cme_presentation: Annotated[bool, Boolean()] = False


@dataclass(frozen=True, slots=True)
class RegistryTombstone:
    """A message without value on the compacted registry topic: the deletion of the entry of
    the FINESS given by the message key. Not a JSON record: no schema describes it."""

    finess: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        StayDischarged,
        StayDischargeCancelled,
        DocumentProduced,
        DocumentDeposited,
        DocumentDepositFailed,
        DocumentDeleted,
        MssSent,
    )
}

Record = Event | EstablishmentRecord
RECORD_TYPES: dict[str, type[Event] | type[EstablishmentRecord]] = {
    **EVENT_TYPES,
    EstablishmentRecord.TYPE: EstablishmentRecord,
}
