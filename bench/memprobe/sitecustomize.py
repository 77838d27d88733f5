"""A memory census of a bench worker, taken on request (bench.memory_growth --census).

Bench only: bench.memory_growth puts this directory first on the worker's PYTHONPATH and sets
SUNES_MEMPROBE_DIR; Python imports this module at start-up (site's sitecustomize hook). A
daemon thread waits for `<dir>/request`, then writes `<dir>/census-<n>.json`: glibc's
malloc totals (mallinfo2, every arena), pymalloc's (sys._debugmallocstats), the Python
objects by type (gc-tracked, shallow sizes), the deep size of the decoded-entry cache and of
the aggregates, and the bytes waiting in the producer's accumulator. The product never
imports it. Counts and sizes only: no key, no value.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any


class _Mallinfo2(ctypes.Structure):
    _FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS.split()]


def mallinfo() -> dict[str, int]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {
        "heap_bytes": info.arena,  # from the system by brk/mmap'd arenas (not big blocks)
        "in_use_bytes": info.uordblks,
        "free_bytes": info.fordblks,  # held by malloc, free: fragmentation or reserve
        "mmapped_bytes": info.hblkhd,  # big blocks, each its own mmap
    }


def pymalloc() -> dict[str, int]:
    """sys._debugmallocstats' totals (it writes to stderr: captured through a temp file)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    found = {}
    for label, name in (
        ("# arenas allocated current", "arenas"),
        ("# arenas highwater mark", "arenas_highwater"),
        ("# bytes in allocated blocks", "allocated_bytes"),
        ("# bytes in available blocks", "available_bytes"),
        ("Total", "total_bytes"),
    ):
        m = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        if m:
            found[name] = int(m.group(1).replace(",", ""))
    return found


_SHARED = (type, type(sys), type(len), type(mallinfo))


def deep_size(root: Any, seen: set[int]) -> int:
    """Bytes reachable from root (sys.getsizeof each object once), not through types,
    modules or functions."""
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SHARED):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def _of_type(objects: list[Any], name: str) -> list[Any]:
    return [o for o in objects if type(o).__name__ == name]


def census() -> dict[str, Any]:
    began = time.monotonic()
    # The worker freezes its heap after each recovery (streams/worker/gc_tuning.py), and
    # gc.get_objects() lists no frozen object: the cache and most of the state would be
    # missed. Unfrozen for the census, then everything frozen again, as after_recovery does.
    frozen = gc.get_freeze_count() > 0
    if frozen:
        gc.unfreeze()
    gc.collect()
    objects = gc.get_objects()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for obj in objects:
        name = type(obj).__name__
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    seen: set[int] = set()
    caches = [
        {"entries": len(c.entries), "deep_bytes": deep_size(c.entries, seen)}
        for c in _of_type(objects, "StateCache")
    ]
    aggregates = _of_type(objects, "Aggregates")
    aggregate_keys = sum(len(a.totals) for a in aggregates)
    aggregate_bytes = sum(deep_size(a.totals, seen) for a in aggregates)
    accumulators = []
    for acc in _of_type(objects, "MessageAccumulator"):
        batches = [b for queue in acc._batches.values() for b in queue]
        accumulators.append(
            {"batches": len(batches), "bytes": sum(deep_size(b, seen) for b in batches)}
        )
    result = {
        "malloc": mallinfo(),
        "pymalloc": pymalloc(),
        "gc_objects": len(objects),
        "top_types_by_shallow_bytes": sizes.most_common(15),
        "top_types_by_count": counts.most_common(15),
        "state_cache": caches,
        "aggregates": {
            "establishments": len(aggregates),
            "keys": aggregate_keys,
            "deep_bytes": aggregate_bytes,
        },
        "producer_accumulators": accumulators,
        "seconds": 0.0,
    }
    del objects
    if frozen:
        gc.freeze()
    result["seconds"] = round(time.monotonic() - began, 2)
    return result


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def malloc_trim() -> dict[str, Any]:
    """What glibc gives back to the system when asked (malloc_trim(0)): the free memory it
    held, i.e. fragmentation rather than live data."""
    before = _rss()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return {"rss_before_trim": before, "rss_after_trim": _rss(), "malloc": mallinfo()}


def _serve(folder: Path) -> None:
    n = 0
    request = folder / "request"
    while True:
        time.sleep(0.5)
        if not request.exists():
            continue
        try:
            trim = request.read_text().strip() == "trim"
            request.unlink()
        except FileNotFoundError:
            trim = False
        try:
            result: dict[str, Any] = malloc_trim() if trim else census()
        except Exception as exc:  # a diagnostic: say what failed, keep serving
            result = {"error": f"{type(exc).__name__}: {exc}"}
        n += 1
        tmp = folder / f".census-{n}.json"
        tmp.write_text(json.dumps(result))
        tmp.rename(folder / f"census-{n}.json")


_DIR = os.environ.get("SUNES_MEMPROBE_DIR")
if _DIR and "worker" in sys.argv:
    threading.Thread(target=_serve, args=(Path(_DIR),), name="memprobe", daemon=True).start()
