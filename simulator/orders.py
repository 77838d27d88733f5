"""Feed orders: the generated messages as live traffic, as per-topic backfills, or shuffled."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Final, Literal

from simulator.message import SimulatedMessage
from topics.names import DMP, ESTABLISHMENTS, MSS, STAYS

FeedOrder = Literal["live", "backfill", "shuffled"]
LIVE: Final = "live"
BACKFILL: Final = "backfill"
SHUFFLED: Final = "shuffled"
ORDERS: tuple[FeedOrder, ...] = (LIVE, BACKFILL, SHUFFLED)
# The event topics in the order three systems replaying their history would fill them.
BACKFILL_TOPICS = (STAYS, DMP, MSS)


def in_order(
    messages: Iterable[SimulatedMessage], order: FeedOrder, seed: int = 0
) -> Iterable[SimulatedMessage]:
    """`messages` (as `generate` gives them) in `order`, the registry records always first.

    `live` returns them untouched (still lazy: fit for an endless stream). `backfill` and
    `shuffled` read the whole, finite history into a list: every stays message in
    generation order, then every DMP one, then every MSS one; or every event in a random
    order, the same for the same `seed`. Invalid messages are placed like the others.
    """
    if order == LIVE:
        return messages
    if order not in ORDERS:
        raise ValueError(f"unknown feed order {order!r}; use {', '.join(ORDERS)}")
    registry: list[SimulatedMessage] = []
    events: list[SimulatedMessage] = []
    for message in messages:
        (registry if message.topic == ESTABLISHMENTS else events).append(message)
    if order == SHUFFLED:
        # Its own random numbers, unrelated to the generator's for the same seed.
        random.Random(f"sunes.simulator.orders:{seed}").shuffle(events)
    else:
        # A stable sort: each topic keeps the generation order; any other topic comes last.
        rank = {topic: index for index, topic in enumerate(BACKFILL_TOPICS)}
        events.sort(key=lambda m: rank.get(m.topic, len(rank)))
    return registry + events
