"""Benchmarks of the worker: throughput, latency, memory, state on disk. They print figures,
never assert.

Run them all with `.venv/bin/python -m bench.run_all`, the state alone with
`.venv/bin/python -m bench.state` (see bench/README.md).
"""
