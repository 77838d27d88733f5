"""What every message converter shares: the message, the mapping, the state, and the
readings common to ADT and document messages (timestamps, identities, the event envelope)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.hl7.mapping import Facility, Hl7Mapping
from streams.hl7.parsing import MessageHeader, ParsedMessage, Refusal, Segment
from streams.hl7.state import ConverterState
from streams.hl7.values import INS_OIDS, event_id, hl7_time, rfc3339

QUALIFIED = "qualifiee"


@dataclass
class Outcome:
    """Events to publish, or none and why (an ignore reason, counted by the listener)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None


def missing(where: str, expected: str, location: str, reason: str = "missing_field") -> Refusal:
    return Refusal("AE", reason, f"{where}: expected {expected}, found nothing", location)


def mapped(table: Mapping[str, str], code: str, where: str, key: str, reason: str) -> str:
    """The mapping's value for an HL7 code, or a refusal naming the field and the key."""
    value = table.get(code)
    if value is None:
        raise Refusal(
            "AE",
            reason,
            f"{where}: expected one of {', '.join(table)} (the mapping's {key}), found "
            f"{code[:8]!r}",
            where.replace("-", "^1^"),
        )
    return value


@dataclass
class Context:
    message: ParsedMessage
    mapping: Hl7Mapping
    state: ConverterState

    @property
    def header(self) -> MessageHeader:
        return self.message.header

    def time(self, segment: Segment, field_number: int, component: int = 1) -> datetime | None:
        value = segment.get(field_number, component)
        if not value:
            return None
        where = f"{segment.name}-{field_number}"
        return hl7_time(value, self.mapping.time_zone, where, f"{segment.name}^1^{field_number}")

    def time_value(self, value: str, where: str, location: str) -> datetime:
        return hl7_time(value, self.mapping.time_zone, where, location)

    def event_key(self, about: str) -> str:
        """A deterministic identifier for something this message names (an MSSanté mail)."""
        return event_id(self.header, "message", about)

    def message_time(self) -> datetime:
        msh = self.message.first("MSH")
        moment = self.time(msh, 7) if msh is not None else None
        if moment is None:
            raise missing("MSH-7", "the date and time of the message", "MSH^1^7")
        return moment

    def sender(self) -> Facility | None:
        return self.mapping.facility(self.header.sending_application, self.header.sending_facility)

    def segment(self, name: str) -> Segment:
        found = self.message.first(name)
        if found is None:
            raise Refusal("AE", "missing_segment", f"expected a {name} segment, found none", name)
        return found

    def event(
        self, event_type: str, about: str, occurred_at: datetime, finess: str, **fields: Any
    ) -> dict[str, Any]:
        body = {
            key: (rfc3339(value) if isinstance(value, datetime) else value)
            for key, value in fields.items()
        }
        return {
            "type": event_type,
            "event_id": event_id(self.header, event_type, about),
            "occurred_at": rfc3339(occurred_at),
            "finess": finess,
            **body,
        }

    # --- identities (PID) ---

    def ins(self, pid: Segment) -> str | None:
        """The INS of PID-3 (CX-5 INS, or an INS authority OID); never emitted."""
        for rep in range(1, len(pid.repetitions(3)) + 1):
            value = pid.get(3, 1, repetition=rep)
            kind = pid.get(3, 5, repetition=rep)
            authority = pid.get(3, 4, 2, repetition=rep)
            if value and (kind == "INS" or authority in INS_OIDS):
                return value
        return None

    def ipp(self, pid: Segment, facility: Facility | None) -> str | None:
        """The IPP of PID-3: CX-5 PI, of the facility's authority when it names one."""
        authorities = facility.ipp_authorities if facility is not None else ()
        for rep in range(1, len(pid.repetitions(3)) + 1):
            value = pid.get(3, 1, repetition=rep)
            if not value or pid.get(3, 5, repetition=rep) != "PI":
                continue
            names = {pid.get(3, 4, 1, repetition=rep), pid.get(3, 4, 2, repetition=rep)}
            if not authorities or names & set(authorities):
                return value
        return None

    def ins_status(self, pid: Segment) -> str:
        """PID-32 through the mapping; `qualifiee` needs an INS in PID-3 unless configured."""
        code = pid.get(32).upper()
        if not code:
            return self.mapping.missing_reliability
        status = mapped(
            self.mapping.reliability,
            code,
            "PID-32",
            "identity.reliability",
            "unknown_identity_reliability",
        )
        if status == QUALIFIED and self.mapping.qualified_needs_ins and self.ins(pid) is None:
            return "validee"
        return status

    def stay_id(self, pid: Segment, pv1: Segment | None) -> str | None:
        """The NDA: PID-18, else PV1-19."""
        value = pid.get(18)
        if not value and pv1 is not None:
            value = pv1.get(19)
        return value or None
