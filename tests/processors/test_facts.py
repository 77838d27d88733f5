"""processors.facts: the versions of a fact are values (Final fields, equal and hashed on them)."""

from __future__ import annotations

import ast
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from mypy import api

from processors.facts import Deposit, Failure, Production, StayVersion
from processors.reach import DocumentReach
from processors.units import Outcome

AT = datetime.fromisoformat("2023-01-31T23:30:00+00:00")  # 2023-02-01 in Paris
ROOT = Path(__file__).resolve().parents[2]
# every value class of processors/, and how it is imported
VALUES = {
    StayVersion: "processors.facts",
    Production: "processors.facts",
    Deposit: "processors.facts",
    Failure: "processors.facts",
    DocumentReach: "processors.reach",
    Outcome: "processors.units",
}


def _stay_version(event_id: str = "e") -> StayVersion:
    return StayVersion(
        event_id, AT, "P1", AT, AT, "hospitalisation_complete", "qualifiee", False, False, False,
        (("R1", None),),
    )  # fmt: skip


def test_a_version_is_a_value_hashed_on_its_fields_with_its_paris_days_derived() -> None:
    made = [
        lambda: Deposit("e", AT, "11490-0", "P1", "S1", 1, "qualifiee", AT, AT, None),
        lambda: Production("e", AT, "11490-0", "P1", "S1", AT),
        _stay_version,
    ]
    for make in made:
        a, b = make(), make()
        assert a is not b and a == b and hash(a) == hash(b) and len({a, b}) == 1
        assert a != "not a version" and repr(a).startswith(f"{type(a).__name__}(event_id='e', ")
    deposit = Deposit("e", AT, "11490-0", "P1", "S1", 1, "qualifiee", AT, AT, None)
    assert deposit.produced_day == deposit.deposited_day == date(2023, 2, 1)
    assert Production("e", AT, "11490-0", "P1", "S1", AT).produced_day == date(2023, 2, 1)
    version = _stay_version()
    assert version.discharge_day == version.admission_day == date(2023, 2, 1)
    other = Deposit("e", AT, "11490-0", "P1", "S1", 3, "qualifiee", AT, AT, None)
    assert other != deposit and hash(other) != hash(deposit)
    assert _stay_version("e2") != version
    assert Failure("e", AT, "DMPClosed") == Failure("e", AT, "DMPClosed") != Failure("e", AT, "x")
    assert DocumentReach("S1", deposit, "11490-0") == DocumentReach("S1", deposit, "11490-0")
    assert DocumentReach() != DocumentReach("S1") and Outcome() != Outcome("x")
    assert len({Outcome("x", None, AT.date()), Outcome("x", None, AT.date())}) == 1


def _annotations(cls: type) -> dict[str, str]:
    """The fields a value class declares, and their annotation, read from its source (a
    class compiled by mypyc keeps no __annotations__)."""
    source = ROOT / Path(*VALUES[cls].split(".")).with_suffix(".py")
    (node,) = [
        node
        for node in ast.parse(source.read_text()).body
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__
    ]
    return {
        statement.target.id: ast.unparse(statement.annotation)
        for statement in node.body
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and not statement.target.id.startswith("_")  # derived on first read (values.py)
    }


def _fields(cls: type) -> list[str]:
    return list(_annotations(cls))


def test_every_field_of_a_value_is_final() -> None:
    """What makes mypy refuse an assignment (and mypyc build a read-only attribute)."""
    for cls in VALUES:
        annotations = _annotations(cls)
        assert annotations, cls
        for name, annotation in annotations.items():
            assert annotation.startswith("Final["), (cls.__name__, name, annotation)


def test_mypy_refuses_an_assignment_to_any_field_of_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values are shared (cached, reached, compared before and after a merge): changing
    one in place would change the past. mypy's strict check of processors/ refuses it."""
    lines = [f"from {module} import {cls.__name__}" for cls, module in VALUES.items()]
    expected = 0
    for cls in VALUES:
        lines.append(f"def change_{cls.__name__}(value: {cls.__name__}) -> None:")
        for name in _fields(cls):
            lines.append(f"    value.{name} = value.{name}")
            expected += 1
    snippet = tmp_path / "assigns.py"
    snippet.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(ROOT)  # where mypy finds processors/
    out, err, status = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--strict", "--no-incremental",
         "--follow-imports", "silent", str(snippet)]
    )  # fmt: skip
    assert status == 1, out + err
    refused = re.findall(r'error: Cannot assign to final attribute "(\w+)"', out)
    assert len(refused) == expected, out
