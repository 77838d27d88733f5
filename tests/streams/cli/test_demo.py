"""`sunes demo` end to end: embedded broker, worker and simulator; figures on screen; clean stop."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.brokers._common import free_port
from streams.cli.demo import render

pytestmark = pytest.mark.kafka


def test_demo_shows_live_figures_and_stops_everything() -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--duration", "25", "--refresh", "3",
         "--web-port", str(port), "--establishments", "3"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"http://127.0.0.1:{port}/metrics" in done.stdout
    assert "DS 1.1" in done.stdout and "%" in done.stdout
    assert "▼" in done.stdout  # the simulator's first establishment is under its targets
    assert "stopped: simulator, worker and broker" in done.stdout
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--web-port {port}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "the demo left its worker running"


def test_render_marks_rates_under_target() -> None:
    rows = [
        {"finess": "750000001", "indicator": "DS1.1", "period": "F2", "numerator": 1,
         "denominator": 4, "ratio": 0.25, "target": 0.55},
        {"finess": "750000001", "indicator": "DS1.2", "period": "F2", "numerator": 3,
         "denominator": 4, "ratio": 0.75, "target": 0.48},
        {"finess": "750000001", "indicator": "DS1.1", "period": "2023-01", "numerator": 0,
         "denominator": 1, "ratio": 0.0, "target": 0.55},
    ]  # fmt: skip
    screen = render(rows, {"establishments": 1, "cached_entries": 5}, "http://x", 3.0)
    line = next(li for li in screen.splitlines() if li.startswith("750000001"))
    assert "25.0 % ▼" in line and "75.0 %" in line and "75.0 % ▼" not in line
