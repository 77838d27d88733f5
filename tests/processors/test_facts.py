"""processors.facts: the versions of a fact are values (checked_frozen)."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime

from processors.facts import Deposit, Production, StayVersion

AT = datetime.fromisoformat("2023-01-31T23:30:00+00:00")  # 2023-02-01 in Paris


def test_a_version_is_a_value_hashed_on_its_fields_with_its_paris_days_derived() -> None:
    made = [
        lambda: Deposit("e", AT, "11490-0", "P1", "S1", 1, "qualifiee", AT, AT, None),
        lambda: Production("e", AT, "11490-0", "P1", "S1", AT),
        lambda: StayVersion(
            "e",
            AT,
            "P1",
            AT,
            AT,
            "hospitalisation_complete",
            "qualifiee",
            False,
            False,
            False,
            (("R1", None),),
        ),
    ]
    for make in made:
        a, b = make(), make()
        assert a is not b and a == b and hash(a) == hash(b) and len({a, b}) == 1
        derived = [f.name for f in fields(a) if not f.init]
        assert derived and all(getattr(a, name) == date(2023, 2, 1) for name in derived)
    other = Deposit("e", AT, "11490-0", "P1", "S1", 3, "qualifiee", AT, AT, None)
    assert other != made[0]() and hash(other) != hash(made[0]())
