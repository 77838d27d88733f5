"""The HL7 converter's state on disk: a RocksDB key-value store (rocksdict) under --state-dir.

Every write goes to RocksDB's write-ahead log before `set` returns, so a listener killed with
SIGKILL finds, when it starts again, what it had converted: the documents each ORU/MDM
carried, keyed by (sender, MSH-10), for the ZAM that comes later. One listener process owns a
directory (RocksDB locks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from streams.cli.errors import ConfigError


class RocksStore:
    """processors.store.KeyValueStore over rocksdict."""

    def __init__(self, path: Path) -> None:
        from rocksdict import Rdict

        path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = Rdict(str(path))
        except Exception as exc:  # rocksdict raises plain exceptions (a lock held, a bad dir)
            raise ConfigError(
                f"cannot open the HL7 state store in {path}: {exc}. Is another `sunes hl7 "
                "listen` using this --state-dir? Give each listener its own"
            ) from exc

    def get(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return value if isinstance(value, bytes) else None

    def set(self, key: bytes, value: bytes) -> None:
        self._db[key] = value

    def delete(self, key: bytes) -> None:
        del self._db[key]

    def write(self, changes: Sequence[tuple[bytes, bytes | None]]) -> None:
        for key, value in changes:
            if value is None:
                self.delete(key)
            else:
                self.set(key, value)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.items(from_key=prefix):
            if not isinstance(key, bytes) or not key.startswith(prefix):
                break
            if isinstance(value, bytes):
                yield key, value

    def close(self) -> None:
        self._db.close()
