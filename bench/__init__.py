"""Benchmarks of the worker: throughput, latency, memory. They print figures, never assert.

Run them all with `.venv/bin/python -m bench.run_all` (see bench/README.md).
"""
