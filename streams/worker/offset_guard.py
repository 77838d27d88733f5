"""Per-partition check that the offsets an agent applies are contiguous from the committed one."""

from __future__ import annotations


class OffsetGuard:
    """Tracks, per partition, the last applied offset and the next one expected.

    Meant for a topic whose offsets are contiguous (delete policy, non-transactional
    producer): any skipped offset is a record lost upstream, never a compaction or a
    transaction marker.
    """

    def __init__(self) -> None:
        self.last_applied: dict[int, int] = {}  # read by /health
        # The next offset to apply; None: unknown, the first offset seen is accepted.
        self._next: dict[int, int | None] = {}

    def expect(self, partition: int, committed: int | None) -> None:
        """On (re)assignment or recovery: the next offset is the committed position."""
        # Reset even below what this process applied: the committed position is what
        # Kafka will deliver from, and anything between is a replay (accepted).
        self._next[partition] = committed

    def check(self, partition: int, offset: int) -> int | None:
        """None when `offset` may be applied, else the expected offset (a hole before it)."""
        expected = self._next.get(partition)
        if expected is None or offset <= expected:
            # offset < expected: a replay after a seek back; downstream is idempotent.
            return None
        return expected

    def applied(self, partition: int, offset: int) -> None:
        """Record that `offset` of `partition` has been applied."""
        self.last_applied[partition] = offset
        expected = self._next.get(partition)
        # max: a replay below the expected offset must not move the expectation back.
        self._next[partition] = offset + 1 if expected is None else max(expected, offset + 1)

    def forget(self, partitions_kept: set[int]) -> None:
        """Drop the state of every partition not in `partitions_kept` (revoked ones)."""
        for table in (self.last_applied, self._next):
            for partition in [p for p in table if p not in partitions_kept]:
                del table[partition]
