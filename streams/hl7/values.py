"""HL7 values → contract values: timestamps in the configured zone, identifiers, event ids.

No HL7 timestamp of the corpus carries an offset: one without an offset is read in the
mapping's time zone (an ambiguous autumn hour reads as its first, summer occurrence; a
spring-forward hour that does not exist reads with the winter offset, i.e. one hour later in
local time). `event_id` is a UUIDv5 over the sender, the message (MSH-10 and MSH-7), the
event type and what the event is about, so a re-sent message gives the same ids.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from streams.hl7.parsing import MessageHeader, Refusal, Segment

# A fixed namespace: changing it would change every event id (duplicates would count twice).
EVENT_NAMESPACE = uuid.UUID("4f1c2b8e-6f4a-5d0e-9a43-7d2f5e9b1c60")
_TS = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:([+-])(\d{2})(\d{2}))?"
)
INS_OIDS = frozenset(
    {
        "1.2.250.1.213.1.4.8",  # NIR
        "1.2.250.1.213.1.4.9",  # NIA
        "1.2.250.1.213.1.4.10",  # test NIR
        "1.2.250.1.213.1.4.11",  # test NIA
    }
)


def hl7_time(value: str, zone: ZoneInfo, where: str, location: str) -> datetime:
    """An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) as an aware datetime."""
    match = _TS.fullmatch(value.strip())
    if match is None:
        raise Refusal(
            "AE",
            "invalid_timestamp",
            f"{where}: expected an HL7 timestamp YYYYMMDDHHMM[SS][+/-ZZZZ], found {value!r}",
            location,
        )
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        raise Refusal(
            "AE",
            "invalid_timestamp",
            f"{where}: expected a real calendar date and time, found {value!r}",
            location,
        ) from None
    if sign is None:
        return moment.replace(tzinfo=zone)
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    return moment.replace(tzinfo=timezone(offset if sign == "+" else -offset))


def rfc3339(moment: datetime) -> str:
    return moment.isoformat()


def event_id(header: MessageHeader, event_type: str, about: str) -> str:
    """Deterministic: the same message gives the same id, another message another one."""
    name = "\x1f".join(
        (
            header.sending_application,
            header.sending_facility,
            header.control_id,
            header.timestamp,
            event_type,
            about,
        )
    )
    return str(uuid.uuid5(EVENT_NAMESPACE, name))


def digest(value: str) -> str:
    """A stable pseudonym of an identifier that must not leave the adapter (the INS)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def entity_id(segment: Segment, field: int, repetition: int = 1) -> str | None:
    """An EI (TXA-12, TXA-13): `root^extension` when it is `extension^^root^ISO`, else EI-1."""
    first = segment.get(field, 1, repetition=repetition)
    universal = segment.get(field, 3, repetition=repetition)
    if first and universal:
        return f"{universal}^{first}"
    return first or None


def professional_id(value: str) -> str | None:
    """An RPPS from an 11-digit RPPS or a 12-character national id `8` + RPPS (IDNPS)."""
    value = value.strip()
    if len(value) == 12 and value.startswith("8") and value[1:].isdigit():
        return value[1:]
    if len(value) == 11 and value.isdigit():
        return value
    return None


def structure_finess(value: str) -> str:
    """A FINESS from PRT-8.10: 9 characters, or the national structure id `1` + FINESS."""
    value = value.strip()
    if len(value) == 10 and value.startswith("1"):
        return value[1:]
    return value
