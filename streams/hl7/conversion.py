"""One HL7 v2 message → its contract v1 events, or the reason it is refused or ignored.

`Hl7Converter.convert` never raises on input: it answers a `Conversion` whose `ack_code` is
what the sender must hear (`AA` accepted or ignored, `AE` content it cannot use, `AR` not
usable HL7 or unsupported). docs/hl7.md lists what every message type and trigger does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.store import KeyValueStore
from streams.hl7 import adt, documents, zam
from streams.hl7.context import Context, Outcome
from streams.hl7.mapping import Hl7Mapping
from streams.hl7.parsing import MessageHeader, Refusal, parse_message, read_header
from streams.hl7.state import ConverterState, purge
from topics.names import TOPIC_OF_TYPE
from topics.validation import InvalidRecord, record_from_object

log = logging.getLogger(__name__)

__all__ = ["Conversion", "Hl7Converter", "MessageHeader", "topic_of"]

_ADT_KNOWN = re.compile(r"A(0[1-9]|[1-5][0-9]|6[0-2])|Z8[0-9]|Z99")
_MDM_KNOWN = re.compile(r"T(0[1-9]|1[01])")
_ORU_KNOWN = re.compile(r"R(0[1-9]|[1-3][0-9]|4[0-2])|W01")
LPS_PROFILE = "CISIS_CDA_HL7_LPS"  # documents received by MSSanté, pushed to the LPS
TELERADIOLOGY_PROFILE = "CISIS_TLR_HL7_V2"


@dataclass(frozen=True)
class Conversion:
    ack_code: str  # "AA" (accepted or ignored), "AE" (cannot use it), "AR" (rejected)
    events: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None  # short code: metrics label, dead-letter header; None if converted
    detail: str | None = None  # for a person: field, expected, found
    location: str | None = None  # ERR-2, e.g. "MSH^1^9"
    control_id: str | None = None  # MSH-10, for MSA-2
    header: MessageHeader | None = None

    @property
    def refused(self) -> bool:
        return self.ack_code != "AA"


def topic_of(event: dict[str, Any]) -> str:
    """The contract topic of an event."""
    return TOPIC_OF_TYPE[event["type"]]


def _unknown(header: MessageHeader) -> Refusal:
    return Refusal(
        "AR",
        "unknown_trigger",
        f"MSH-9: expected ADT, MDM, ORU, ZAM or ACK with a trigger of HL7 v2.5/2.6, found "
        f"{header.message_type[:16]!r}",
        "MSH^1^9",
    )


def _ignored(reason: str) -> Callable[[Context], Outcome]:
    return lambda _ctx: Outcome(ignored=reason)


def route(header: MessageHeader) -> Callable[[Context], Outcome]:
    """The converter of a message type, or a refusal (unknown) / an ignore reason."""
    code, trigger = header.message_code, header.trigger_event
    if code == "ACK":
        return _ignored("acknowledgement")
    if code == "ADT":
        if trigger == "A03":
            return adt.discharge
        if trigger == "A13":
            return adt.cancel_discharge
        if trigger in adt.STATE_TRIGGERS:
            return adt.update_stay
        if _ADT_KNOWN.fullmatch(trigger):
            return _ignored("adt_not_counted")
    elif code in ("MDM", "ORU"):
        known = _MDM_KNOWN if code == "MDM" else _ORU_KNOWN
        if LPS_PROFILE in header.profile and known.fullmatch(trigger):
            return _ignored("lps_inbound_document")
        if TELERADIOLOGY_PROFILE in header.profile and known.fullmatch(trigger):
            return _ignored("teleradiology")
        if (code, trigger) in (("MDM", "T02"), ("MDM", "T10"), ("MDM", "T04"), ("ORU", "R01")):
            return documents.convert_documents
        if known.fullmatch(trigger):
            return _ignored(f"{code.lower()}_not_counted")
    elif code == "ZAM":
        if trigger == "Z01":
            return zam.convert_dmp_ack
        if trigger == "Z02":
            return _ignored("mss_receipt")
        if trigger == "Z03":
            return _ignored("mss_read_receipt")
    raise _unknown(header)


class Hl7Converter:
    """Converts messages one at a time; what links them lives in `state`."""

    def __init__(
        self,
        mapping: Hl7Mapping,
        state: KeyValueStore,
        retention_days: int = 3653,
        on_purged: Callable[[str, int], None] | None = None,
    ) -> None:
        self.mapping = mapping
        self.state = ConverterState(state)
        self.retention_days = retention_days
        self.purged_at: datetime | None = None  # the clock of the last purge of the state
        self.on_purged = on_purged  # (kind, count) per purge: the listener's counter

    def convert(self, raw: bytes, received: datetime | None = None) -> Conversion:
        """One message, received at `received` (now by default): the converter's clock."""
        received = received or datetime.now(UTC)
        self._purge(received)
        header: MessageHeader | None = None
        try:
            header = read_header(raw)
            message = parse_message(raw)
            outcome = route(header)(Context(message, self.mapping, self.state))
            for event in outcome.events:
                _check(event)
        except Refusal as refusal:
            self.state.discard()
            return Conversion(
                refusal.ack_code,
                [],
                refusal.reason,
                refusal.detail,
                refusal.location,
                header.control_id if header else None,
                header,
            )
        except Exception as exc:  # a converter bug must not stop the listener
            self.state.discard()
            return Conversion(
                "AE",
                [],
                "internal_error",
                f"the converter failed on this message ({type(exc).__name__}); it is kept in "
                "the dead letters",
                None,
                header.control_id if header else None,
                header,
            )
        self.state.commit(received)
        return Conversion(
            "AA", outcome.events, outcome.ignored, None, None, header.control_id, header
        )

    def _purge(self, clock: datetime) -> None:
        """Once per day of the clock: the entries past the horizon leave the state."""
        if self.purged_at is not None and clock - self.purged_at < timedelta(days=1):
            return
        self.purged_at = clock
        horizon = (clock - timedelta(days=self.retention_days)).date().isoformat()
        for kind, count in sorted(purge(self.state.store, clock, self.retention_days).items()):
            log.info("purged %d %s entries of the HL7 state (horizon %s)", count, kind, horizon)
            if self.on_purged is not None:
                self.on_purged(kind, count)


def _check(event: dict[str, Any]) -> None:
    """Every event is valid for its topic before anyone sees it."""
    try:
        record_from_object(event)
    except InvalidRecord as exc:
        raise Refusal("AE", exc.code, f"{event['type']}: {exc.reason}") from None
