"""Local tables survive a clean stop only: after a crash they are rebuilt from the changelog."""

from __future__ import annotations

from pathlib import Path

from streams.worker import local_state


def tables_in(tmp_path: Path) -> Path:
    tables = tmp_path / "v1" / "tables" / "facts-0.db"
    tables.mkdir(parents=True)
    (tables / "CURRENT").write_text("x")
    return tmp_path / "v1" / "tables"


def test_a_start_after_a_crash_removes_the_local_tables(tmp_path: Path) -> None:
    tables = tables_in(tmp_path)
    assert local_state.prepare(tmp_path, "app", tables) is False
    assert not tables.exists()


def test_a_start_after_a_clean_stop_keeps_them_and_takes_the_mark(tmp_path: Path) -> None:
    tables = tables_in(tmp_path)
    local_state.mark_clean(tmp_path, "app")
    assert local_state.prepare(tmp_path, "app", tables) is True
    assert (tables / "facts-0.db" / "CURRENT").exists()
    assert not local_state.mark_path(tmp_path, "app").exists()  # a crash now leaves none
    assert local_state.prepare(tmp_path, "app", tables) is False


def test_the_mark_of_another_app_id_does_not_count(tmp_path: Path) -> None:
    tables = tables_in(tmp_path)
    local_state.mark_clean(tmp_path, "other")
    assert local_state.prepare(tmp_path, "app", tables) is False
