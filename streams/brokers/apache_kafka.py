"""Real Apache Kafka 4.x as a single KRaft node (broker and controller), run from Maven jars.

The jars come from Maven Central once, through `scripts/fetch-kafka-jars.sh`, into
``${SUNES_CACHE_DIR:-~/.cache/sunes-stream}/kafka-<version>/jars/``; no Docker, no tarball.
Each broker gets a temporary directory (data, configuration, ``broker.log``) removed by
`stop()`, and two free ports on 127.0.0.1 (clients, controller) chosen at the first start.

    with ApacheKafkaBroker() as broker:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)

`kill()` ends the JVM with SIGKILL and keeps the data: a later `start()` brings the same
broker back (same ports, same data), as after a crash; `stop()` ends it for good.

`sasl_ssl=SaslSslListener(keystore, users)` adds a second client listener, SASL_SSL with
SCRAM, at `sasl_ssl_bootstrap_servers` (the SCRAM users are created when the storage is
formatted); the PLAINTEXT listener and the controller's stay as they are.
"""

from __future__ import annotations

import atexit
import base64
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
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
from streams.kafka_clients import BOOTSTRAP_ENV

log = logging.getLogger(__name__)

#: Keep in step with the default of scripts/fetch-kafka-jars.sh.
DEFAULT_KAFKA_VERSION = "4.1.2"
#: Picks another Kafka version, for this module and for the fetch script alike.
VERSION_ENV = "SUNES_KAFKA_VERSION"
CACHE_ENV = "SUNES_CACHE_DIR"
FETCH_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch-kafka-jars.sh"
FETCH_COMMAND = "bash scripts/fetch-kafka-jars.sh"

# The log cleaner (Faust's changelog topics are compacted) allocates its dedupe buffer at
# start-up; with a heap much under 768 MB it can fail to start. SerialGC: one broker on a
# 2-core machine gains nothing from parallel collectors and starts faster.
DEFAULT_HEAP = "1g"
JVM_OPTIONS = ("-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true")
# StorageTool runs for a second: the C1 compiler alone and a small heap start it faster.
TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

# log4j2 from a properties file: a YAML configuration would need jackson-dataformat-yaml
# on the class path (it is there today, but only as a transitive dependency).
LOG4J2_PROPERTIES = """\
status = warn
name = sunes-kafka
# Kafka logs its own shutdown; log4j's hook would close the appenders before it ends.
shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
# One line per partition and state change: only useful when debugging Kafka itself.
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def kafka_version() -> str:
    """The Kafka version to run: $SUNES_KAFKA_VERSION, else DEFAULT_KAFKA_VERSION."""
    return os.environ.get(VERSION_ENV) or DEFAULT_KAFKA_VERSION


def cache_dir() -> Path:
    """${SUNES_CACHE_DIR:-~/.cache/sunes-stream}, where fetched tools are kept."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache/sunes-stream"


def default_jars_dir(version: str | None = None) -> Path:
    return cache_dir() / f"kafka-{version or kafka_version()}" / "jars"


def _has_core_jar(jars_dir: Path, version: str | None) -> bool:
    pattern = f"kafka_2.13-{version}.jar" if version else "kafka_2.13-*.jar"
    return jars_dir.is_dir() and any(jars_dir.glob(pattern))


