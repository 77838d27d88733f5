"""conversion: the scenario fixtures give the events of their README, each valid for its
topic; ids are deterministic; state survives a new converter and is untouched by a refusal;
settings of the mapping change what they say; no input makes `convert` raise."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.store import MemoryStore
from streams.hl7.conversion import Conversion, Hl7Converter, topic_of
from streams.hl7.mapping import DEFAULT_MAPPING, load_mapping, parse_mapping
from topics.names import DMP, MSS, STAYS
from topics.validation import parse_for_topic

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"
SCENARIO = sorted((FIXTURES / "scenario").glob("*.hl7"))
MALFORMED = sorted((FIXTURES / "malformed").glob("*.hl7"))
FINESS = "750000010"
LETTER = "1.2.250.1.999.75.2.1001"


def fixture(name: str) -> bytes:
    return next(p for p in SCENARIO if p.name.startswith(name)).read_bytes()


def run(*names: str, store: MemoryStore | None = None, mapping_text: str | None = None) -> list[Conversion]:  # fmt: skip
    mapping = parse_mapping(mapping_text) if mapping_text else load_mapping()
    converter = Hl7Converter(mapping, store if store is not None else MemoryStore())
    return [converter.convert(fixture(n) if isinstance(n, str) else n) for n in names]


def test_the_scenario_gives_the_events_of_its_readme() -> None:
    conversions = run(*(p.name[:2] for p in SCENARIO))
    types = [[e["type"] for e in c.events] for c in conversions]
    assert types == [
        [],
        ["stay.discharged"],
        ["document.produced", "mss.sent"],
        ["document.deposited"],
        ["mss.sent"],
        ["document.deposited"],
        ["document.produced"],
        ["document.deposited"],
        ["document.deleted"],
        ["document.produced", "document.produced", "mss.sent"],
        ["document.deposited", "document.deposited"],
        ["document.produced"],
        ["document.deposit_failed"],
        [],
        ["stay.discharged"],
        ["stay.discharge_cancelled"],
    ]
    assert all(c.ack_code == "AA" for c in conversions)
    for conversion in conversions:
        for event in conversion.events:
            assert event["finess"] == FINESS
            parse_for_topic(orjson.dumps(event), topic_of(event))  # raises if invalid


def test_the_discharge_takes_what_the_admission_said() -> None:
    _, discharge = run("01", "02")
    (stay,) = discharge.events
    assert stay["admitted_at"] == "2026-01-05T08:00:00+01:00"  # ZBE-2 of the A01
    assert stay["discharged_at"] == "2026-01-10T16:00:00+01:00"  # PV1-45
    assert stay["surgical"] is True  # unit CHIR
    assert stay["ins_status"] == "qualifiee"
    assert stay["patient_id"] == "00012345"
    assert stay["correspondents"] == [
        {"rpps": "10000023084", "mss_address": "dr.agnes@medecin.mssante.fr"}
    ]


def test_the_zam_carries_what_the_document_message_said() -> None:
    _, deposit, _, replacement = run("03", "04", "05", "06")
    (first,) = deposit.events
    assert first["document_id"] == LETTER
    assert (first["cda_level"], first["ins_status"], first["replaces"]) == (1, "qualifiee", None)
    assert first["deposited_at"] == "2026-01-10T16:35:00+01:00"  # the ZAM's MSH-7
    assert first["stay_id"] == "26000101" and first["type_code"] == "11490-0"
    (second,) = replacement.events
    assert second["replaces"] == LETTER
    assert second["cda_level"] == 3


def test_a_refused_deposit_keeps_the_dmp_reason() -> None:
    _, refused = run("12", "13")
    assert refused.events[0]["reason"] == "DMPClosed"
    assert refused.events[0]["document_id"] == "1.2.250.1.999.75.2.3001"


def test_a_zam_after_a_restart_finds_its_document() -> None:
    store = MemoryStore()
    run("03", store=store)
    (deposit,) = run("04", store=store)  # a new converter over the same store
    assert [e["type"] for e in deposit.events] == ["document.deposited"]


def test_a_resent_message_gives_the_same_events_another_message_other_ids() -> None:
    store = MemoryStore()
    first, again = run("03", "03", store=store)
    assert first.events == again.events
    other = fixture("03").replace(b"|DOC0001|", b"|DOC0099|")
    (renumbered,) = run(other, store=store)
    assert {e["event_id"] for e in renumbered.events}.isdisjoint(
        e["event_id"] for e in first.events
    )


def test_a_refused_message_changes_no_state() -> None:
    store = MemoryStore()
    run("01", store=store)
    before = dict(store.data)
    broken = fixture("03").replace(b"|QUAL", b"|WHAT")  # PID-32 of no table
    (refused,) = run(broken, store=store)
    assert (refused.ack_code, refused.reason, refused.location) == (
        "AE", "unknown_identity_reliability", "PID^1^32",
    )  # fmt: skip
    assert store.data == before


def test_the_same_control_id_from_another_sender_is_another_message() -> None:
    store = MemoryStore()
    run("03", store=store)
    zam = fixture("04").replace(b"|DPI-SUNES|CH-SUNES|", b"|DPI-AUTRE|CH-SUNES|")
    (answer,) = run(zam, store=store)
    assert answer.reason == "zam_unknown_control_id"


def test_a_deposit_of_a_body_that_is_no_cda_has_no_level() -> None:
    placeholder = b"RG9jdW1lbnQgbcOpZGljYWwgYXUgZm9ybWF0IENEQQ"  # "Document médical au format CDA"
    text = fixture("03")
    start = text.index(b"Base64^") + len(b"Base64^")
    message = text[:start] + placeholder + text[text.index(b"|", start) :]
    produced, deposit = run(message, "04")
    assert [e["type"] for e in produced.events] == ["document.produced", "mss.sent"]
    assert produced.events[1]["attachments"][0]["cda_level"] is None
    assert (deposit.ack_code, deposit.reason) == ("AE", "cda_level_unknown")


VALI_QUALIFIED = DEFAULT_MAPPING.replace(
    'time_zone = "Europe/Paris"',
    'time_zone = "Europe/Paris"\n[identity]\nreliability = { VALI = "qualifiee", QUAL = "qualifiee" }',
)


@pytest.mark.parametrize(
    ("reliability", "mapping_text", "status"),
    [
        (b"VALI", None, "validee"),
        (b"VALI", VALI_QUALIFIED, "qualifiee"),
        (b"", None, "provisoire"),
        (b"PROV", None, "provisoire"),
    ],
)
def test_ins_status_is_a_setting(reliability: bytes, mapping_text: str | None, status: str) -> None:
    admission = fixture("01").replace(b"|QUAL", b"|" + reliability)
    discharge = fixture("02").replace(b"|QUAL", b"|" + reliability)
    _, converted = run(admission, discharge, mapping_text=mapping_text)
    assert converted.events[0]["ins_status"] == status


def test_qualified_without_an_ins_reads_as_validated() -> None:
    ins = b"~190017500000001^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS^^20100101"
    assert ins in fixture("02")
    no_ins = fixture("02").replace(ins, b"")
    _, converted = run("01", no_ins)
    assert converted.events[0]["ins_status"] == "validee"


def test_summer_time_and_another_zone() -> None:
    summer = fixture("02").replace(b"20260110160000", b"20260710160000")
    summer = summer.replace(b"20260110160500", b"20260710160500")
    _, converted = run("01", summer)
    assert converted.events[0]["discharged_at"] == "2026-07-10T16:00:00+02:00"
    reunion = DEFAULT_MAPPING.replace("Europe/Paris", "Indian/Reunion")
    _, converted = run("01", summer, mapping_text=reunion)
    assert converted.events[0]["discharged_at"] == "2026-07-10T16:00:00+04:00"


def test_a_unit_of_the_mapping_sets_the_stay_kind() -> None:
    admission = fixture("14").replace(b"^UF^^^MED", b"^UF^^^HDJ")
    _, converted = run(admission, "15")
    assert converted.events[0]["stay_kind"] == "hospitalisation_partielle"
    assert converted.events[0]["surgical"] is False


def test_refusals_of_adt_say_what_is_missing() -> None:
    (alone,) = run("02")
    assert (alone.ack_code, alone.reason, alone.location) == ("AE", "unknown_admission", "PV1^1^44")
    elsewhere = fixture("01").replace(b"|CH-SUNES|SUNES|", b"|CH-AUTRE|SUNES|")
    (unknown,) = run(elsewhere)
    assert (unknown.reason, unknown.location) == ("unknown_facility", "MSH^1^4")
    assert "CH-AUTRE" in (unknown.detail or "")


def test_inbound_mssante_documents_are_ignored_by_msh21() -> None:
    inbound = fixture("03").replace(b"2.1^CISIS_CDA_HL7_V2", b"1.1^CISIS_CDA_HL7_LPS")
    (ignored,) = run(inbound)
    assert (ignored.ack_code, ignored.events, ignored.reason) == ("AA", [], "lps_inbound_document")


def test_the_patient_mailbox_never_shows_the_ins() -> None:
    (oru,) = run("10")
    mail = next(e for e in oru.events if e["type"] == "mss.sent")
    assert mail["channel"] == "citoyenne"
    assert "190017500000001" not in orjson.dumps(oru.events).decode()
    assert mail["patient_id"] == "00012345"  # read in the CDA: PID-3 holds the INS only


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_fixtures_are_refused_with_their_reason(path: Path) -> None:
    expected = {
        "no_msh": ("AR", "no_msh"),
        "bad_encoding_characters": ("AR", "bad_encoding_characters"),
        "unknown_trigger": ("AR", "unknown_trigger"),
        "bad_charset": ("AR", "bad_charset"),
        "zam_unknown_control_id": ("AE", "zam_unknown_control_id"),
        "truncated_base64": ("AE", "truncated_base64"),
    }[path.stem]
    (conversion,) = run(path.read_bytes())
    assert (conversion.ack_code, conversion.reason) == expected
    assert conversion.events == [] and conversion.detail and conversion.location


def test_topic_of() -> None:
    assert [topic_of({"type": t}) for t in ("stay.discharged", "document.deleted", "mss.sent")] == [
        STAYS, DMP, MSS,
    ]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([p.read_bytes() for p in SCENARIO]),
    st.integers(min_value=0, max_value=4000),
    st.binary(max_size=40),
)
def test_no_input_makes_convert_raise(message: bytes, cut: int, junk: bytes) -> None:
    converter = Hl7Converter(load_mapping(), MemoryStore())
    for raw in (message[:cut], message[:cut] + junk + message[cut:], junk):
        conversion = converter.convert(raw)
        assert conversion.ack_code in ("AA", "AE", "AR")
        assert conversion.reason != "internal_error"  # a refusal that says why, never a crash
        if conversion.refused:
            assert conversion.events == [] and conversion.detail


def test_the_committed_fixtures_are_what_their_generator_writes() -> None:
    from tests.fixtures.hl7 import generate

    for folder, messages in (
        ("scenario", generate.scenario()),
        ("malformed", generate.malformed()),
    ):
        assert {p.name: p.read_bytes() for p in (FIXTURES / folder).glob("*.hl7")} == messages
