"""Feed orders: the same messages, registry first, as live traffic, backfills or shuffled."""

from __future__ import annotations

from collections import Counter

import pytest

from simulator import SimulatedMessage, SimulationConfig, generate
from simulator.orders import (
    BACKFILL,
    BACKFILL_TOPICS,
    LIVE,
    ORDERS,
    SHUFFLED,
    FeedOrder,
    in_order,
)
from streams.cli import simulate as simulate_command
from topics.names import ESTABLISHMENTS

CONFIG = SimulationConfig(establishments=3, stays_per_day=6, days=20, seed=3)


@pytest.fixture(scope="module")
def messages() -> list[SimulatedMessage]:
    return list(generate(CONFIG))


def ordered(
    messages: list[SimulatedMessage], order: FeedOrder, seed: int = 3
) -> list[SimulatedMessage]:
    return list(in_order(messages, order, seed))


def test_the_cli_offers_every_order() -> None:
    assert simulate_command.ORDERS == ORDERS


@pytest.mark.parametrize("order", ORDERS)
def test_every_order_keeps_the_messages_and_puts_the_registry_first(
    messages: list[SimulatedMessage], order: FeedOrder
) -> None:
    result = ordered(messages, order)
    assert Counter(result) == Counter(messages)
    assert any(not m.valid for m in result)  # the invalid messages are kept, too
    registry = sum(1 for m in messages if m.topic == ESTABLISHMENTS)
    assert registry == CONFIG.establishments
    assert all(m.topic == ESTABLISHMENTS for m in result[:registry])
    assert all(m.topic != ESTABLISHMENTS for m in result[registry:])


def test_live_is_the_generated_order(messages: list[SimulatedMessage]) -> None:
    assert ordered(messages, LIVE) == messages


def test_live_stays_lazy() -> None:
    endless = generate(SimulationConfig(establishments=2, days=None, seed=1))
    assert next(iter(in_order(endless, LIVE))).topic == ESTABLISHMENTS


def test_backfill_gives_every_stay_then_every_dmp_then_every_mss_message(
    messages: list[SimulatedMessage],
) -> None:
    events = [m for m in ordered(messages, BACKFILL) if m.topic != ESTABLISHMENTS]
    topics = [m.topic for m in events]
    # Topic by topic, without going back to an earlier one.
    runs = [t for i, t in enumerate(topics) if i == 0 or topics[i - 1] != t]
    assert runs == list(BACKFILL_TOPICS)
    for topic in BACKFILL_TOPICS:  # each topic in the order generated
        assert [m for m in events if m.topic == topic] == [m for m in messages if m.topic == topic]
    invalid_topics = {m.topic for m in events if not m.valid}
    assert len(invalid_topics) > 1  # the invalid messages are placed with their topic


def test_shuffled_is_deterministic_for_a_seed_and_differs_from_live(
    messages: list[SimulatedMessage],
) -> None:
    shuffled = ordered(messages, SHUFFLED)
    assert ordered(messages, SHUFFLED) == shuffled
    assert ordered(messages, SHUFFLED, seed=4) != shuffled
    assert shuffled != messages
    assert shuffled != ordered(messages, BACKFILL)
    # Spread over the whole history: the first tenth draws from far beyond the live tenth.
    tenth = len(messages) // 10
    assert Counter(shuffled[:tenth]) != Counter(messages[:tenth])


def test_an_unknown_order_is_refused(messages: list[SimulatedMessage]) -> None:
    with pytest.raises(ValueError, match="unknown feed order 'random'"):
        in_order(messages, "random")  # type: ignore[arg-type]
