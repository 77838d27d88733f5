# sunes-stream — the two commands a newcomer needs: `make demo` and `make test`.
# Each sets itself up: a .venv/ at the repository root, the Python packages, and for the
# tests the Apache Kafka jars (Maven Central) and promtool (Debian's prometheus package).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# processors/ compiled with mypyc (scripts/build_mypyc.py; gcc and Python's headers):
# `make venv SUNES_MYPYC=0` leaves it pure Python. Rebuilt whenever a compiled module changes.
SUNES_MYPYC ?= 1

.PHONY: demo test test-pure venv lint typecheck unit integration tools clean pure-python

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

ifeq ($(SUNES_MYPYC),1)
BUILD := processors/compiled.sha256
$(BUILD): $(STAMP) scripts/build_mypyc.py \
		$(filter-out processors/__init__.py,$(wildcard processors/*.py))
	$(BIN)/python scripts/build_mypyc.py
else
BUILD := pure-python
pure-python: $(STAMP)
	$(BIN)/python scripts/build_mypyc.py --clean
endif

venv: $(STAMP) $(BUILD)

demo: $(STAMP) $(BUILD)
	$(BIN)/sunes demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

tools:
	bash scripts/ensure-test-tools.sh

# the whole suite on what ships (compiled), then the domain's own tests on its pure Python
test: $(STAMP) $(BUILD) tools lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)
	SUNES_PURE_PYTHON=1 $(BIN)/pytest -q tests/processors

# the suite (PYTEST_ARGS) on processors/'s pure Python whatever was built
test-pure: $(STAMP) tools
	SUNES_PURE_PYTHON=1 $(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build/mypyc
	rm -f processors/*.so processors/compiled.sha256
