"""Bytes → a parsed HL7 v2 message (python-hl7), or a refusal that says what was wrong.

The charset comes from MSH-18 (`UNICODE UTF-8`, `8859/15`, `8859/1`, `ASCII`; empty reads as
UTF-8); segments may end with CR, LF or CRLF; MSH-1/MSH-2 are read as characters, so a
non-ASCII repetition separator (the U+02DC tilde of some ANS files) works as declared.
Refusals carry the HL7 acknowledgement code (`AR`: not usable HL7), a short reason code, a
detail for a person (field, expected, found — never a field's patient data) and an ERR-2
location.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import hl7

# MSH-18 (HL7 table 0211) → Python codec.
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/15": "iso-8859-15",
    "8859/1": "iso-8859-1",
    "ASCII": "ascii",
}
_SEGMENT_END = re.compile(r"\r\n|\r|\n")
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_BOM = b"\xef\xbb\xbf"


class Refusal(Exception):
    """A message that cannot be converted: the ACK code, a reason code and what was wrong."""

    def __init__(
        self, ack_code: str, reason: str, detail: str, location: str | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.ack_code = ack_code
        self.reason = reason
        self.detail = detail
        self.location = location


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What the MSH says: enough to route the message and to build its ACK."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    timestamp: str  # MSH-7 as sent
    message_code: str  # MSH-9.1, e.g. ADT
    trigger_event: str  # MSH-9.2, e.g. A03
    structure: str  # MSH-9.3, e.g. ADT_A03
    control_id: str  # MSH-10
    processing_id: str  # MSH-11
    version: str  # MSH-12.1, e.g. 2.5
    charset: str  # MSH-18 as sent (first repetition)
    encoding: str  # the Python codec MSH-18 names
    profile: str  # MSH-21 as sent, every repetition

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger_event}"


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: `fields[n]` is field n as sent (for MSH, fields[1] is MSH-1)."""

    name: str
    fields: tuple[str, ...]
    repetition: str
    component: str
    subcomponent: str
    unescape: Callable[[str], str]

    def raw(self, field: int) -> str:
        return self.fields[field] if 0 < field < len(self.fields) else ""

    def repetitions(self, field: int) -> list[str]:
        raw = self.raw(field)
        return raw.split(self.repetition) if raw else []

    def components(self, field: int, repetition: int = 1) -> list[str]:
        reps = self.repetitions(field)
        if not 0 < repetition <= len(reps):
            return []
        return reps[repetition - 1].split(self.component)

    def get(self, field: int, component: int = 1, sub: int = 1, repetition: int = 1) -> str:
        """One value, unescaped and trimmed; "" when absent."""
        components = self.components(field, repetition)
        if not 0 < component <= len(components):
            return ""
        subs = components[component - 1].split(self.subcomponent)
        if not 0 < sub <= len(subs):
            return ""
        return self.unescape(subs[sub - 1]).strip()

    def sub_values(self, component_text: str) -> list[str]:
        """The trimmed subcomponents of one component's text."""
        return [self.unescape(s).strip() for s in component_text.split(self.subcomponent)]


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    header: MessageHeader
    segments: tuple[Segment, ...]
    message: hl7.Message

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)


def _first_line(raw: bytes) -> bytes:
    return re.split(rb"\r|\n", raw, maxsplit=1)[0]


def _check_delimiters(line: str) -> tuple[str, str]:
    """MSH-1 and MSH-2, or a refusal naming what is wrong with them."""
    separator = line[3] if len(line) > 3 else ""
    if not separator or separator.isalnum() or separator.isspace():
        raise Refusal(
            "AR",
            "bad_encoding_characters",
            "MSH-1: expected a field separator such as '|' right after 'MSH', found "
            + (repr(separator) if separator else "nothing"),
            "MSH^1^1",
        )
    encoding = line[4:].split(separator, 1)[0]
    problems = []
    if len(encoding) not in (4, 5):
        problems.append(f"{len(encoding)} characters")
    if len(set(encoding)) != len(encoding):
        problems.append("a character twice")
    if any(c.isalnum() or c.isspace() for c in encoding):
        problems.append("a letter, digit or space")
    if problems:
        raise Refusal(
            "AR",
            "bad_encoding_characters",
            "MSH-2: expected the 4 encoding characters (component, repetition, escape, "
            f"subcomponent, e.g. '^~\\&'), found {encoding!r} ({', '.join(problems)})",
            "MSH^1^2",
        )
    return separator, encoding


