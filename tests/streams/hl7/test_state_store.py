"""The converter's state on disk (RocksDB): what was set survives closing and reopening, a
deleted or missing key reads as None, and a second listener on the same directory is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli.errors import ConfigError
from streams.hl7.state_store import RocksStore


def test_what_was_set_is_there_after_a_reopen(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "state")
    store.set(b"doc\x1fRIS\x1f015", b"[1]")
    store.set(b"stay\x1f26000101", b"{}")
    store.delete(b"stay\x1f26000101")
    store.delete(b"never-set")  # deleting a missing key is no error
    store.close()
    again = RocksStore(tmp_path / "state")
    assert again.get(b"doc\x1fRIS\x1f015") == b"[1]"
    assert again.get(b"stay\x1f26000101") is None
    assert again.get(b"never-set") is None
    assert list(again.items()) == [(b"doc\x1fRIS\x1f015", b"[1]")]
    again.close()


def test_a_second_store_on_the_same_directory_names_the_setting(tmp_path: Path) -> None:
    first = RocksStore(tmp_path / "state")
    try:
        with pytest.raises(ConfigError, match="--state-dir"):
            RocksStore(tmp_path / "state")
    finally:
        first.close()
