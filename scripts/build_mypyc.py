"""processors/ compiled with mypyc as one shared library: every module but two (INTERPRETED).

    python scripts/build_mypyc.py [--opt-level 3]   # build in place (what `make venv` runs)
    python scripts/build_mypyc.py --clean           # remove the build: pure Python again

The in-place build writes, beside the extension modules, processors/compiled.sha256: the hashes
of the sources it compiled. processors/__init__.py (never compiled) checks it at import and refuses
a build whose sources were edited since (CPython would otherwise run the old compiled code).
setup.py calls extensions() for a wheel when SUNES_MYPYC=1 (the Dockerfile). Needs mypy (mypyc
ships with it; the exact pin of pyproject.toml's dev extra), a C compiler and Python's headers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the package's own view of its build, imported without the build's check (it may be stale)
os.environ["SUNES_PURE_PYTHON"] = "1"
import processors  # noqa: E402

# the one group's shared library, inside the package (an editable install maps only the
# packages, no top-level module): processors/native__mypyc.<suffix>
GROUP = "processors.native"
BUILD_DIR = ROOT / "build" / "mypyc"


def sources() -> list[Path]:
    """The modules compiled: all of processors/ but processors.INTERPRETED."""
    return [processors.HERE / name for name in processors.compiled_sources()]


def extensions(opt_level: str | None = None) -> list[object]:
    """The setuptools Extensions of the build (mypyc runs here: mypy, then C generation)."""
    from mypyc.build import mypycify

    paths = [str(path.relative_to(ROOT)) for path in sources()]
    return list(
        mypycify(
            paths,
            opt_level=opt_level or os.environ.get("SUNES_MYPYC_OPT_LEVEL", "3"),
            group_name=GROUP,
            target_dir=str(BUILD_DIR.relative_to(ROOT)),
        )
    )


def built_files() -> list[Path]:
    """Every file an in-place build leaves in the tree (extension modules and the stamp)."""
    return sorted({processors.STAMP, *processors.extension_modules()})


def clean() -> None:
    for path in built_files():
        path.unlink(missing_ok=True)


def build(opt_level: str) -> None:
    """Build in place; the stamp is written last, so a failed build leaves pure Python."""
    from setuptools import Distribution

    clean()
    os.chdir(ROOT)  # mypyc and build_ext take paths relative to the project
    # setuptools' Distribution directly: pyproject.toml's metadata plays no part (a venv's
    # setuptools older than 77 rejects its `license = "MIT"`).
    dist = Distribution({"name": "sunes-processors", "ext_modules": extensions(opt_level)})
    command = dist.get_command_obj("build_ext")
    command.inplace = True
    command.build_temp = str(BUILD_DIR / "temp")
    dist.run_command("build_ext")
    write_stamp()


def write_stamp() -> None:
    """Record the sources' hashes (after the build: a failed one leaves no stamp, no import)."""
    recorded = processors.compiled_sources()
    processors.STAMP.write_text("".join(f"{sha}  {name}\n" for name, sha in recorded.items()))


def missing_tools() -> str:
    """What the build needs and this machine lacks (empty: nothing)."""
    missing = []
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        missing.append(f"a C compiler ({compiler})")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        missing.append(f"Python's headers ({sysconfig.get_paths()['include']}/Python.h)")
    return " and ".join(missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build_mypyc.py", description=__doc__)
    parser.add_argument("--opt-level", default="3", help="the C compiler's -O level (3)")
    parser.add_argument("--clean", action="store_true", help="remove the build, and stop")
    args = parser.parse_args(argv)
    if args.clean:
        clean()
        shutil.rmtree(BUILD_DIR, ignore_errors=True)
        return 0
    missing = missing_tools()
    if missing:
        print(
            f"scripts/build_mypyc.py: cannot compile processors/ without {missing}. Install it "
            "(Debian: apt-get install build-essential python3-dev), or keep pure Python: "
            "`make venv SUNES_MYPYC=0`.",
            file=sys.stderr,
        )
        return 2
    began = time.monotonic()
    build(args.opt_level)
    cpu = os.times()
    print(
        f"processors/ compiled with mypyc (-O{args.opt_level}): {len(sources())} modules in "
        f"{time.monotonic() - began:.0f} s, "
        f"{cpu.user + cpu.system + cpu.children_user + cpu.children_system:.0f} s CPU",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
