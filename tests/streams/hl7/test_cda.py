"""cda: the level from the body, ids, refusals for cut base64, no DTD and no entities."""

from __future__ import annotations

import base64

import pytest

from streams.hl7.cda import decode_base64, read_cda
from streams.hl7.parsing import Refusal

BODY = {
    1: '<nonXMLBody><text mediaType="application/pdf">JVBERi0=</text></nonXMLBody>',
    3: "<structuredBody><component><section><entry/></section></component></structuredBody>",
}


def cda(level: int, prolog: str = "", extra: str = "") -> bytes:
    return (
        f'{prolog}<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3" extension="X9"/>'
        '<code code="11490-0"/><effectiveTime value="20260110161500+0100"/>'
        '<recordTarget><patientRole><id root="1.2.250.1.213.1.4.10" extension="1"/>'
        '<id root="1.2.9" extension="IPP7"/></patientRole></recordTarget>'
        '<relatedDocument typeCode="RPLC"><parentDocument><id root="1.2.2"/></parentDocument>'
        f"</relatedDocument>{extra}<component>{BODY[level]}</component></ClinicalDocument>"
    ).encode()


@pytest.mark.parametrize("level", [1, 3])
def test_level_and_ids(level: int) -> None:
    document = read_cda(cda(level), "OBX^1^5")
    assert document is not None
    assert document.level == level
    assert document.document_id == "1.2.3^X9"
    assert document.replaces == "1.2.2"
    assert document.type_code == "11490-0"
    assert document.effective_time == "20260110161500+0100"
    assert document.record_target_ids == (("1.2.250.1.213.1.4.10", "1"), ("1.2.9", "IPP7"))


def test_a_placeholder_is_no_cda() -> None:
    text = base64.b64encode("Document médical au format CDA".encode()).decode()
    assert read_cda(decode_base64(text, "OBX^1^5"), "OBX^1^5") is None


def test_base64_without_padding_decodes() -> None:
    text = base64.b64encode(cda(1)).decode().rstrip("=")
    assert read_cda(decode_base64(text, "OBX^1^5"), "OBX^1^5") is not None


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_cut_base64_is_a_truncated_document(cut: int) -> None:
    text = base64.b64encode(cda(3)).decode().rstrip("=")
    with pytest.raises(Refusal) as refused:
        read_cda(decode_base64(text[: len(text) // 2 + cut], "OBX^2^5"), "OBX^2^5")
    assert (refused.value.ack_code, refused.value.reason) == ("AE", "truncated_base64")
    assert refused.value.location == "OBX^2^5"


def test_not_base64() -> None:
    with pytest.raises(Refusal) as refused:
        decode_base64("<ClinicalDocument>", "OBX^1^5")
    assert refused.value.reason == "bad_base64"


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE ClinicalDocument [<!ENTITY x "boom">]>',
        '<!DOCTYPE ClinicalDocument SYSTEM "http://example.invalid/cda.dtd">',
    ],
)
def test_no_dtd_no_entity(prolog: str) -> None:
    with pytest.raises(Refusal) as refused:
        read_cda(cda(1, prolog=prolog), "OBX^1^5")
    assert refused.value.reason == "cda_forbidden_xml"


def test_broken_xml_that_is_complete() -> None:
    with pytest.raises(Refusal) as refused:
        read_cda(cda(1).replace(b"<code ", b"<code <"), "OBX^1^5")
    assert refused.value.reason == "bad_cda"


def test_a_structured_body_without_coded_entries_is_not_level_3() -> None:
    document = read_cda(cda(3).replace(b"<entry/>", b"<text>prose</text>"), "OBX^1^5")
    assert document is not None and document.level == 1


def test_a_body_neither_structured_nor_not() -> None:
    document = read_cda(cda(1).replace(b"nonXMLBody", b"otherBody"), "OBX^1^5")
    assert document is not None and document.level is None
