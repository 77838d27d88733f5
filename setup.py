"""Only the optional mypyc build of processors/ in a wheel; the metadata is pyproject.toml's.

    SUNES_MYPYC_WHEEL=1 pip wheel --no-build-isolation --no-deps .   # what the Dockerfile runs

needs mypy (the pin of the dev extra), a C compiler and Python's headers in the environment
that builds; without SUNES_MYPYC_WHEEL, a pure-Python package (`pip install .` anywhere).
"""

import os
import sys
from pathlib import Path

from setuptools import setup

ext_modules = []
if os.environ.get("SUNES_MYPYC_WHEEL") == "1":
    sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
    import build_mypyc

    ext_modules = build_mypyc.extensions()
    build_mypyc.write_stamp()  # packaged beside the extension modules (package-data)

setup(ext_modules=ext_modules)
