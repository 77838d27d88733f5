"""`sunes demo`: the whole product on one machine with only Python.

Starts the embedded Tansu broker, one worker and the simulator, then shows the live figures
(funding-window rate of each indicator per establishment, ▼ under target) until Ctrl-C or
`--duration`. Everything it started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from processors.catalogue import RATE_INDICATORS
from processors.formatting import percent
from streams.cli.errors import CliError, Exit

CLEAR = "\033[H\033[2J"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the product on its embedded default: broker, worker, simulated hospitals",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"exit status: {Exit.OK} stopped (Ctrl-C or --duration); {Exit.USAGE} usage "
        f"error; {Exit.KAFKA} the broker or the worker did not start",
    )
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds [default: until Ctrl-C]")  # fmt: skip
    parser.add_argument("--establishments", type=int, default=6)
    parser.add_argument("--rate", type=float, default=300.0, help="simulated events per second")
    parser.add_argument("--web-port", type=int, default=6066)
    parser.add_argument("--refresh", type=float, default=2.0, help="seconds between screens")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streams.brokers import BrokerError, make_broker

    if args.establishments < 1 or args.rate <= 0 or args.duration < 0:
        raise CliError("--establishments and --rate must be above 0, --duration 0 or more")
    logs = Path(tempfile.mkdtemp(prefix="sunes-demo-"))
    broker = make_broker("tansu")
    try:
        broker.start()
    except BrokerError as exc:
        raise CliError(f"the embedded broker did not start: {exc}", Exit.KAFKA) from exc
    print(f"broker (Tansu, in memory) on {broker.bootstrap_servers}; logs in {logs}")
    try:
        with _processes(args, broker.bootstrap_servers, logs) as worker_url:
            return _show(args, worker_url, logs)
    except KeyboardInterrupt:
        return Exit.OK
    finally:
        broker.stop()
        print("\nstopped: simulator, worker and broker")


@contextlib.contextmanager
def _processes(args: argparse.Namespace, brokers: str, logs: Path) -> Iterator[str]:
    cli = [sys.executable, "-m", "streams.cli"]
    # --broker-kind tansu: the client settings of the embedded broker, for both children.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    app_id = f"sunes-demo-{uuid.uuid4().hex[:6]}"
    worker = subprocess.Popen(
        [*cli, "worker", "--brokers", brokers, "--broker-kind", "tansu", "--app-id", app_id,
         "--web-port", str(args.web_port), "--data-dir", str(logs / "data"), "--loglevel", "info",
         "--store", "memory://"],  # the broker is in memory too: nothing to keep
        stdout=(logs / "worker.log").open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    simulator: subprocess.Popen[bytes] | None = None
    url = f"http://127.0.0.1:{args.web_port}"
    try:
        _wait_for_worker(worker, url, logs)
        simulator = subprocess.Popen(
            [*cli, "simulate", "--brokers", brokers, "--broker-kind", "tansu",
             "--establishments", str(args.establishments), "--rate", str(args.rate),
             "--duration", str(args.duration or 10**9)],
            stdout=subprocess.DEVNULL, stderr=(logs / "simulator.log").open("wb"), env=env,
        )  # fmt: skip
        yield url
    finally:
        for process in (simulator, worker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in (simulator, worker):
            if process is not None:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


def _wait_for_worker(worker: subprocess.Popen[bytes], url: str, logs: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            tail = (logs / "worker.log").read_text(errors="replace")[-2000:]
            raise CliError(f"the worker stopped at start-up:\n{tail}", Exit.KAFKA)
        if _get(f"{url}/health") is not None:
            return
        time.sleep(0.5)
    raise CliError(f"the worker did not answer on {url} within 90 s; see {logs}", Exit.KAFKA)


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return orjson.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, orjson.JSONDecodeError):
        return None


def _show(args: argparse.Namespace, url: str, logs: Path) -> int:
    started = time.monotonic()
    interactive = sys.stdout.isatty()
    while not args.duration or time.monotonic() - started < args.duration:
        rows = _get(f"{url}/indicators") or []
        health = _get(f"{url}/health") or {}
        screen = render(rows, health, url, time.monotonic() - started)
        print((CLEAR if interactive else "\n") + screen, flush=True)
        time.sleep(args.refresh)
    return Exit.OK


def render(rows: list[dict[str, Any]], health: dict[str, Any], url: str, elapsed: float) -> str:
    """Funding-window rate per establishment and indicator; ▼ marks a rate under its target."""
    windows: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if not row["period"][:1].isdigit():
            windows.setdefault(row["finess"], {})[row["indicator"]] = row
    header = f"{'FINESS':<10} {'fenêtre':<7}" + "".join(
        f"{i.replace('DS', 'DS '):>11}" for i in RATE_INDICATORS
    )
    lines = [
        f"sunes-stream demo — {elapsed:5.0f} s — {health.get('establishments', 0)} establishment(s), "
        f"{health.get('cached_entries', 0)} state entries cached",
        f"indicators: {url}/indicators   metrics: {url}/metrics   (Ctrl-C to stop)",
        "",
        "Taux sur la fenêtre de financement (▼ sous la cible, – pas de dénominateur)",
        header,
        "─" * len(header),
    ]
    for finess in sorted(windows):
        cells = windows[finess]
        window = next(iter(cells.values()))["period"]
        line = f"{finess:<10} {window:<7}"
        for indicator in RATE_INDICATORS:
            cell = cells.get(indicator)
            if cell is None:
                line += f"{'–':>11}"
                continue
            under = cell["target"] is not None and cell["ratio"] < cell["target"]
            line += f"{percent(cell['ratio']).strip() + (' ▼' if under else '  '):>11}"
        lines.append(line)
    if not windows:
        lines.append("(waiting for the first figures...)")
    return "\n".join(lines)
