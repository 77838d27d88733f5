"""The pure core: facts merged from events, the join, every counting rule, monthly aggregates and
figures; where facts live (state, store, codec) and the collection batch and stream share.
Reaches no Faust, Kafka, HTTP or Prometheus.

Its modules may run compiled with mypyc (scripts/build_mypyc.py, what `make venv` builds). This
file is never compiled: it refuses a build made from other sources than the ones beside it (an
edited rules.py would otherwise run its old compiled code, which CPython prefers), and with
SUNES_PURE_PYTHON=1 imports every module from its .py whatever was built."""

import hashlib
import importlib.machinery
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# never compiled: this file
INTERPRETED = ("__init__.py",)
# what the build records: "<sha256>  <file name>" per compiled module (sha256sum's format)
STAMP = HERE / "compiled.sha256"
PURE_ENV = "SUNES_PURE_PYTHON"


def compiled_sources() -> dict[str, str]:
    """Each module mypyc compiles, by file name: the sha256 of its source."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(HERE.glob("*.py"))
        if path.name not in INTERPRETED
    }


def extension_modules() -> list[Path]:
    """The compiled modules beside the sources (none: pure Python)."""
    return [
        path
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        for path in HERE.glob(f"*{suffix}")
    ]


def stale_build() -> str | None:
    """Why the compiled modules here must not run, or None (none built, or built from these)."""
    if not extension_modules():
        return None
    if not STAMP.exists():
        return f"compiled modules without {STAMP.name} (an interrupted build?)"
    recorded: dict[str, str] = {}
    for line in STAMP.read_text().splitlines():
        sha, _, name = line.partition("  ")
        recorded[name] = sha
    current = compiled_sources()
    changed = sorted(
        name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name)
    )
    if changed:
        return f"compiled from other sources than {', '.join(changed)} (edited since the build)"
    return None


class _SourcesOnly:
    """A meta path finder: processors.* from their .py, never from an extension module."""

    finder = importlib.machinery.FileFinder(
        str(HERE), (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
    )

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname.startswith(f"{__name__}."):
            return self.finder.find_spec(fullname)
        return None


if os.environ.get(PURE_ENV, "") not in ("", "0"):
    sys.meta_path.insert(0, _SourcesOnly())  # type: ignore[arg-type]
elif (_why := stale_build()) is not None:
    raise ImportError(
        f"processors/ ({HERE}) is a stale mypyc build: {_why}. Rebuild it with `make venv` "
        "(or `python scripts/build_mypyc.py`), remove it with `python scripts/build_mypyc.py "
        f"--clean`, or run the pure Python with {PURE_ENV}=1."
    )
