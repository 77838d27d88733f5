"""bench/memprobe/sitecustomize.py: the census sees the worker's frozen heap."""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path
from types import ModuleType

from processors.state import StateCache
from processors.store import MemoryStore

PROBE = Path(__file__).parents[2] / "bench" / "memprobe" / "sitecustomize.py"


def _probe() -> ModuleType:
    # Loaded from its file, under another name: bench/memprobe is not a package, and
    # `sitecustomize` may already name the interpreter's own module.
    spec = importlib.util.spec_from_file_location("memprobe_under_test", PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_census_counts_a_cache_the_worker_froze_and_leaves_it_frozen() -> None:
    probe = _probe()
    cache = StateCache(MemoryStore())
    cache.entries[("F", "s", "S1")] = None
    gc.freeze()  # as streams/worker/gc_tuning.after_recovery leaves the worker
    try:
        census = probe.census()
        assert any(found["entries"] == 1 for found in census["state_cache"])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    del cache