def read_header(raw: bytes) -> MessageHeader:
    """The MSH of `raw` (its first segment), checked; a refusal if there is none or it is
    unusable."""
    raw = raw.removeprefix(_BOM).lstrip(b" \t\r\n")
    if not raw.startswith(b"MSH"):
        head = raw[:3]
        found = (
            f"a segment named {head.decode()!r}"
            if _SEGMENT_NAME.fullmatch(head.decode("latin-1"))
            else f"{len(raw)} bytes that do not start with a segment name"
        )
        raise Refusal(
            "AR",
            "no_msh",
            f"expected the message to start with an MSH segment, found {found}",
            "MSH",
        )
    line_bytes = _first_line(raw)
    try:
        line = line_bytes.decode("utf-8")
    except UnicodeDecodeError:
        line = line_bytes.decode("latin-1")
    separator, encoding_chars = _check_delimiters(line)
    parts = line.split(separator)  # parts[n - 1] is MSH-n for n >= 2
    component, repetition = encoding_chars[0], encoding_chars[1]

    def msh(n: int, comp: int = 1) -> str:
        text = parts[n - 1] if n - 1 < len(parts) else ""
        first = text.split(repetition)[0] if n != 2 else text
        pieces = first.split(component)
        return pieces[comp - 1].strip() if comp <= len(pieces) else ""

    charset = msh(18)
    if charset.upper() not in CHARSETS:
        raise Refusal(
            "AR",
            "unsupported_charset",
            f"MSH-18: expected one of {', '.join(repr(c) for c in CHARSETS if c)} or empty, "
            f"found {charset!r}",
            "MSH^1^18",
        )
    header = MessageHeader(
        field_separator=separator,
        encoding_characters=encoding_chars,
        sending_application=msh(3),
        sending_facility=msh(4),
        receiving_application=msh(5),
        receiving_facility=msh(6),
        timestamp=msh(7),
        message_code=msh(9, 1),
        trigger_event=msh(9, 2),
        structure=msh(9, 3),
        control_id=msh(10),
        processing_id=msh(11),
        version=msh(12),
        charset=charset,
        encoding=CHARSETS[charset.upper()],
        profile=parts[20].strip() if len(parts) > 20 else "",
    )
    if not header.message_code or not header.trigger_event:
        raise Refusal(
            "AR",
            "missing_message_type",
            "MSH-9: expected a message type and trigger event such as 'ADT^A03', found "
            f"{parts[8] if len(parts) > 8 else ''!r}",
            "MSH^1^9",
        )
    if not header.control_id:
        raise Refusal(
            "AR",
            "missing_control_id",
            "MSH-10: expected a message control id, found nothing",
            "MSH^1^10",
        )
    if not header.version.startswith("2."):
        raise Refusal(
            "AR",
            "unsupported_version",
            f"MSH-12: expected an HL7 version 2.x (2.5 or 2.6), found {header.version!r}",
            "MSH^1^12",
        )
    return header


def _fields(line: str, separator: str) -> tuple[str, ...]:
    parts = line.split(separator)
    if parts[0] == "MSH":  # MSH-1 is the separator itself
        return ("MSH", separator, *parts[1:])
    return tuple(parts)


def parse_message(raw: bytes) -> ParsedMessage:
    """Decode and parse one message; `Refusal` if it is not usable HL7 v2."""
    header = read_header(raw)
    raw = raw.removeprefix(_BOM).lstrip(b" \t\r\n")
    try:
        text = raw.decode(header.encoding)
    except UnicodeDecodeError as exc:
        raise Refusal(
            "AR",
            "bad_charset",
            f"MSH-18: the message declares {header.charset or 'no charset (UTF-8)'!r} but byte "
            f"{exc.start} ({raw[exc.start]:#04x}) is not valid {header.encoding}",
            "MSH^1^18",
        ) from None
    lines = [line for line in _SEGMENT_END.split(text) if line.strip()]
    for number, line in enumerate(lines, start=1):
        if not _SEGMENT_NAME.fullmatch(line[:3]):
            raise Refusal(
                "AR",
                "bad_segment",
                f"segment {number}: expected a 3-character segment name (such as PID) "
                f"followed by {header.field_separator!r}, found a line that does not start so",
                f"{number}",
            )
        if len(line) > 3 and line[3] != header.field_separator:
            raise Refusal(
                "AR",
                "bad_segment",
                f"segment {number} ({line[:3]}): expected {header.field_separator!r} after the "
                f"segment name, found {line[3]!r}",
                f"{line[:3]}",
            )
    try:
        message = hl7.parse("\r".join(lines))
    except Exception as exc:  # python-hl7 raises plain exceptions on broken structure
        raise Refusal(
            "AR",
            "unparseable",
            f"python-hl7 could not parse the message: {type(exc).__name__}",
            "MSH",
        ) from None
    encoding = header.encoding_characters
    separator = header.field_separator
    if len(message) != len(lines):
        raise Refusal(
            "AR", "unparseable", f"python-hl7 read {len(message)} segments of {len(lines)}", "MSH"
        )
    # python-hl7 splits the same lines (str(segment[n]) is field n as sent): the fields are
    # taken from the lines, which spares joining its containers back.
    segments = tuple(
        Segment(
            name=line[:3],
            fields=_fields(line, separator),
            repetition=encoding[1],
            component=encoding[0],
            subcomponent=encoding[3],
            unescape=message.unescape,
        )
        for line in lines
    )
    return ParsedMessage(header=header, segments=segments, message=message)
