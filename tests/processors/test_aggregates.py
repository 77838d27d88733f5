"""processors.aggregates: totals held under keys whose strings are shared."""

from __future__ import annotations

from processors.aggregates import Aggregates, Contribution, RateKey, UnitKey
from processors.codec import decode_contribution, encode_contribution


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
    months = [key.month for key in aggregates.totals if isinstance(key, RateKey | UnitKey)]
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
