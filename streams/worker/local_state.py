"""The worker's local RocksDB state is kept across restarts only after a clean stop.

RocksDB takes a table write at once; its changelog record is sent a moment later. A worker
killed in between keeps writes on disk that the changelog never got, and when it replays the
uncommitted bundles they merge as duplicates, so nothing sends them again: the next worker
to own those partitions, recovering from the changelog, would miss them. So a clean stop
leaves a mark, and a start without that mark rebuilds the tables from the changelog (as a
worker with a lost disk would), which is always right. A clean restart keeps the disk: its
figures are back within seconds.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

MARK = "clean-shutdown"


def mark_path(data_dir: Path, app_id: str) -> Path:
    return data_dir / f"{app_id}.{MARK}"


def prepare(data_dir: Path, app_id: str, tables: Path) -> bool:
    """Before the worker starts: keep the local tables if the last stop was clean, else
    remove them. True when they were kept. The mark is removed: a crash leaves none."""
    mark = mark_path(data_dir, app_id)
    clean = mark.exists()
    mark.unlink(missing_ok=True)
    if tables.exists() and not clean:
        log.warning(
            "the last stop of %s was not clean: its local tables are rebuilt from the changelog",
            app_id,
        )
        shutil.rmtree(tables)
    return clean and tables.exists()


def mark_clean(data_dir: Path, app_id: str) -> None:
    """After a clean stop (every changelog record sent, offsets committed)."""
    mark_path(data_dir, app_id).touch()
