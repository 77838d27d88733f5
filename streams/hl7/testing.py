"""A real `sunes hl7 listen` process and a plain MLLP client, for tests and the benchmark."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from streams.brokers._common import free_port
from streams.hl7.mllp import END, START, frame
from streams.testing import SUNES, ChildProcess


@dataclass(frozen=True, slots=True)
class Ack:
    """What an ACK said: MSA-1, MSA-2 and ERR-5.1 (our reason code)."""

    code: str
    control_id: str
    reason: str
    raw: bytes


def read_ack(data: bytes) -> Ack:
    """An ACK's MSA and ERR, read as plain text (a test should not trust our own parser)."""
    code = control = reason = ""
    for segment in data.decode("utf-8", errors="replace").split("\r"):
        fields = segment.split("|")
        if fields[0] == "MSA":
            code, control = [*fields, "", ""][1:3]
        elif fields[0] == "ERR" and len(fields) > 5:
            reason = fields[5].split("^")[0]
    return Ack(code, control, reason, data)


async def exchange(
    host: str, port: int, messages: Sequence[bytes], timeout: float = 60.0
) -> list[Ack | None]:
    """Send messages one after the other on one connection, each after the previous ACK;
    None for a message whose connection ended without an answer (the rest are not sent)."""
    reader, writer = await asyncio.open_connection(host, port)
    answers: list[Ack | None] = []
    try:
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.readuntil(END), timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                answers.append(None)
                break
            answers.append(read_ack(data.removeprefix(START)[: -len(END)]))
    finally:
        writer.close()
    return answers + [None] * (len(messages) - len(answers))


def send(
    host: str, port: int, messages: Sequence[bytes], timeout: float = 60.0
) -> list[Ack | None]:
    """`exchange` for code outside an event loop."""
    return asyncio.run(exchange(host, port, messages, timeout))


class ListenerProcess(ChildProcess):
    """`sunes hl7 listen` on free ports, its own state directory, a topic prefix."""

    name = "the HL7 listener"

    def __init__(
        self,
        brokers: str,
        log_dir: Path,
        *extra: str,
        state_dir: Path | None = None,
        topic_prefix: str = "",
    ) -> None:
        self.brokers = brokers
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = log_dir / f"hl7-listen-{self.port}.log"
        self.state_dir = state_dir or log_dir / f"hl7-state-{self.port}"
        self.topic_prefix = topic_prefix
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, seconds: float = 60) -> Self:
        """Start it (again: on the same ports and state) and wait until /health says ok."""
        self.process = subprocess.Popen(
            [SUNES, "hl7", "listen", "--brokers", self.brokers, "--port", str(self.port),
             "--metrics-port", str(self.metrics_port), "--state-dir", str(self.state_dir),
             "--topic-prefix", self.topic_prefix, "--loglevel", "info", *self.extra],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + seconds
        while self.health() != 200:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the listener exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the listener was not ready in {seconds} s:\n{self.log_tail()}"
                )
            time.sleep(0.2)
        return self

    def _get(self, path: str) -> tuple[int, bytes] | None:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), b""
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def health(self) -> int | None:
        got = self._get("/health")
        return got[0] if got else None

    def metrics(self) -> str:
        got = self._get("/metrics")
        return got[1].decode() if got else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
