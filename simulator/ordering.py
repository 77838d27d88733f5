"""Emission order: a timeline of scheduled messages, and a bounded shuffle of the result."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Timeline(Generic[T]):
    """Items scheduled at an offset (seconds of simulated time), popped in offset order.

    Ties keep their scheduling order, so the same pushes always give the same sequence.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._pushed = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, offset: float, item: T) -> None:
        self._pushed += 1
        heapq.heappush(self._heap, (offset, self._pushed, item))

    def pop_before(self, limit: float) -> tuple[float, T] | None:
        """The earliest item scheduled before `limit`, or None."""
        if self._heap and self._heap[0][0] < limit:
            offset, _, item = heapq.heappop(self._heap)
            return offset, item
        return None


def bounded_shuffle(items: Iterable[T], window: int, rng: random.Random) -> Iterator[T]:
    """Shuffle locally: each item leaves its place by at most `window` positions.

    Item i gets the sort key i + U(0, window) and is released once the input reaches that
    key, so the output is as lazy as the input (fit for an endless stream).
    """
    if window <= 0:
        yield from items
        return
    heap: list[tuple[float, int, T]] = []
    for index, item in enumerate(items):
        heapq.heappush(heap, (index + rng.random() * window, index, item))
        while heap[0][0] <= index:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]
