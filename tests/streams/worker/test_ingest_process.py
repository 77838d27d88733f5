"""The ingest process's plumbing without a broker: its start message crosses the pipe whole,
it logs as the worker does, and its reports become the worker's metrics and /health. (Its
lifecycle with real processes and a real broker: test_ingest_process_kafka.py.)"""

from __future__ import annotations

import asyncio
import io
import logging
import pathlib
import pickle

import pytest
from prometheus_client import CollectorRegistry

from monitoring.pipeline import IngestTally, PipelineMetrics
from processors.settings import Settings
from streams.kafka_clients import Security
from streams.worker.config import WorkerConfig
from streams.worker.expired import Expired, ExpiredRecordsCheck
from streams.worker.ingest_process import (
    ChildStart,
    IngestProcess,
    IngestProcessDied,
    Report,
    _dumps,
    _log_like_the_worker,
)

# Faust's (mode's) format: fields a plain LogRecord lacks
FAUST_FORMAT = "[%(asctime)s] [%(process)s] [%(levelname)s] %(log_color)s%(message)s %(extra)s"


def test_the_start_message_crosses_the_pipe_whole_counting_rules_included() -> None:
    config = WorkerConfig(
        app_id="app", rules=Settings(grace_days=3, exclude_deceased=True), ingest_batch=123
    )
    start = ChildStart(config, "app-events-by-finess", logging.INFO, FAUST_FORMAT, None)
    assert pickle.loads(_dumps(start)) == start


def test_the_ingest_process_keeps_no_access_secret() -> None:
    config = WorkerConfig(app_id="app")
    process = IngestProcess(
        config, "t", PipelineMetrics(CollectorRegistry()), _expired(CollectorRegistry())
    )
    assert process.config.access == WorkerConfig().access
    assert process.config.pages == WorkerConfig().pages
    assert process.config.rules == config.rules and process.config.app_id == "app"


def test_the_child_logs_with_the_worker_format_its_missing_fields_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    _log_like_the_worker(ChildStart(WorkerConfig(), "t", logging.WARNING, FAUST_FORMAT, None))
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("streams.worker.ingest").warning("dead-lettered %s", "x[0]@1")
    logging.getLogger("streams.worker.ingest").info("not shown")
    line = stream.getvalue()
    assert line.endswith("[WARNING] dead-lettered x[0]@1 \n")
    assert line.count("\n") == 1


def _expired(registry: CollectorRegistry) -> ExpiredRecordsCheck:
    return ExpiredRecordsCheck("127.0.0.1:1", Security(), registry)


def test_a_report_becomes_the_workers_metrics_lag_partitions_and_health() -> None:
    registry = CollectorRegistry()
    pipeline = PipelineMetrics(registry)
    expired = _expired(registry)
    process = IngestProcess(WorkerConfig(), "t", pipeline, expired)
    assert (process.lag(), process.assigned(), process.broker_error) == ({}, [], None)
    assert not process.started()  # the worker says `starting` until its first report
    assert process.health() == {"mode": "process", "pid": None, "last_report_seconds": None}
    tally = IngestTally()
    tally.consumed_valid("sunes.stays.v1", 10)
    tally.consumed_invalid("sunes.stays.v1", "invalid_json")
    hole = Expired("app-ingest", "sunes.stays.v1", 0, 4, 10)
    report = Report(
        tally.take(), {("sunes.stays.v1", 0): 7}, ["sunes.stays.v1/0"], "KafkaError", [hole]
    )
    process._apply(Report(IngestTally().take(), {}, [], None, started=False))
    assert not process.started()  # spawned, its clients not started yet
    process._apply(pickle.loads(pickle.dumps(report)))  # as it crosses the pipe
    process._apply(Report(tally.take(), {("sunes.stays.v1", 0): 5}, ["sunes.stays.v1/0"], None))
    stays = {"topic": "sunes.stays.v1"}
    assert (
        registry.get_sample_value("sunes_events_consumed_total", {**stays, "outcome": "valid"})
        == 10
    )
    assert (
        registry.get_sample_value("sunes_events_consumed_total", {**stays, "outcome": "invalid"})
        == 1
    )
    assert (
        registry.get_sample_value(
            "sunes_deadletter_events_total", {**stays, "reason": "invalid_json"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("sunes_records_expired_total", {**stays, "partition": "0"}) == 6
    )
    assert process.lag() == {("sunes.stays.v1", 0): 5}
    assert process.assigned() == ["sunes.stays.v1/0"]
    assert process.broker_error is None  # the brokers answer again
    assert process.started()
    assert process.health()["last_report_seconds"] == 0.0


def test_an_ingest_process_that_fails_is_said_with_its_status_and_its_error_type() -> None:
    """A real child, on a broker address nobody answers: its producer cannot bootstrap, the
    child says why (the exception's type only) and exits 1; the parent raises."""
    registry = CollectorRegistry()
    config = WorkerConfig(brokers=("127.0.0.1:1",), app_id="app")
    process = IngestProcess(config, "t", PipelineMetrics(registry), _expired(registry))
    with pytest.raises(IngestProcessDied, match=r"ended with status 1 after KafkaConnectionError"):
        asyncio.run(process.run())
    assert process.pid is not None and process.failure == "KafkaConnectionError"


def test_the_ingest_process_runs_the_workers_own_code_whatever_the_working_directory(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started from a directory holding another `streams` package (another checkout: a bench
    comparing builds, an operator in a repository), the child still runs the worker's own
    module, not that one (`python -m` puts the working directory first on sys.path)."""
    other = tmp_path / "streams" / "worker"
    other.mkdir(parents=True)
    for package in (tmp_path / "streams", other):
        (package / "__init__.py").write_text("")
    (other / "ingest_process.py").write_text("raise SystemExit(7)\n")
    monkeypatch.chdir(tmp_path)
    registry = CollectorRegistry()
    config = WorkerConfig(brokers=("127.0.0.1:1",), app_id="app")
    process = IngestProcess(config, "t", PipelineMetrics(registry), _expired(registry))
    with pytest.raises(IngestProcessDied, match=r"ended with status 1 after KafkaConnectionError"):
        asyncio.run(process.run())
