"""The ACK: answered from receiver to sender, in the message's version and charset, with an ERR
that python-hl7 (not our code) reads back as the reason, location and detail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import hl7
import pytest

from streams.hl7.ack import Refusal, build_ack, escape, hl7_error_code
from streams.hl7.parsing import read_header

MDM = (
    b"MSH|^~\\&|RIS-Y|Organisation-Y|PFI-X|Organisation-X|202106060931||MDM^T02^MDM_T02|015|P|"
    b"2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\rEVN||20211005152908\r"
)
NOW = datetime(2026, 12, 1, 13, 5, 7, tzinfo=timezone(timedelta(hours=1)))


def parsed(ack: bytes, codec: str = "utf-8") -> hl7.Message:
    return hl7.parse(ack.decode(codec))


def test_an_accepted_message_is_answered_from_its_receiver_to_its_sender() -> None:
    ack = parsed(build_ack("AA", read_header(MDM), now=NOW, ack_control_id="A1"))
    msh = ack.segment("MSH")
    assert [str(msh[n]) for n in (3, 4, 5, 6)] == [
        "PFI-X",
        "Organisation-X",
        "RIS-Y",
        "Organisation-Y",
    ]
    assert str(msh[7]) == "20261201130507+0100"
    assert str(msh[9]) == "ACK^T02^ACK"
    assert str(msh[10]) == "A1"
    assert str(msh[11]) == "P"
    assert str(msh[12]) == "2.6"
    assert str(msh[18]) == "UNICODE UTF-8"
    assert [str(f) for f in ack.segment("MSA")[1:3]] == ["AA", "015"]
    assert len(ack) == 2  # no ERR on an accepted message


def test_an_accepted_message_gets_no_err_even_with_a_reason() -> None:
    ack = parsed(build_ack("AA", read_header(MDM), Refusal("lps_inbound")))
    assert [str(s[0]) for s in ack] == ["MSH", "MSA"]


def test_a_refusal_says_reason_location_and_detail_in_err() -> None:
    detail = "MSH-9: expected a trigger such as 'A03|A13', found 'Z99^X' & more\rnext line"
    ack = build_ack("AE", read_header(MDM), Refusal("unknown_trigger", detail, "MSH^1^9"))
    message = parsed(ack)
    err = message.segment("ERR")
    assert str(message.segment("MSA")[1]) == "AE"
    assert str(err[2]) == "MSH^1^9"
    assert str(err(3)(1)(1)) == "201"  # table 0357: unsupported event code
    assert str(err(3)(1)(3)) == "HL70357"
    assert str(err[4]) == "E"
    assert str(err(5)(1)(1)) == "unknown_trigger"
    # the detail's delimiters are escaped, so the segment keeps its fields; unescaped, it reads back
    assert message.unescape(str(err[7])) == detail.replace("\r", " ")


def test_a_location_that_is_no_segment_address_goes_into_the_text() -> None:
    err = parsed(build_ack("AR", None, Refusal("bad_segment", "a bad line", "3"))).segment("ERR")
    assert str(err[2]) == ""
    assert str(err[7]) == "a bad line (at 3)"


def test_a_message_without_msh_is_answered_in_2_5_and_utf_8_without_control_id() -> None:
    ack = parsed(build_ack("AR", None, Refusal("no_msh", "no MSH", "MSH")))
    msh = ack.segment("MSH")
    assert str(msh[3]) == "SUNES"
    assert str(msh[9]) == "ACK"
    assert str(msh[12]) == "2.5"
    assert str(msh[18]) == "UNICODE UTF-8"
    assert [str(f) for f in ack.segment("MSA")[1:3]] == ["AR", ""]
    assert str(ack.segment("ERR")(3)(1)(1)) == "100"


def test_the_ack_is_encoded_in_the_charset_of_the_message() -> None:
    latin9 = (
        "MSH|^~\\&|GAM|CHU-Léo|SUNES|Hôpital Sainte-Thérèse|20240306111154||ADT^A03^ADT_A03|3995|D|2.5|||||FRA|"
        "8859/15\r"
    ).encode("iso-8859-15")
    ack = build_ack("AA", read_header(latin9))
    assert "Hôpital Sainte-Thérèse".encode("iso-8859-15") in ack
    with pytest.raises(UnicodeDecodeError):
        ack.decode("utf-8")
    msh = parsed(ack, "iso-8859-15").segment("MSH")
    assert [str(msh[3]), str(msh[6]), str(msh[18])] == ["SUNES", "CHU-Léo", "8859/15"]


def test_values_from_the_message_cannot_add_fields_to_the_ack() -> None:
    header = read_header(b"MSH|^~\\&|APP|FAC&1.2.3&ISO|RCV|RFAC|2024||ADT^A03|C&1|P|2.5\r")
    ack = parsed(build_ack("AA", header))
    assert str(ack.segment("MSH")[6]) == "FAC\\T\\1.2.3\\T\\ISO"
    assert ack.unescape(str(ack.segment("MSA")[2])) == "C&1"
    assert len(ack.segment("MSH")) == 19
    assert len(ack.segment("MSA")) == 3


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("no_msh", "100"),
        ("bad_encoding_characters", "102"),
        ("truncated_base64", "102"),
        ("unknown_trigger", "201"),
        ("unsupported_version", "203"),
        ("zam_unknown_control_id", "204"),
        ("missing_pid_3", "101"),
        ("too_large", "207"),
        ("anything_else", "207"),
    ],
)
def test_reason_codes_map_to_hl7_table_0357(reason: str, code: str) -> None:
    assert hl7_error_code(reason) == code


def test_an_unknown_ack_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="AA"):
        build_ack("OK", None)


def test_escape_turns_every_delimiter_into_its_hl7_escape() -> None:
    assert escape("a|b^c&d~e\\f") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
