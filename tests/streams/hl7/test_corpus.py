"""Every message of the ANS corpus (../shared/hl7v2/ans, read in place, never copied) is
converted or refused with the outcome its catalogue predicts (CATALOGUE.md, MAPPING.md §3).

Each message is converted on a fresh state, as the first message a listener would see; the
chains the corpus holds (admission → discharge, ORU → its ZAM) are converted in order. The
CDA readings are checked against catalogue.json, which was extracted by another tool.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from processors.store import MemoryStore
from streams.hl7.cda import decode_base64, read_cda
from streams.hl7.conversion import Conversion, Hl7Converter
from streams.hl7.mapping import load_mapping
from streams.hl7.parsing import parse_message

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "hl7v2"
CORPUS = SHARED / "ans"

# The catalogue's prediction for each message (its ID in CATALOGUE.md §4): the event types,
# or ("AE"/"AR", reason), or ("ignored", reason). Why, in MAPPING.md: §3 (which messages are
# complete enough), §1.2 (routing), §0 (INS only in document PID-3, placeholders, ZAM link).
ACK = ("ignored", "acknowledgement")
STATE = ("ignored", "adt_state_only")
LPS = ("ignored", "lps_inbound_document")
NO_PATIENT = ("AE", "unknown_patient")  # PID-3 = INS only, no IPP root in the CDA (§0.2)
NO_ID = ("AE", "no_document_id")  # ORU with a placeholder body: no ClinicalDocument/id (§0.3)
NO_ZAM_ORIGINAL = ("AE", "zam_unknown_control_id")  # the ORU it names was refused (§2.5)
DELETED = ["document.deleted"]
PREDICTED: dict[str, Any] = {
    "M01": STATE, "M02": ("AE", "unknown_admission"), "M03": STATE, "M04": STATE,
    "M05": STATE, "M06": STATE, "M07": STATE,
    "M08": ACK, "M09": NO_PATIENT, "M10": ACK, "M11": DELETED, "M12": NO_PATIENT,
    "M13": NO_PATIENT,
    "M14": ["mss.sent", "mss.sent"],  # replacement: its ZAM will carry it; the mails go now
    "M15": DELETED, "M16": ["document.produced", "mss.sent", "mss.sent"],
    "M17": ACK, "M18": LPS, "M19": ACK, "M20": LPS, "M21": ACK, "M22": LPS, "M23": LPS,
    "M24": ACK, "M25": NO_PATIENT, "M26": ACK, "M27": NO_ID, "M28": ACK, "M29": NO_PATIENT,
    "M30": ACK, "M31": DELETED, "M32": NO_PATIENT, "M33": NO_PATIENT, "M34": ACK,
    "M35": ["mss.sent", "mss.sent"], "M36": NO_ID, "M37": ACK, "M38": DELETED * 2,
    "M39": NO_ID, "M40": ("ignored", "mss_read_receipt"), "M41": NO_ZAM_ORIGINAL,
    "M42": ("ignored", "mss_receipt"), "M43": ACK, "M44": NO_ID, "M45": ACK,
    "M46": ["mss.sent", "mss.sent"], "M47": NO_ID, "M48": ACK, "M49": DELETED * 2,
    "M50": NO_ID, "M51": ("ignored", "mss_read_receipt"), "M52": NO_ZAM_ORIGINAL,
    "M53": ("ignored", "mss_receipt"), "M54": ACK, "M55": NO_ID, "M56": ACK, "M57": LPS,
    "M58": LPS, "M59": ACK, "M60": LPS, "M61": ACK, "M62": LPS, "M63": ACK, "M64": LPS,
    "M65": LPS,
    "X01": ACK, "X02": ACK, "X03": ACK, "X04": ACK, "X05": ACK,
    "X06": ("ignored", "teleradiology"),
}  # fmt: skip


def _require_corpus() -> None:
    assert CORPUS.is_dir(), (
        f"the ANS corpus is missing: expected {CORPUS} (../shared/hl7v2/ans beside the "
        "repository); these tests never skip"
    )


def _files_by_id() -> dict[str, Path]:
    _require_corpus()
    rows = re.findall(
        r"^\| ([MX]\d\d) \| `([^`]+)` \|", (SHARED / "CATALOGUE.md").read_text(), re.M
    )
    found: dict[str, Path] = {}
    for ident, name in rows:
        path = CORPUS / name
        if ident not in found and path.is_file():
            found[ident] = path
    return found


FILES = _files_by_id()


def _outcome(conversion: Conversion) -> Any:
    if conversion.refused:
        return (conversion.ack_code, conversion.reason)
    if not conversion.events:
        return ("ignored", conversion.reason)
    return [event["type"] for event in conversion.events]


def _convert(*idents: str) -> list[Conversion]:
    converter = Hl7Converter(load_mapping(), MemoryStore())
    return [converter.convert(FILES[ident].read_bytes()) for ident in idents]


def test_the_catalogue_names_71_messages_and_each_has_a_prediction() -> None:
    assert len(FILES) == 71
    assert set(FILES) == set(PREDICTED)
    on_disk = {p for p in CORPUS.rglob("*") if p.is_file()}
    assert on_disk == set(FILES.values())


@pytest.mark.parametrize("ident", sorted(PREDICTED))
def test_each_message_converts_or_is_refused_as_predicted(ident: str) -> None:
    (conversion,) = _convert(ident)
    assert _outcome(conversion) == PREDICTED[ident]
    if conversion.refused:
        assert conversion.detail and conversion.location
    assert conversion.header is not None
    assert conversion.control_id == conversion.header.control_id


def test_a_discharge_after_its_admission_is_a_stay_discharged() -> None:
    """MAPPING §2.1: M01 → M02 yields the stay; admitted_at from the A01's ZBE-2, the
    discharge from EVN-6 (PV1-45 empty), VALI read as validee (the safe default)."""
    _, discharge = _convert("M01", "M02")
    (event,) = discharge.events
    assert event["stay_id"] == "24000006"
    assert event["patient_id"] == "000003"
    assert event["admitted_at"] == "2024-03-06T11:00:00+01:00"
    assert event["discharged_at"] == "2024-03-06T11:11:54+01:00"
    assert event["ins_status"] == "validee"
    assert event["stay_kind"] == "hospitalisation_complete"
    assert event["dmp_opposition"] is False  # ZFA-9 INO
    assert event["surgical"] is True  # admitted in UF 6268 (Chir V), a surgical unit of the mapping
    assert event["correspondents"] == []


def test_the_consent_admission_gives_its_correspondent_to_the_discharge() -> None:
    """M03 → M02: ROL-4 RPPS 10000023084 (no MSSanté address), PV1-44 as admission."""
    _, discharge = _convert("M03", "M02")
    (event,) = discharge.events
    assert event["correspondents"] == [{"rpps": "10000023084", "mss_address": None}]
    assert event["admitted_at"] == "2024-03-06T11:00:00+01:00"


def test_an_opposition_to_feeding_the_dmp_is_kept_for_the_discharge() -> None:
    """M05 (…OppositionAlimentation) has ZFA-9 = IO, M03 INO: the stay keeps which."""
    for ident, opposed in (("M05", True), ("M03", False)):
        converter = Hl7Converter(load_mapping(), MemoryStore())
        assert converter.convert(FILES[ident].read_bytes()).reason == "adt_state_only"
        stay_id = parse_message(FILES[ident].read_bytes()).segments[2].get(18)
        facts = converter.state.stay("340000017", stay_id)
        assert facts is not None
        assert facts["dmp_opposition"] is opposed


@pytest.mark.parametrize(("original", "zam"), [("M44", "M41"), ("M55", "M52")])
def test_a_zam_whose_original_was_refused_finds_nothing(original: str, zam: str) -> None:
    first, answer = _convert(original, zam)
    assert first.reason == "no_document_id"
    assert (answer.ack_code, answer.reason, answer.location) == (
        "AE",
        "zam_unknown_control_id",
        "OBX^1^4",
    )


def test_the_segur_biology_report_reads_its_ipp_in_the_cda() -> None:
    """MAPPING §2.3 verdict for M16: document 1.2.250.1.213.1.1.9, 11502-2, FINESS 120459876
    from PRT-8.10 1120459876, produced 2021-01-04T16:05:27+01:00, patient from the CDA."""
    (conversion,) = _convert("M16")
    produced = conversion.events[0]
    assert produced["document_id"] == "1.2.250.1.213.1.1.9"
    assert produced["type_code"] == "11502-2"
    assert produced["finess"] == "120459876"
    assert produced["produced_at"] == "2021-01-04T16:05:27+01:00"
    assert produced["patient_id"] == "1234567890121"
    assert produced["stay_id"] == "405660"
    citoyenne, pro = sorted(conversion.events[1:], key=lambda e: e["channel"])
    assert (citoyenne["channel"], pro["channel"]) == ("citoyenne", "pro")
    assert pro["recipient"] == "01234567897"  # IDNPS 801234567897 → RPPS
    assert pro["attachments"] == [
        {
            "document_id": "1.2.250.1.213.1.1.9",
            "type_code": "11502-2",
            "cda_level": 3,
            "ins_status": "validee",
        }
    ]
    assert "279035121518989" not in json.dumps(conversion.events)  # the INS never leaves


def _catalogue() -> list[dict[str, Any]]:
    data = json.loads((SHARED / "catalogue.json").read_text())
    return list(data["messages"])


def _document_obx(path: Path, numbers: list[str]) -> list[Any]:
    by_number = {o.get(1): o for o in parse_message(path.read_bytes()).all("OBX")}
    return [by_number[n] for n in numbers]


def test_every_embedded_cda_reads_as_the_catalogue_decoded_it() -> None:
    checked = 0
    for entry in _catalogue():
        documents = entry.get("documents") or []
        if not documents:
            continue
        obxs = _document_obx(CORPUS / entry["file"], [d["OBX-1"] for d in documents])
        for obx, documented in zip(obxs, documents, strict=True):
            cda = read_cda(decode_base64(obx.get(5, 5), "OBX^1^5"), "OBX^1^5")
            expected = documented["cda"]
            if expected["placeholder"]:
                assert cda is None, entry["file"]
                continue
            assert cda is not None, entry["file"]
            doc_id = expected["doc_id"]
            assert cda.document_id == "^".join(
                v for v in (doc_id["root"], doc_id.get("extension")) if v
            )
            assert cda.level == {"nonXMLBody": 1, "structuredBody": 3}[expected["body"]]
            assert expected["body"] == "nonXMLBody" or expected["entry_count"] > 0
            assert cda.record_target_ids == tuple(
                (i["root"], i["extension"]) for i in expected["recordTarget_ids"]
            )
            parent = (expected.get("relatedDocument") or {}).get("parent_id")
            assert cda.replaces == (parent["root"] if parent else None)
            checked += 1
    assert checked == 20  # CATALOGUE §3: 20 CDA instances in 16 messages


def test_the_small_tilde_files_parse_with_their_own_repetition_separator() -> None:
    """CATALOGUE §11 #2: MSH-2 ^˜\\& (U+02DC) in M35, M36, M38, M39, M44."""
    for ident in ("M35", "M36", "M38", "M39", "M44"):
        message = parse_message(FILES[ident].read_bytes())
        assert message.header.encoding_characters == "^\u02dc\\&"
        pid = message.first("PID")
        assert pid is not None
        assert len(pid.repetitions(11)) == 2  # the address and its BDL repetition


@pytest.mark.parametrize("ident", sorted(PREDICTED))
def test_python_hl7_reads_the_fields_our_segments_hold(ident: str) -> None:
    message = parse_message(FILES[ident].read_bytes())
    assert [tuple(str(f) for f in seg) for seg in message.message] == [
        s.fields for s in message.segments
    ]
