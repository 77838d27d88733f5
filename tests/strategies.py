"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(scalars: st.SearchStrategy[Any], size: int, leaves: int) -> Any:
    """Any JSON value built of `scalars`: arrays and objects of at most `size` items."""
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=size)
            | st.dictionaries(st.text(max_size=2 * size), children, max_size=size)
        ),
        max_leaves=leaves,
    )
