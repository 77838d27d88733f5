"""mapping: the example file and the built-in default are valid; every error names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.hl7.mapping import MappingError, load_mapping, parse_mapping

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "hl7-mapping.example.toml"
FACILITY = '[[facility]]\nsending_facility = "A"\nfiness = "750000010"\n'


def test_the_documented_example_is_valid() -> None:
    mapping = load_mapping(EXAMPLE)
    facility = mapping.facility("ANY-APP", "CH-EXEMPLE")
    assert facility is not None and facility.finess == "750000010"
    assert facility.unit_stay_kinds["HDJ"] == "hospitalisation_partielle"
    assert mapping.reliability["VALI"] == "validee"
    assert str(mapping.time_zone) == "Europe/Paris"


def test_the_built_in_default_serves_the_corpus_and_the_fixtures() -> None:
    mapping = load_mapping()
    assert mapping.facility("GAM", "CHU-X") is not None
    assert mapping.facility("GAM-SUNES", "CH-SUNES") is not None
    assert mapping.by_finess("120459876") is not None
    assert mapping.reliability["VALI"] == "validee"  # the safe default


def test_defaults_when_keys_are_absent() -> None:
    mapping = parse_mapping(FACILITY)
    assert mapping.stay_kinds["E"] == "urgence"
    assert mapping.missing_reliability == "provisoire"
    assert mapping.qualified_needs_ins is True


def test_a_facility_of_one_application_wins_over_one_of_any() -> None:
    text = FACILITY + '[[facility]]\nsending_facility = "A"\nsending_application = "LAB"\n'
    mapping = parse_mapping(text + 'finess = "130000019"\n')
    assert mapping.facility("LAB", "A").finess == "130000019"  # type: ignore[union-attr]
    assert mapping.facility("GAM", "A").finess == "750000010"  # type: ignore[union-attr]
    assert mapping.facility("GAM", "B") is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('time_zone = "Mars/Olympus"', "time_zone"),
        ("colour = 1", "colour"),
        ('[[facility]]\nsending_facility = "A"\nfiness = "12"\n', "facility[1].finess"),
        ('[[facility]]\nfiness = "750000010"\n', "facility[1].sending_facility"),
        (FACILITY + "surgical_units = [1]\n", "facility[1].surgical_units"),
        (FACILITY + 'colour = "red"\n', "facility[1].colour"),
        (FACILITY + '[facility.unit_stay_kinds]\nHDJ = "day"\n', "facility[1].unit_stay_kinds.HDJ"),
        (FACILITY + FACILITY, "facility[2].sending_facility"),
        ('[stay_kinds]\nI = "hospital"\n', "stay_kinds.I"),
        ('[identity]\nreliability = { VALI = "sure" }\n', "identity.reliability.VALI"),
        ('[identity]\nmissing = "none"\n', "identity.missing"),
        ('[identity]\nqualified_needs_ins = "yes"\n', "identity.qualified_needs_ins"),
        ("facility = 3", "facility"),
    ],
)
def test_errors_name_the_key(text: str, key: str) -> None:
    with pytest.raises(MappingError) as error:
        parse_mapping(text)
    assert f"HL7 mapping: {key}: expected " in str(error.value)


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("facility = [", encoding="utf-8")
    with pytest.raises(MappingError, match="is not valid TOML"):
        load_mapping(path)
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "absent.toml")
