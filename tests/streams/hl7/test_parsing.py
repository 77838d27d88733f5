"""parsing: MSH checks, charsets, separators; a refusal names the field and never crashes."""

from __future__ import annotations

import pytest

from streams.hl7.parsing import Refusal, parse_message, read_header

MSH = "MSH|^~\\&|APP|FAC|PFI|DEST|202601101630||ADT^A03^ADT_A03|C1|P|2.5|||||FRA|{charset}"
PID = "PID|1||123^^^FAC^PI||NOM^PRÉNOM"


def message(charset: str = "UNICODE UTF-8", end: str = "\r") -> str:
    return MSH.format(charset=charset) + end + PID + end


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
def test_any_segment_separator(end: str) -> None:
    parsed = parse_message(message(end=end).encode())
    assert [s.name for s in parsed] == ["MSH", "PID"]
    assert parsed.first("PID").get(5, 2) == "PRÉNOM"  # type: ignore[union-attr]


def test_the_header_says_what_the_ack_needs() -> None:
    header = read_header(message().encode())
    assert (header.sending_application, header.sending_facility) == ("APP", "FAC")
    assert (header.receiving_application, header.receiving_facility) == ("PFI", "DEST")
    assert header.message_type == "ADT^A03"
    assert (header.control_id, header.version, header.encoding) == ("C1", "2.5", "utf-8")


def test_latin9_when_msh18_says_so() -> None:
    raw = (message("8859/15") + "NTE|1||100 €\r").encode("iso-8859-15")
    assert b"\xa4" in raw  # the euro sign of Latin-9, a currency sign in Latin-1
    parsed = parse_message(raw)
    assert parsed.header.encoding == "iso-8859-15"
    assert parsed.first("PID").get(5, 2) == "PRÉNOM"  # type: ignore[union-attr]
    assert parsed.first("NTE").get(3) == "100 €"  # type: ignore[union-attr]


def test_bytes_that_the_declared_charset_cannot_read() -> None:
    with pytest.raises(Refusal) as refused:
        parse_message(message().encode("iso-8859-15"))
    assert (refused.value.ack_code, refused.value.reason) == ("AR", "bad_charset")
    assert refused.value.location == "MSH^1^18"


def test_an_unknown_charset() -> None:
    with pytest.raises(Refusal) as refused:
        read_header(message("EBCDIC").encode())
    assert refused.value.reason == "unsupported_charset"
    assert "MSH-18" in refused.value.detail


def test_a_non_ascii_repetition_separator_works_as_declared() -> None:
    text = message().replace("^~\\&", "^\u02dc\\&").replace("NOM^PRÉNOM", "A\u02dcB")
    pid = parse_message(text.encode()).first("PID")
    assert pid is not None and pid.repetitions(5) == ["A", "B"]


@pytest.mark.parametrize(
    ("raw", "reason", "location"),
    [
        (b"", "no_msh", "MSH"),
        (PID.encode() + b"\r", "no_msh", "MSH"),
        (b"\x00\x01binary", "no_msh", "MSH"),
        (message().replace("^~\\&", "^~").encode(), "bad_encoding_characters", "MSH^1^2"),
        (message().replace("^~\\&", "^^\\&").encode(), "bad_encoding_characters", "MSH^1^2"),
        (message().replace("MSH|", "MSHA", 1).encode(), "bad_encoding_characters", "MSH^1^1"),
        (message().replace("ADT^A03^ADT_A03", "").encode(), "missing_message_type", "MSH^1^9"),
        (message().replace("|C1|", "||").encode(), "missing_control_id", "MSH^1^10"),
        (message().replace("|2.5|", "|3.0|").encode(), "unsupported_version", "MSH^1^12"),
        (message().replace("PID|1", "pi|1").encode(), "bad_segment", "2"),
    ],
)
def test_unusable_messages_are_refused_with_a_location(
    raw: bytes, reason: str, location: str
) -> None:
    with pytest.raises(Refusal) as refused:
        parse_message(raw)
    assert (refused.value.ack_code, refused.value.reason) == ("AR", reason)
    assert refused.value.location == location
    assert "NOM" not in refused.value.detail  # no patient data in a reason


def test_components_subcomponents_and_escapes() -> None:
    text = message().replace("123^^^FAC^PI", "123^^^FAC&1.2.3&ISO^PI~9\\S\\9^^^INS")
    pid = parse_message(text.encode()).first("PID")
    assert pid is not None
    assert pid.get(3, 4, 2) == "1.2.3"
    assert pid.get(3, 1, repetition=2) == "9^9"
    assert pid.get(3, 9) == "" and pid.get(99) == ""