def fetch_jars(version: str | None = None) -> Path:
    """Run scripts/fetch-kafka-jars.sh (a no-op when cached) and return the jars directory."""
    version = version or kafka_version()
    if not FETCH_SCRIPT.is_file():
        raise BrokerSetupError(
            f"the Apache Kafka {version} jars are not in {default_jars_dir(version)} and "
            f"{FETCH_SCRIPT} is not there to fetch them (streams is not run from a checkout); "
            f"run `{FETCH_COMMAND}` from a checkout of sunes-stream with the same "
            f"{CACHE_ENV}, or use {BOOTSTRAP_ENV} for a broker that already runs"
        )
    log.info("Apache Kafka %s jars not cached yet: running %s", version, FETCH_SCRIPT)
    env = {**os.environ, VERSION_ENV: version}
    result = subprocess.run(
        ["bash", str(FETCH_SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BrokerSetupError(
            f"`{FETCH_COMMAND}` failed (exit code {result.returncode}); it needs Java 17+, "
            f"Maven and access to Maven Central. Its output:\n{result.stderr.strip()}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def find_java() -> str:
    """$JAVA_HOME/bin/java, else java on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        return on_path
    raise BrokerSetupError(
        "Apache Kafka 4 needs Java 17 or later, and no `java` was found (neither "
        "$JAVA_HOME/bin/java nor on PATH); install one (Debian: apt-get install "
        "openjdk-17-jre-headless) or set JAVA_HOME"
    )


def new_cluster_id() -> str:
    # The form of Kafka's own Uuid.randomUuid(): 16 random bytes, URL-safe base64, no padding;
    # like Kafka, never one starting with "-", which command lines take for an option.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# StorageTool parses `--add-scram 'MECHANISM=[name=...,password=...]'` without escapes.
_SCRAM_UNSAFE = set(",[]=\"'")


@dataclass(frozen=True)
class SaslSslListener:
    """A SASL_SSL client listener with SCRAM, beside the PLAINTEXT one.

    keystore: a PEM file with the broker's private key (PKCS#8, unencrypted) and its
    certificate chain; the certificate must name 127.0.0.1 (subjectAltName IP:127.0.0.1).
    users: SCRAM user name → password, created when the storage is formatted.
    """

    keystore: Path
    users: Mapping[str, str] = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"

    def __post_init__(self) -> None:
        if self.mechanism not in SCRAM_MECHANISMS:
            raise BrokerSetupError(
                f"SASL mechanism {self.mechanism!r}: use one of {', '.join(SCRAM_MECHANISMS)}"
            )
        if not self.users:
            raise BrokerSetupError("a SASL_SSL listener needs at least one SCRAM user")
        for name, password in self.users.items():
            if not name or not password or _SCRAM_UNSAFE & set(name + password):
                raise BrokerSetupError(
                    f"SCRAM user {name!r}: name and password must be non-empty, without any "
                    f"of {''.join(sorted(_SCRAM_UNSAFE))}"
                )
        if not Path(self.keystore).is_file():
            raise BrokerSetupError(f"the SASL_SSL keystore {self.keystore} is not a file")

    def properties(self) -> dict[str, str]:
        """server.properties entries of the listener named SASL_SSL."""
        prefix = "listener.name.sasl_ssl."
        return {
            "sasl.enabled.mechanisms": self.mechanism,
            f"{prefix}sasl.enabled.mechanisms": self.mechanism,
            f"{prefix}{self.mechanism.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.location": str(Path(self.keystore).resolve()),
        }

    def format_arguments(self) -> list[str]:
        """StorageTool format arguments that create the SCRAM users."""
        arguments = []
        for name, password in self.users.items():
            arguments += ["--add-scram", f"{self.mechanism}=[name={name},password={password}]"]
        return arguments


class ApacheKafkaBroker(LocalProcessMixin):
    """One Apache Kafka KRaft node on 127.0.0.1, started from the cached Maven jars."""

    NAME = "Apache Kafka"

    kind = "apache"

    def __init__(
        self,
        *,
        version: str | None = None,
        jars_dir: Path | str | None = None,
        num_partitions: int = 1,
        heap: str = DEFAULT_HEAP,
        start_timeout: float = 90.0,
        stop_timeout: float = 30.0,
        fetch: bool = True,
        extra_properties: Mapping[str, str] | None = None,
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        """
        version: Kafka version (default $SUNES_KAFKA_VERSION or DEFAULT_KAFKA_VERSION).
        jars_dir: where the jars are; default the cache. An explicit one is never fetched.
        num_partitions: partitions of auto-created topics.
        fetch: run scripts/fetch-kafka-jars.sh when the cache is empty (else raise).
        extra_properties: server.properties entries added last (so they win).
        sasl_ssl: a SASL_SSL/SCRAM client listener too, on a port of its own.
        """
        self.version = version or kafka_version()
        self._explicit_jars = Path(jars_dir) if jars_dir is not None else None
        self.num_partitions = num_partitions
        self.heap = heap
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.fetch = fetch
        self.extra_properties = dict(extra_properties or {})
        self.sasl_ssl = sasl_ssl
        self._sasl_port = 0
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._controller_port = 0

    # -- what clients need -------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        if not self._port:
            raise BrokerError("the Apache Kafka broker has not been started: call start() first")
        return f"127.0.0.1:{self._port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """The SASL_SSL listener's address (when the broker was given `sasl_ssl`)."""
        if self.sasl_ssl is None:
            raise BrokerError("this Apache Kafka broker has no SASL_SSL listener (sasl_ssl=...)")
        if not self._sasl_port:
            raise BrokerError("the Apache Kafka broker has not been started: call start() first")
        return f"127.0.0.1:{self._sasl_port}"

    def client_overrides(self) -> dict[str, Any]:
        # A real broker: aiokafka's and Faust's defaults all work.
        return {}

    def faust_settings(self) -> dict[str, Any]:
        return {}

    # -- state -------------------------------------------------------------------------

    @property
    def workdir(self) -> Path | None:
        """The temporary directory (data, configuration, log) while the broker exists."""
        return self._workdir

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start the broker (or restart it after kill()) and wait until it serves metadata."""
        if self.running:
            raise BrokerError(f"Apache Kafka is already running on {self.bootstrap_servers}")
        java = find_java()
        jars = self._jars()
        began = time.monotonic()
        first_start = self._workdir is None
        for attempt in (1, 2):
            if first_start:
                try:
                    self._prepare(java, jars)
                except BaseException:
                    self._abandon_workdir()
                    raise
            self._launch(java, jars)
            reason = wait_until_ready(
                self.bootstrap_servers, self.start_timeout, lambda: process_exit_reason(self._proc)
            )
            if reason is None:
                break
            tail = self.log_tail()
            message = with_log_tail(
                f"Apache Kafka {self.version} did not become ready on "
                f"{self.bootstrap_servers}: {reason}",
                self.log_path,
            )
            if self._proc is not None:
                hard_kill(self._proc)
            # The ports are picked before Java binds them: another process may win the race.
            if first_start and attempt == 1 and "Address already in use" in tail:
                log.warning("Apache Kafka lost a port race; retrying on other ports")
                self._remove_workdir()
                continue
            if first_start:
                self._abandon_workdir()
            raise BrokerStartError(message)
        atexit.register(self._stop_at_exit)
        log.info(
            "Apache Kafka %s ready on %s in %.1f s (log: %s)",
            self.version,
            self.bootstrap_servers,
            time.monotonic() - began,
            self.log_path,
        )

    def stop(self) -> None:
        """Orderly shutdown (SIGTERM, SIGKILL after stop_timeout); removes the temp dir."""
        atexit.unregister(self._stop_at_exit)
        if self._proc is not None:
            terminate(self._proc, self.stop_timeout, "Apache Kafka")
            self._proc = None
            log.info("Apache Kafka on 127.0.0.1:%s stopped", self._port)
        self._remove_workdir()

    # -- internals ---------------------------------------------------------------------

    def _jars(self) -> Path:
        if self._explicit_jars is not None:
            if not _has_core_jar(self._explicit_jars, None):
                raise BrokerSetupError(
                    f"no Apache Kafka jars (kafka_2.13-*.jar) in {self._explicit_jars}; "
                    f"run `{FETCH_COMMAND}` and pass its output directory, or leave "
                    f"jars_dir unset to use the cache ({default_jars_dir(self.version)})"
                )
            return self._explicit_jars
        jars = default_jars_dir(self.version)
        if _has_core_jar(jars, self.version):
            return jars
        if not self.fetch:
            raise BrokerSetupError(
                f"the Apache Kafka {self.version} jars are not in {jars}; run "
                f"`{VERSION_ENV}={self.version} {FETCH_COMMAND}` once (needs Java 17+ and "
                f"Maven), or set {BOOTSTRAP_ENV} to use a broker that already runs"
            )
        jars = fetch_jars(self.version)
        if not _has_core_jar(jars, self.version):
            raise BrokerSetupError(
                f"`{FETCH_COMMAND}` ran but {jars} holds no kafka_2.13-{self.version}.jar"
            )
        return jars

    def _properties(self) -> dict[str, str]:
        assert self._workdir is not None
        port, cport = self._port, self._controller_port
        ports = {"PLAINTEXT": port, "CONTROLLER": cport}
        protocols = {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT"}
        if self.sasl_ssl is not None:
            ports["SASL_SSL"], protocols["SASL_SSL"] = self._sasl_port, "SASL_SSL"
        listeners = ",".join(f"{name}://127.0.0.1:{p}" for name, p in ports.items())
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self._workdir / "data"),
            "num.partitions": str(self.num_partitions),
            "auto.create.topics.enable": "true",
            # One node: every replication factor and min ISR must be 1, or internal topics
            # (consumer offsets, transactions, share groups) can never be created.
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Internal topics default to 50 partitions each, slow to create and pointless
            # on one node: a few are plenty.
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.num.partitions": "1",
            # The first consumer of a group is not held back 3 s waiting for others.
            "group.initial.rebalance.delay.ms": "0",
            # After a kill(), the restarted node may register only once its previous
            # session expired: 4 s rather than 9 s (still far above a GC pause).
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
        }
        if self.sasl_ssl is not None:
            props.update(self.sasl_ssl.properties())
        props.update(self.extra_properties)
        return props

    def _prepare(self, java: str, jars: Path) -> None:
        """A fresh temp dir, ports, configuration, and the KRaft storage formatted."""
        self._workdir = Path(tempfile.mkdtemp(prefix="sunes-kafka-"))
        self._port, self._controller_port = free_port(), free_port()
        while self._controller_port == self._port:
            self._controller_port = free_port()
        if self.sasl_ssl is not None:
            self._sasl_port = free_port()
            while self._sasl_port in (self._port, self._controller_port):
                self._sasl_port = free_port()
        server_properties = self._workdir / "server.properties"
        server_properties.write_text(
            "".join(f"{key}={value}\n" for key, value in self._properties().items())
        )
        (self._workdir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        command = [
            java,
            *TOOL_JVM_OPTIONS,
            *self._log4j_options(),
            "-cp",
            str(jars / "*"),  # expanded by java itself, not by a shell
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(server_properties),
            *(self.sasl_ssl.format_arguments() if self.sasl_ssl is not None else ()),
        ]
        assert self.log_path is not None
        with self.log_path.open("ab") as out:
            try:
                result = subprocess.run(
                    command, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False
                )
            except subprocess.TimeoutExpired:
                raise BrokerStartError(
                    with_log_tail("kafka.tools.StorageTool format took over 120 s", self.log_path)
                ) from None
        if result.returncode != 0:
            raise BrokerStartError(
                with_log_tail(
                    f"formatting the KRaft storage failed (kafka.tools.StorageTool exit code "
                    f"{result.returncode}); configuration: {server_properties}",
                    self.log_path,
                )
            )

    def _log4j_options(self) -> list[str]:
        assert self._workdir is not None
        return [f"-Dlog4j2.configurationFile={self._workdir / 'log4j2.properties'}"]

    def _launch(self, java: str, jars: Path) -> None:
        assert self._workdir is not None and self.log_path is not None
        command = [
            java,
            f"-Xmx{self.heap}",
            *JVM_OPTIONS,
            *self._log4j_options(),
            "-cp",
            str(jars / "*"),
            "kafka.Kafka",
            str(self._workdir / "server.properties"),
        ]
        log.debug("starting Apache Kafka: %s", " ".join(command))
        with self.log_path.open("ab") as out:
            # Own session: Ctrl-C in a terminal reaches the Python program, which stops its
            # clients before the broker, instead of the broker vanishing under them.
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
                start_new_session=True,
            )

    def _abandon_workdir(self) -> None:
        """After a failed first start (the error carries the log tail): remove the temp dir
        and forget the ports, so that the next start() begins afresh."""
        self._remove_workdir()
        self._port = self._controller_port = self._sasl_port = 0

    def _remove_workdir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
