"""processors.aggregates: held by kind, they read exactly what one flat sum of the contributions
holds, under keys whose strings are shared."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.aggregates import (
    NAMED,
    SENT,
    AggregateKey,
    Aggregates,
    Contribution,
    DischargeDay,
    EventDay,
    PeopleKey,
    RateKey,
    UnitKey,
)
from processors.codec import decode_contribution, encode_contribution

DAYS = ["2023-01-31", "2023-02-01", "2023-02-28", "2023-03-15", "2023-04-19"]
MONTHS = ["2023-01", "2023-02"]

keys = st.one_of(
    st.builds(RateKey, st.sampled_from(["den", "num"]), st.sampled_from(["DS1.1", "DS1.3"]),
              st.sampled_from(MONTHS)),
    st.builds(PeopleKey, st.sampled_from([NAMED, SENT]), st.sampled_from(MONTHS),
              st.sampled_from(["R0", "R1"])),
    st.builds(DischargeDay, st.sampled_from(DAYS)),
    st.builds(EventDay, st.sampled_from(DAYS), st.just("now")),
    st.builds(UnitKey, st.sampled_from(["DS1.1", "DS4.1"]), st.sampled_from(MONTHS),
              st.sampled_from(["no_letter", "late"]), st.sampled_from(DAYS)),
)  # fmt: skip
contributions = st.dictionaries(keys, st.integers(1, 3), max_size=6)
# A unit's successive contributions: each replaces the one before (a contribution may be
# taken out that was never put in, as a unit read twice would: the sums go below zero).
histories = st.lists(st.tuples(contributions, contributions, st.booleans()), max_size=30)


def flat_sum(moves: list[tuple[Contribution, Contribution, bool]]) -> dict[AggregateKey, int]:
    totals: dict[AggregateKey, int] = {}
    for old, new, _ in moves:
        for contribution, sign in ((old, -1), (new, 1)):
            for key, value in contribution.items():
                totals[key] = totals.get(key, 0) + sign * value
    return {key: value for key, value in totals.items() if value}


@settings(max_examples=200)
@given(moves=histories)
def test_every_reader_reads_what_the_flat_sum_holds(
    moves: list[tuple[Contribution, Contribution, bool]],
) -> None:
    aggregates = Aggregates()
    for old, new, via_add in moves:
        if via_add:
            aggregates.add(old, -1)
            aggregates.add(new)
        else:
            aggregates.replace(old, new)
    flat = flat_sum(moves)
    positive = {key: value for key, value in flat.items() if value > 0}
    assert aggregates.totals == flat
    assert aggregates.copy() == aggregates and aggregates.copy().totals == flat
    assert dict(aggregates.rates()) == {k: v for k, v in positive.items() if isinstance(k, RateKey)}
    assert dict(aggregates.uncounted()) == {
        k: v for k, v in positive.items() if isinstance(k, UnitKey)
    }
    for role in (NAMED, SENT):
        expected: dict[str, set[str]] = {}
        for k in positive:
            if isinstance(k, PeopleKey) and k.role == role:
                expected.setdefault(k.month, set()).add(k.rpps)
        assert aggregates.people_by_month(role) == expected
    discharges = [k.day for k in positive if isinstance(k, DischargeDay)]
    events = [k.day for k in positive if isinstance(k, EventDay)]
    assert aggregates.latest_discharge_day() == max(discharges, default=None)
    assert aggregates.latest_event_day() == max(events, default=None)
    for indicator in ("DS1.1", "DS4.1"):
        for month in MONTHS:
            for reason, days in aggregates.uncounted_of(indicator, month).items():
                mine = {
                    k.deadline: v
                    for k, v in positive.items()
                    if isinstance(k, UnitKey) and k[:3] == (indicator, month, reason)
                }
                assert dict(days.positive()) == mine
                assert days.total == sum(mine.values())
                assert days.latest() == max(mine, default=None)


def test_the_latest_day_survives_its_count_falling_to_zero() -> None:
    aggregates = Aggregates()
    aggregates.add({DischargeDay("2023-03-01"): 1, DischargeDay("2023-03-09"): 2})
    aggregates.add({DischargeDay("2023-03-09"): 1}, -1)
    assert aggregates.latest_discharge_day() == "2023-03-09"
    aggregates.add({DischargeDay("2023-03-09"): 1}, -1)
    assert aggregates.latest_discharge_day() == "2023-03-01"
    aggregates.add({DischargeDay("2023-03-01"): 1}, -1)
    assert aggregates.latest_discharge_day() is None
    assert aggregates.totals == {}


def _decoded(month: str) -> Contribution:
    """A contribution as the store gives it back: fresh strings in every key."""
    return decode_contribution(
        encode_contribution(
            {RateKey("den", "ds11", month): 1, UnitKey("ds11", month, "late", f"{month}-19"): 1}
        )
    )


def test_totals_share_the_strings_of_their_keys() -> None:
    aggregates = Aggregates()
    aggregates.add(_decoded("2023-04"))
    aggregates.add(_decoded("2023-05"))
    months = sorted(key.month for key in aggregates.totals if isinstance(key, RateKey | UnitKey))
    assert months == ["2023-04", "2023-04", "2023-05", "2023-05"]
    assert months[0] is months[1] and months[2] is months[3]
    indicators = {id(key.indicator) for key in aggregates.totals if isinstance(key, UnitKey)}
    indicators |= {id(key.indicator) for key in aggregates.totals if isinstance(key, RateKey)}
    assert len(indicators) == 1


def test_add_and_take_out_as_before() -> None:
    aggregates = Aggregates()
    first, again = _decoded("2023-04"), _decoded("2023-04")
    aggregates.add(first)
    aggregates.add(again)
    assert aggregates.totals == {key: 2 for key in first}
    aggregates.replace(first, _decoded("2023-05"))
    assert aggregates.totals == {**{key: 1 for key in first}, **_decoded("2023-05")}
    aggregates.add(again, -1)
    aggregates.add(_decoded("2023-05"), -1)
    assert aggregates.totals == {}
