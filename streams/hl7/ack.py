"""The HL7 acknowledgement of one message: MSA AA/AE/AR and an ERR that says what was wrong.

The ACK answers in the message's version and charset (MSH-12, MSH-18), from the message's
receiver to its sender (MSH-5/6 ↔ MSH-3/4), with the message's trigger in MSH-9
(`ACK^A03^ACK`) and its control id in MSA-2, which is how a sender (HAPI's initiator, an
integration engine) matches the answer to what it sent. A refusal adds one ERR (the v2.5
layout): ERR-2 the location (`MSH^1^9`), ERR-3 the HL7 error code of table 0357, ERR-4 `E`,
ERR-5 our reason code (`no_msh`, `unknown_trigger`, ...; coding system `SUNES`) and ERR-7 the
detail for a person (field, expected, found). A message without a usable MSH still gets an
answer: version 2.5, UTF-8, MSA-2 empty.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.hl7.parsing import MessageHeader

ACCEPT, ERROR, REJECT = "AA", "AE", "AR"
ACK_CODES = (ACCEPT, ERROR, REJECT)
DEFAULT_VERSION = "2.5"
DEFAULT_CHARSET = "UNICODE UTF-8"
OUR_APPLICATION = "SUNES"  # MSH-3 of an ACK to a message that named no receiver
MAX_DETAIL_CHARS = 1000

# HL7 table 0357 (message error condition codes) used in ERR-3.
HL7_ERRORS = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "207": "Application internal error",
}
_ERROR_OF_REASON = {
    "no_msh": "100",
    "bad_segment": "100",
    "bad_encoding_characters": "102",
    "bad_charset": "102",
    "unsupported_charset": "102",
    "truncated_base64": "102",
    "unparseable": "102",
    "missing_message_type": "101",
    "missing_control_id": "101",
    "unknown_message_type": "200",
    "unsupported_message_type": "200",
    "unknown_trigger": "201",
    "unsupported_trigger": "201",
    "unsupported_version": "203",
    "zam_unknown_control_id": "204",
    "unknown_facility": "204",
}
_ERROR_OF_PREFIX = (("missing_", "101"), ("unknown_", "204"), ("bad_", "102"), ("invalid_", "102"))
_LOCATION = re.compile(r"[A-Z][A-Z0-9]{2}(\^\d+){0,4}")
_ESCAPES = str.maketrans({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"})
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x1c]+")
# MSH-18 (HL7 table 0211) → Python codec, for a header that did not say.
_CODECS = {"UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "8859/15": "iso-8859-15",
           "8859/1": "iso-8859-1", "ASCII": "ascii"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message was not accepted, as the ERR segment says it."""

    reason: str  # a short code, e.g. "no_msh"
    detail: str | None = None  # for a person: field, expected, found
    location: str | None = None  # ERR-2, e.g. "MSH^1^9"


def hl7_error_code(reason: str) -> str:
    """The HL7 table 0357 code for one of our reason codes (207 when none fits better)."""
    if reason in _ERROR_OF_REASON:
        return _ERROR_OF_REASON[reason]
    return next((code for prefix, code in _ERROR_OF_PREFIX if reason.startswith(prefix)), "207")


def escape(text: str) -> str:
    """A value made safe for one field: delimiters as HL7 escapes, no line breaks."""
    return _LINE_BREAKS.sub(" ", text).translate(_ESCAPES)


def build_ack(
    code: str,
    header: MessageHeader | None,
    refusal: Refusal | None = None,
    *,
    now: datetime | None = None,
    ack_control_id: str | None = None,
) -> bytes:
    """The ACK message (without MLLP framing), encoded in the message's charset."""
    if code not in ACK_CODES:
        raise ValueError(f"an acknowledgement code is one of {ACK_CODES}, not {code!r}")
    stamp = (now or datetime.now().astimezone()).strftime("%Y%m%d%H%M%S%z")
    version = (header.version if header else "") or DEFAULT_VERSION
    charset = (header.charset if header else "") or DEFAULT_CHARSET
    codec = header.encoding if header else _CODECS[DEFAULT_CHARSET]
    trigger = header.trigger_event if header else ""
    msh = [
        "MSH",
        "^~\\&",
        escape(header.receiving_application if header else "") or OUR_APPLICATION,
        escape(header.receiving_facility if header else ""),
        escape(header.sending_application if header else ""),
        escape(header.sending_facility if header else ""),
        stamp,
        "",
        f"ACK^{escape(trigger)}^ACK" if trigger else "ACK",
        ack_control_id or uuid.uuid4().hex[:20],
        escape(header.processing_id if header else "") or "P",
        escape(version),
        *[""] * 5,  # MSH-13 to MSH-17
        escape(charset),
    ]
    segments = ["|".join(msh), f"MSA|{code}|{escape(header.control_id if header else '')}"]
    if refusal is not None and code != ACCEPT:
        segments.append(_err(refusal))
    return "\r".join(segments).encode(codec, errors="replace")


def _err(refusal: Refusal) -> str:
    error = hl7_error_code(refusal.reason)
    location = refusal.location or ""
    detail = refusal.detail or ""
    if location and not _LOCATION.fullmatch(location):  # not an ERL: say it in the text
        detail = f"{detail} (at {location})" if detail else f"at {location}"
        location = ""
    fields = [
        "ERR",
        "",
        location,
        f"{error}^{HL7_ERRORS[error]}^HL70357",
        "E",
        f"{escape(refusal.reason)}^^SUNES",
        "",
        escape(detail[:MAX_DETAIL_CHARS]),
    ]
    return "|".join(fields).rstrip("|")
