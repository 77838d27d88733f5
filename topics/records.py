"""The event contract v1 as records: one frozen dataclass per event type.

Each field is `Annotated[python type, field kind]`; `topics.validation` parses JSON into these
records and `topics.schema` writes the JSON Schemas from the same annotations. A field with a
dataclass default may be absent from the JSON.

Reasons never quote a wrong value of a `Text` field (identifiers, addresses, names) unless it
is declared a `code`: a closed vocabulary (record type, LOINC type code, region, failure code).
Every field has a `description`, and every record type a docstring, for the JSON Schemas:
one English sentence each, for the integration engineers who map their messages to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, ClassVar

from topics.display import Display
from topics.fields import Boolean, Choice, Finess, IntChoice, ListOf, Text, Timestamp

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


def code(description: str) -> Text:
    """A text field whose values are codes of a closed vocabulary: a reason may quote a
    short one."""
    return Text(description, display=Display.VOCABULARY)


# Fields of the same meaning in several records: one description each.
PATIENT_ID = Text("Pseudonymous patient identifier (IPP) at this FINESS, never the INS.")
DOCUMENT_ID = Text("Identifier of the document, the same in every event about it.")
TYPE_CODE = code(
    "LOINC document type (XDS typeCode), e.g. 11490-0 for a discharge letter, 57833-6 for a "
    "discharge prescription, 34874-8 for an operative report, 11502-2 for a biology report, "
    "18748-4 for an imaging report."
)
PRODUCED_AT = Timestamp(
    description="When the document was produced: a biology or imaging report counts in the "
    "period of this date."
)
DOCUMENT_STAY_ID = Text(
    "The stay (NDA) the document belongs to, or null for an outpatient report.", nullable=True
)
CDA_LEVEL_DESCRIPTION = (
    "CDA-R2 level of the document: 1 for a structured header with a non-structured body (PDF), "
    "3 for a structured body with coded entries"
)
INS_STATUS_AT_SENDING = Choice(
    INS_STATUSES,
    description="Status of the patient's INS identity when the document was sent: only "
    "qualifiee (a qualified INS) lets the document count.",
)


@dataclass(frozen=True, slots=True)
class Correspondent:
    """A health professional named as a correspondent on a stay."""

    rpps: Annotated[str, Text("RPPS number of the correspondent.")]
    mss_address: Annotated[
        str | None,
        Text(
            "The correspondent's MSSanté address, or null when they have none (then they are "
            "not counted by DS 4.1).",
            nullable=True,
        ),
    ] = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document attached to an MSSanté message."""

    document_id: Annotated[str, DOCUMENT_ID]
    type_code: Annotated[str, TYPE_CODE]
    ins_status: Annotated[str, INS_STATUS_AT_SENDING]
    cda_level: Annotated[
        int | None,
        IntChoice(
            CDA_LEVELS,
            nullable=True,
            description=CDA_LEVEL_DESCRIPTION + ", or null for a document that is not CDA-R2.",
        ),
    ] = None


@dataclass(frozen=True, slots=True)
class Event:
    """Fields every event carries."""

    TYPE: ClassVar[str] = ""
    type: Annotated[str, code("The event type, which says which other fields the event has.")]
    event_id: Annotated[
        str, Text("Identifier of the event, unique per producer: the idempotency key.")
    ]
    occurred_at: Annotated[
        datetime,
        Timestamp(description="When the event happened, with its UTC offset (RFC 3339)."),
    ]
    finess: Annotated[
        str,
        Finess(description="FINESS géographique (9 characters) of the establishment concerned."),
    ]


@dataclass(frozen=True, slots=True)
class StayDischarged(Event):
    """A patient was discharged (HL7 ADT^A03): a second one for the same stay corrects the
    first, the one with the later occurred_at wins."""

    TYPE: ClassVar[str] = "stay.discharged"
    stay_id: Annotated[str, Text("Stay identifier at this FINESS: the NDA (PID-18 in HL7 v2).")]
    patient_id: Annotated[str, PATIENT_ID]
    admitted_at: Annotated[
        datetime, Timestamp(description="When the patient was admitted (PV1-44 in HL7 v2).")
    ]
    discharged_at: Annotated[
        datetime,
        Timestamp(
            description="When the patient was discharged (PV1-45 in HL7 v2), never before "
            "admitted_at: the stay counts in the period of this date."
        ),
    ]
    stay_kind: Annotated[
        str,
        Choice(
            STAY_KINDS,
            description="Kind of stay: by default hospitalisation_complete, "
            "hospitalisation_partielle and had are in scope of the rates, the others are not.",
        ),
    ]
    ins_status: Annotated[
        str,
        Choice(
            INS_STATUSES,
            description="Status of the patient's INS identity on this stay, qualifiee "
            "meaning retrieved from INSi and checked against an identity document.",
        ),
    ]
    surgical: Annotated[
        bool,
        Boolean(
            description="Whether the stay was surgical (the stays DS 1.3 counts), "
            "false when absent."
        ),
    ] = False
    deceased: Annotated[
        bool,
        Boolean(
            description="Whether the patient died during the stay (an optional exclusion "
            "from the DS 1.x rates), false when absent."
        ),
    ] = False
    dmp_opposition: Annotated[
        bool,
        Boolean(
            description="Whether the patient opposed feeding their DMP (an optional "
            "exclusion from the DS 1.x rates), false when absent."
        ),
    ] = False
    correspondents: Annotated[
        tuple[Correspondent, ...],
        ListOf(
            Correspondent,
            description="The correspondents named on the stay (those with an MSSanté address "
            "make the denominator of DS 4.1), empty when absent.",
        ),
    ] = ()


