"""`sunes worker`: run one stream worker until stopped (SIGINT / SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from streams.cli.errors import CliError, Exit
from streams.cli.options import add_worker_options
from streams.kafka_clients import BOOTSTRAP_ENV
from streams.worker.config import WorkerConfig, config_from_args
from streams.worker.stop_bound import STOP_TIMEOUT_EXIT


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a stream worker (Faust): consume the topics, serve /indicators and /metrics",
        description="Consume the input topics, keep every establishment's indicators, and "
        "serve GET /indicators, /metrics and /health. Settings come from SUNES_* environment "
        "variables (see README) and these flags.",
        epilog=f"exit status: {Exit.USAGE} a bad setting, or workers of another release "
        f"still run on the app id; {Exit.KAFKA} Kafka could not be "
        f"reached or the topics not created; {STOP_TIMEOUT_EXIT} it did not stop within "
        "--stop-grace-seconds (recovered at the next start); else the worker's when it stops",
    )
    add_worker_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return run_worker(config_from_args(args), args.loglevel)


def _use_uvloop() -> None:
    """uvloop's event loop: measured ~13-20 % less CPU per event than asyncio's."""
    try:
        import uvloop
    except ImportError:  # not on every platform: asyncio's loop works too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_worker(config: WorkerConfig, loglevel: str = "warning") -> int:
    import faust  # heavy: only when a worker really starts

    from streams.kafka_clients import TopicSetupError, ensure_topics
    from streams.topic_configs import horizon_retention_ms
    from streams.worker import gc_tuning, local_state
    from streams.worker.app import SunesWorker
    from streams.worker.log_limits import limit_kafka_client_logs
    from streams.worker.release_guard import ReleaseMixError, wait_for_one_release
    from streams.worker.stop_bound import StopDeadline
    from topics.names import TopicSpec

    _use_uvloop()
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    limit_kafka_client_logs()
    try:
        # The internal topic too: the ingest stage may write to it before Faust declares it.
        internal = TopicSpec(config.internal_topic, config.partitions, False, "bundles by FINESS")
        # The changelog too (Faust would create the same, compacted): checked when it exists.
        changelog = TopicSpec(config.changelog_topic, config.partitions, True, "facts table")
        asyncio.run(ensure_topics(config.bootstrap_servers, config.security,
                                  (*config.topics.specs(), internal, changelog),
                                  replication_factor=config.replication_factor,
                                  horizon_ms=horizon_retention_ms(config.rules)))  # fmt: skip
        # Before joining: workers of another release on this app id could not read ours.
        groups = (config.app_id, config.ingest_group)
        asyncio.run(wait_for_one_release(config.bootstrap_servers, config.security, groups))
    except (TopicSetupError, ReleaseMixError):
        raise  # exit code and message: streams.cli.main
    except Exception as exc:  # the broker is the usual culprit: say so plainly
        raise CliError(
            f"cannot reach Kafka at {config.bootstrap_servers} ({exc.__class__.__name__}: "
            f"{exc}); start a broker or set {BOOTSTRAP_ENV} / --brokers",
            Exit.KAFKA,
        ) from exc
    config.data_dir.mkdir(parents=True, exist_ok=True)
    worker = SunesWorker(config)
    gc_tuning.tune()  # streams/worker/gc_tuning.py
    on_disk = config.store.startswith("rocksdb")
    if on_disk:
        local_state.prepare(config.data_dir, config.app_id, Path(worker.app.conf.tabledir))
    try:
        deadline = StopDeadline(config.stop_grace_seconds)

        class Runner(faust.Worker):
            def _schedule_shutdown(self, signal: Any) -> None:
                deadline.arm()  # SIGTERM, SIGINT: exit within the grace period
                super()._schedule_shutdown(signal)

            def on_worker_shutdown(self) -> None:
                deadline.arm()  # a crash (e.g. the ingest stage's) stops within it too
                super().on_worker_shutdown()

        runner = Runner(worker.app, loglevel=loglevel, quiet=True)
        # No terminal spinner: at warning level it sets the root logger to DEBUG so that it
        # spins on every record, and every debug call of Faust and aiokafka (one per message
        # produced) then builds a log record: 15 % of the worker's CPU, measured with py-spy.
        runner.spinner = None
        runner.execute_from_commandline()
    except SystemExit as stop:
        # clean only if every DB's memtables reached the disk (no WAL: local_state.py)
        if on_disk and stop.code in (0, None) and worker.table_store.flushed:
            local_state.mark_clean(config.data_dir, config.app_id)
        raise
    return 0
