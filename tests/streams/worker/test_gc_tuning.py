"""The worker's GC settings: only in a process that asked for them (a subprocess here, so the
test process keeps Python's defaults)."""

from __future__ import annotations

import subprocess
import sys

from streams.worker import gc_tuning

PROBE = """
import gc, sys, weakref
from streams.worker import gc_tuning
gc_tuning.after_recovery()  # before tune(): nothing
print(gc.get_threshold()[0], gc.get_freeze_count())
gc_tuning.tune()
print(gc.get_threshold()[0], gc.get_freeze_count() > 0)
class Cycle:
    pass
a, b = Cycle(), Cycle()
a.other, b.other = b, a
alive = weakref.ref(a)
gc.freeze()  # a cycle frozen by a former recovery, then dropped
del a, b
gc_tuning.after_recovery()  # frees it, freezes the rest
print(alive() is None, gc.get_freeze_count() > 0)
"""


def test_only_a_tuned_process_changes_its_collector() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")
    assert out[0] == "700 0"  # Python's default, nothing frozen
    assert out[1] == f"{gc_tuning.YOUNG_THRESHOLD} True"
    assert out[2] == "True True"  # the cycle frozen earlier is collected at the next recovery