@dataclass(frozen=True, slots=True)
class StayDischargeCancelled(Event):
    """A discharge was cancelled (HL7 ADT^A13): if later than the stay's latest discharge, the
    stay leaves every rate until a later stay.discharged brings it back."""

    TYPE: ClassVar[str] = "stay.discharge_cancelled"
    stay_id: Annotated[str, Text("The stay (NDA) whose discharge is cancelled.")]


@dataclass(frozen=True, slots=True)
class DocumentProduced(Event):
    """A document was produced by the establishment, whether or not it reaches the DMP: the
    reports the DS 2.1 and DS 3.1 rates divide by."""

    TYPE: ClassVar[str] = "document.produced"
    document_id: Annotated[str, DOCUMENT_ID]
    type_code: Annotated[str, TYPE_CODE]
    patient_id: Annotated[str, PATIENT_ID]
    produced_at: Annotated[datetime, PRODUCED_AT]
    stay_id: Annotated[str | None, DOCUMENT_STAY_ID] = None


@dataclass(frozen=True, slots=True)
class DocumentDeposited(Event):
    """The DMP acknowledged the deposit of a document (a deposit implies its production)."""

    TYPE: ClassVar[str] = "document.deposited"
    document_id: Annotated[str, DOCUMENT_ID]
    type_code: Annotated[str, TYPE_CODE]
    patient_id: Annotated[str, PATIENT_ID]
    cda_level: Annotated[int, IntChoice(CDA_LEVELS, description=CDA_LEVEL_DESCRIPTION + ".")]
    ins_status: Annotated[str, INS_STATUS_AT_SENDING]
    produced_at: Annotated[datetime, PRODUCED_AT]
    deposited_at: Annotated[
        datetime, Timestamp(description="When the DMP acknowledged the deposit.")
    ]
    stay_id: Annotated[str | None, DOCUMENT_STAY_ID] = None
    replaces: Annotated[
        str | None,
        Text(
            "The document_id of the document this one replaces (which then no longer counts), "
            "or null.",
            nullable=True,
        ),
    ] = None


@dataclass(frozen=True, slots=True)
class DocumentDepositFailed(Event):
    """The DMP refused the deposit of a document: no rate changes."""

    TYPE: ClassVar[str] = "document.deposit_failed"
    document_id: Annotated[str, DOCUMENT_ID]
    reason: Annotated[str, code("Why the DMP refused the deposit, e.g. DMPClosed.")]


@dataclass(frozen=True, slots=True)
class DocumentDeleted(Event):
    """A document was deleted from the DMP: it no longer counts, whatever the order in which
    its events arrive."""

    TYPE: ClassVar[str] = "document.deleted"
    document_id: Annotated[str, DOCUMENT_ID]


@dataclass(frozen=True, slots=True)
class MssSent(Event):
    """A message was sent over MSSanté, to a health professional (pro) or to the patient
    (citoyenne)."""

    TYPE: ClassVar[str] = "mss.sent"
    message_id: Annotated[str, Text("Identifier of the message.")]
    channel: Annotated[
        str,
        Choice(
            MSS_CHANNELS,
            description="The MSSanté channel: pro to a health professional, citoyenne to the "
            "patient's mailbox.",
        ),
    ]
    patient_id: Annotated[str, PATIENT_ID]
    recipient: Annotated[
        str,
        Text(
            "The recipient: an RPPS number on the pro channel, the patient's MSSanté address "
            "on the citoyenne channel."
        ),
    ]
    sent_at: Annotated[datetime, Timestamp(description="When the message was sent.")]
    stay_id: Annotated[
        str | None,
        Text(
            "The stay (NDA) the message is about, or null (allowed on the pro channel).",
            nullable=True,
        ),
    ] = None
    attachments: Annotated[
        tuple[Attachment, ...],
        ListOf(Attachment, description="The documents attached to the message, empty when absent."),
    ] = ()


@dataclass(frozen=True, slots=True)
class EstablishmentRecord:
    """The registry entry of a FINESS géographique (compacted topic, key = FINESS): the latest
    record for a FINESS is its entry."""

    TYPE: ClassVar[str] = "establishment"
    type: Annotated[str, code("The record type, always establishment.")]
    finess: Annotated[
        str, Finess(description="FINESS géographique of the establishment, also the message key.")
    ]
    name: Annotated[str, Text("Name of the establishment.")]
    finess_ej: Annotated[
        str,
        Finess(description="FINESS juridique of the legal entity the establishment belongs to."),
    ]
    region: Annotated[str, code("Code of the establishment's region, e.g. IDF.")]
    window: Annotated[
        str,
        Choice(
            WINDOWS,
            description="The funding window the establishment is enrolled in, whose targets "
            "its alerts use.",
        ),
    ]
    postponed: Annotated[
        bool,
        Boolean(
            description="Whether the establishment asked for a postponement (one of F1 "
            "then takes F2's amended end date), false when absent."
        ),
    ] = False
    has_lab: Annotated[
        bool,
        Boolean(
            description="Whether the establishment has its own laboratory (else it has "
            "no DS 2.1 rate), false when absent."
        ),
    ] = False
    has_imaging: Annotated[
        bool,
        Boolean(
            description="Whether the establishment has its own imaging unit (else it has "
            "no DS 3.1 rate), false when absent."
        ),
    ] = False
    cme_presentation: Annotated[
        bool,
        Boolean(
            description="Whether MSSanté messaging to patients was presented to the "
            "establishment's medical committee (CME), indicator DS 4.3, false when absent."
        ),
    ] = False


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
