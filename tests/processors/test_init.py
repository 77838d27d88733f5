"""processors/__init__.py: a mypyc build whose sources were edited since never imports, and
SUNES_PURE_PYTHON=1 runs the .py files whatever was built.

On a copy of processors/ (and topics/, which it imports) with a stand-in extension module: the
check reads which files are there and the recorded hashes, never the extension's content."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for package in ("processors", "topics"):
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "compiled.sha256"),
        )
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "build_mypyc.py", tmp_path / "scripts")
    return tmp_path


def python(copy: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SUNES_PURE_PYTHON"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=copy,
        env={**environ, "PYTHONPATH": str(copy), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def built(copy: Path) -> None:
    """What an in-place build leaves: an extension per module (a stand-in) and the stamp,
    written by the build script's own function."""
    for source in (copy / "processors").glob("*.py"):
        if source.name != "__init__.py":
            source.with_suffix(SUFFIX).write_bytes(b"not a real extension module")
    done = python(
        copy,
        "import sys; sys.path.insert(0, 'scripts'); import build_mypyc; build_mypyc.write_stamp()",
    )
    assert done.returncode == 0, done.stderr


def test_a_build_of_these_sources_imports(copy: Path) -> None:
    built(copy)
    done = python(copy, "import processors; print(processors.stale_build())")
    assert (done.returncode, done.stdout) == (0, "None\n"), done.stderr


def test_an_edited_source_stops_the_import_and_says_what_to_run(copy: Path) -> None:
    built(copy)
    rules = copy / "processors" / "rules.py"
    rules.write_text(rules.read_text() + "\n# edited\n")
    done = python(copy, "import processors.rules")
    assert done.returncode == 1
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("ImportError")]
    assert "stale mypyc build" in line and "rules.py (edited since the build)" in line
    assert "make venv" in line and "SUNES_PURE_PYTHON=1" in line
    assert "establishment.py" not in line  # only what changed


def test_a_module_added_since_the_build_stops_the_import(copy: Path) -> None:
    built(copy)
    (copy / "processors" / "novel.py").write_text("X = 1\n")
    done = python(copy, "import processors")
    assert "novel.py (edited since the build)" in done.stderr


def test_extension_modules_without_the_stamp_stop_the_import(copy: Path) -> None:
    built(copy)
    (copy / "processors" / "compiled.sha256").unlink()
    done = python(copy, "import processors")
    assert done.returncode == 1
    assert "compiled modules without compiled.sha256 (an interrupted build?)" in done.stderr


def test_pure_python_runs_the_sources_beside_any_build(copy: Path) -> None:
    built(copy)
    rules = copy / "processors" / "rules.py"
    rules.write_text(rules.read_text() + "\nEDITED = True\n")
    code = "import processors.rules as r, processors.collection as c; print(r.EDITED, r.__file__, c.__file__)"
    done = python(copy, code, SUNES_PURE_PYTHON="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", str(rules), str(copy / "processors" / "collection.py")]


def test_no_build_is_pure_python(copy: Path) -> None:
    done = python(copy, "import processors.rules as r; print(r.__file__)")
    assert (done.returncode, done.stdout.strip()) == (0, str(copy / "processors" / "rules.py"))


def test_the_build_without_a_compiler_says_what_to_install_and_builds_nothing(copy: Path) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/build_mypyc.py"],
        cwd=copy,
        env={**os.environ, "CC": "no-such-cc"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "without a C compiler (no-such-cc)" in done.stderr and "SUNES_MYPYC=0" in done.stderr
    assert not list((copy / "processors").glob(f"*{SUFFIX}"))
