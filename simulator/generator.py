"""Synthetic SUN-ES traffic, deterministic for a seed.

    for message in generate(SimulationConfig(establishments=3, days=30, seed=7)):
        producer.send(message.topic, message.value, key=message.key)

First one `establishment` registry record per FINESS, then the events of every establishment
in roughly chronological order: the events are scheduled on a timeline (each establishment's
clock starts at its own origin, by default its funding window's first day), re-sent
duplicates and broken messages are mixed in, and a bounded shuffle moves each message by at
most `reorder_window` places. With `days=None` the stream never ends: take what you need.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, time

import orjson

from processors.periods import PARIS
from simulator.activity import MINUTE, EstablishmentActivity, Sink
from simulator.config import SimulationConfig
from simulator.invalid import inject_invalid
from simulator.message import DUPLICATE, ESTABLISHMENT, SimulatedMessage
from simulator.ordering import Timeline, bounded_shuffle
from simulator.registry import EstablishmentProfile, build_profiles
from topics.names import ESTABLISHMENTS, TOPIC_OF_TYPE
from topics.records import Event

DAY_SECONDS = 86400.0
# A re-sent event (producer retry after a lost acknowledgement) follows the original by
# a minute to a few hours.
DUPLICATE_DELAY = (1 * MINUTE, 6 * 3600)


def generate(config: SimulationConfig) -> Iterator[SimulatedMessage]:
    """Every message of the simulation, registry records first (see the module doc)."""
    rng = random.Random(config.seed)
    profiles = build_profiles(config, rng)
    for profile in profiles:
        record = profile.record
        yield SimulatedMessage(
            ESTABLISHMENTS, record.finess.encode(), orjson.dumps(record), True, ESTABLISHMENT
        )
    # One random stream per purpose, so that e.g. a new duplicate fraction does not change
    # which stays are generated.
    activity_seeds = [rng.getrandbits(64) for _ in profiles]
    duplicate_rng = random.Random(rng.getrandbits(64))
    invalid_rng = random.Random(rng.getrandbits(64))
    shuffle_rng = random.Random(rng.getrandbits(64))

    timeline: Timeline[SimulatedMessage] = Timeline()
    activities = [
        EstablishmentActivity(profile, config, random.Random(seed), _sink(timeline, profile))
        for profile, seed in zip(profiles, activity_seeds, strict=True)
    ]
    chronological = _chronological(config, activities, timeline, duplicate_rng)
    mixed = inject_invalid(chronological, config.messiness.invalid_fraction, invalid_rng)
    yield from bounded_shuffle(mixed, config.messiness.reorder_window, shuffle_rng)


def _sink(timeline: Timeline[SimulatedMessage], profile: EstablishmentProfile) -> Sink:
    """Schedules an establishment's events at their offset from its own day 0."""
    origin = datetime.combine(profile.origin, time(), PARIS).astimezone(UTC)
    key = profile.record.finess.encode()

    def emit(at: datetime, event: Event) -> None:
        message = SimulatedMessage(
            TOPIC_OF_TYPE[event.type], key, orjson.dumps(event), True, event.type
        )
        timeline.push((at - origin).total_seconds(), message)

    return emit


def _chronological(
    config: SimulationConfig,
    activities: list[EstablishmentActivity],
    timeline: Timeline[SimulatedMessage],
    rng: random.Random,
) -> Iterator[SimulatedMessage]:
    """Day by day: admit the day's patients, then emit what is due before the day ends.

    After the last day, what is still scheduled (late deposits, corrections) follows.
    """
    fraction = config.messiness.duplicate_fraction
    days = itertools.count() if config.days is None else range(config.days)
    for day in days:
        for activity in activities:
            activity.simulate_day(day)
        yield from _due(timeline, (day + 1) * DAY_SECONDS, fraction, rng)
    yield from _due(timeline, math.inf, fraction, rng)


def _due(
    timeline: Timeline[SimulatedMessage], limit: float, fraction: float, rng: random.Random
) -> Iterator[SimulatedMessage]:
    """The messages scheduled before `limit`; some are re-sent later (duplicates)."""
    while (entry := timeline.pop_before(limit)) is not None:
        offset, message = entry
        if message.label != DUPLICATE and rng.random() < fraction:
            copy = SimulatedMessage(message.topic, message.key, message.value, True, DUPLICATE)
            timeline.push(offset + rng.uniform(*DUPLICATE_DELAY), copy)
        yield message
