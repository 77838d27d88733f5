"""streams.worker.offset_guard: applied offsets must be contiguous from the committed one."""

from __future__ import annotations

from streams.worker.offset_guard import OffsetGuard


def test_contiguous_offsets_from_the_committed_one_are_accepted() -> None:
    guard = OffsetGuard()
    guard.expect(0, 5)
    for offset in range(5, 9):
        assert guard.check(0, offset) is None
        guard.applied(0, offset)
    assert guard.last_applied == {0: 8}


def test_a_hole_returns_the_expected_offset_and_nothing_moves() -> None:
    guard = OffsetGuard()
    guard.expect(0, 5)
    assert guard.check(0, 6) == 5  # right at the committed offset
    guard.applied(0, 5)
    assert guard.check(0, 10) == 6
    assert guard.check(0, 10) == 6  # the records in flight past the hole: same answer
    assert guard.last_applied == {0: 5}


def test_a_replay_after_a_seek_back_is_accepted_and_keeps_the_expectation() -> None:
    guard = OffsetGuard()
    guard.expect(0, 0)
    for offset in range(5):
        guard.applied(0, offset)
    assert guard.check(0, 2) is None  # <= last applied: idempotent downstream
    guard.applied(0, 2)
    assert guard.check(0, 5) is None
    assert guard.check(0, 6) == 5
    assert guard.last_applied == {0: 2}


def test_unknown_committed_offset_accepts_the_first_offset_seen() -> None:
    guard = OffsetGuard()
    assert guard.check(3, 42) is None  # never expected: unknown as well
    guard.expect(1, None)
    assert guard.check(1, 42) is None
    guard.applied(1, 42)
    assert guard.check(1, 44) == 43


def test_expect_resets_to_the_committed_offset_and_forget_drops_partitions() -> None:
    guard = OffsetGuard()
    guard.expect(0, 0)
    guard.expect(1, 0)
    for offset in range(10):
        guard.applied(0, offset)
    guard.applied(1, 0)
    # Reassigned with 0..4 committed: Kafka delivers from 5, a replay of 5..9.
    guard.expect(0, 5)
    assert guard.check(0, 5) is None
    assert guard.check(0, 6) == 5
    guard.expect(0, 20)  # another worker went further meanwhile: 20 and on only
    assert guard.check(0, 21) == 20
    guard.forget({1})
    assert guard.last_applied == {1: 0}
    assert guard.check(0, 99) is None  # forgotten: unknown again
    assert guard.check(1, 2) == 1
