"""Where facts live: a key-value store of bytes, behind one interface.

The batch report keeps them in memory (`MemoryStore`); the worker in its changelogged Faust
table, on disk with RocksDB (streams/worker/table_store.py). The join never sees which.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

# A write of one key: its new value, or None to delete it.
Change = tuple[bytes, bytes | None]


class KeyValueStore(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def set(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def write(self, changes: Sequence[Change]) -> None:
        """Every change of a flush at once, each key once (the worker: one RocksDB batch and
        one changelog hand-off per bundle instead of one per key)."""
        ...

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """The entries whose key starts with `prefix` (all of them by default), in no
        particular order: one establishment's entries of one kind, for a worklist."""
        ...


class MemoryStore:
    """A dict: for the batch report and tests."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)

    def write(self, changes: Sequence[Change]) -> None:
        for key, value in changes:
            if value is None:
                self.delete(key)
            else:
                self.set(key, value)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return iter([(k, v) for k, v in self.data.items() if k.startswith(prefix)])
