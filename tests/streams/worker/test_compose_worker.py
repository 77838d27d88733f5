"""The worker as docker-compose runs it (RocksDB store, its data dir), on a real broker.

No Docker engine runs here: the test starts `sunes worker` with the compose file's worker
environment, only the addresses and the data dir's root changed, and checks that the state
is on disk, that a worker killed with SIGKILL and restarted serves the batch figures again
(its tables rebuilt from the changelog: streams/worker/local_state.py), and that one stopped cleanly
leaves every DB flushed and restarts on its disk. The DBs are written without RocksDB's WAL
(the changelog is the durable copy: streams/worker/local_state.py).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from rocksdict import AccessType, Options, Rdict

from streams.brokers._common import free_port
from streams.testing import WorkerProcess, publish, rows_of
from tests.monitoring.tools import REPO_ROOT, load_yaml
from tests.streams.worker.test_worker_kafka import dataset, reference, wait_for_rows

pytestmark = pytest.mark.kafka


def compose_worker_env() -> dict[str, str]:
    compose = load_yaml(REPO_ROOT / "docker-compose.yml")
    environment = compose["services"]["worker-1"]["environment"]
    return {name: str(value) for name, value in environment.items()}


def test_compose_settings_keep_the_state_on_disk_and_restart_on_it(
    tmp_path: Path, kafka_bootstrap_servers: str
) -> None:
    env = compose_worker_env()
    assert env["SUNES_STORE"] == "rocksdb://"
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        SUNES_WEB_HOST="127.0.0.1",
        SUNES_WEB_PORT=str(free_port()),
        SUNES_DATA_DIR=str(tmp_path / env["SUNES_DATA_DIR"].lstrip("/")),
        SUNES_APP_ID=f"compose-{uuid.uuid4().hex[:8]}",
    )
    messages, finess = dataset(seed=31, establishments=2, days=10)
    expected = reference(messages, finess)
    worker = WorkerProcess(kafka_bootstrap_servers, env["SUNES_APP_ID"], tmp_path)
    worker.start(env)
    try:
        publish(kafka_bootstrap_servers, messages)
        wait_for_rows([worker], finess, expected)
        databases = list(Path(env["SUNES_DATA_DIR"]).rglob("CURRENT"))
        assert databases, "RocksDB files under the compose data dir"
        assert_no_wal(Path(env["SUNES_DATA_DIR"]))  # written, not yet flushed
    finally:
        worker.kill()

    for how in ("after SIGKILL", "after a clean stop"):
        restarted = WorkerProcess(kafka_bootstrap_servers, env["SUNES_APP_ID"], tmp_path)
        began = time.monotonic()
        restarted.start(env)
        try:
            wait_for_rows([restarted], finess, expected)
            print(f"restart {how} → exact figures in {time.monotonic() - began:.1f} s")
            assert rows_of(restarted.indicators(), finess) == expected
            assert_no_wal(Path(env["SUNES_DATA_DIR"]))  # the recovery's writes neither
        finally:
            restarted.stop()
        log = restarted.log_tail(400)
        rebuilt = "not clean: its local tables are rebuilt" in log
        assert rebuilt == (how == "after SIGKILL")
        assert ("was clean: its local tables are kept" in log) == (how == "after a clean stop")
        if how == "after SIGKILL":  # it stopped cleanly: every DB flushed
            assert_in_table_files(Path(env["SUNES_DATA_DIR"]))


def assert_no_wal(data_dir: Path) -> None:
    """Every DB is written without RocksDB's write-ahead log: its log files stay empty."""
    for path in (current.parent for current in data_dir.rglob("CURRENT")):
        wal = {log.name: log.stat().st_size for log in path.glob("*.log")}
        assert not any(wal.values()), f"{path.name}: written without a WAL ({wal})"


def assert_in_table_files(data_dir: Path) -> None:
    """After a clean stop the tables are in RocksDB's table files, with no WAL to replay."""
    holding = 0
    for path in (current.parent for current in data_dir.rglob("CURRENT")):
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            holds = any(True for _ in db.items())
        finally:
            db.close()
        if holds:
            holding += 1
            assert list(path.glob("*.sst")), f"{path.name}: its memtables flushed at the stop"
    assert holding, "the tables are on disk"
