"""One CLI plumbing: environment defaults read only for the command that runs, one line per bad
setting, one exit-code enum and one error root mapped in `streams.cli.main`."""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.access.config import AccessConfig
from streams.cli import build_parser, main
from streams.cli.errors import CliError, ConfigError, Exit
from streams.cli.options import brokers_from, client_profile_from, topic_names_from
from streams.cli.producer import PublishError
from streams.kafka_clients import (
    BOOTSTRAP_ENV,
    CLIENT_PROFILE_ENV,
    LOCAL_BOOTSTRAP,
    TopicSetupError,
)
from streams.worker.config import WorkerConfig, config_from_args
from topics.names import STAYS

NUMERIC_SETTINGS = [
    "SUNES_PARTITIONS",
    "SUNES_REPLICATION_FACTOR",
    "SUNES_WEB_PORT",
    "SUNES_CACHE_ENTRIES",
    "SUNES_INGEST_BATCH",
    "SUNES_GRACE_DAYS",
    "SUNES_LOOKBACK_DAYS",
    "SUNES_RETENTION_DAYS",
    "SUNES_FUTURE_SKEW_HOURS",
]


@pytest.fixture
def registry_only(tmp_path: Path) -> Path:
    path = tmp_path / "f.ndjson"
    path.write_text(
        '{"type":"establishment","finess":"924410012","name":"CH de Nanterre",'
        '"finess_ej":"758854400","region":"IDF","window":"F2","postponed":false,'
        '"has_lab":true,"has_imaging":true,"cme_presentation":true}\n'
    )
    return path


def sunes(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [Path(sys.executable).with_name("sunes"), *argv],
        capture_output=True, text=True, check=False, timeout=60, env=env,
    )  # fmt: skip


def test_a_bad_partitions_stops_the_worker_with_one_line_naming_it() -> None:
    env = {**os.environ, "SUNES_PARTITIONS": "abc"}
    done = sunes("worker", env=env)
    assert done.returncode == Exit.USAGE == 2
    assert done.stderr.splitlines() == [
        "sunes worker: error: argument --partitions: SUNES_PARTITIONS / --partitions must be "
        "a whole number, got 'abc'"
    ]


@pytest.mark.parametrize("value", ["0", "-5", "100001"])
def test_an_ingest_batch_out_of_bounds_stops_the_worker_naming_it(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNES_INGEST_BATCH", value)
    assert main(["worker", "--brokers", "127.0.0.1:1"]) == Exit.USAGE
    assert (
        f"SUNES_INGEST_BATCH / --ingest-batch must be between 1 and 100000 messages per poll, "
        f"got {value}" in capsys.readouterr().err
    )


def test_the_ingest_batch_reaches_the_worker_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUNES_INGEST_BATCH", raising=False)
    assert config_from_args(build_parser().parse_args(["worker"])).ingest_batch == 5000
    monkeypatch.setenv("SUNES_INGEST_BATCH", "12000")
    assert config_from_args(build_parser().parse_args(["worker"])).ingest_batch == 12000
    args = build_parser().parse_args(["worker", "--ingest-batch", "7000"])
    assert config_from_args(args).ingest_batch == 7000


def test_a_bad_worker_setting_does_not_stop_report(registry_only: Path) -> None:
    env = {**os.environ, "SUNES_PARTITIONS": "abc"}
    done = sunes("report", "--input", str(registry_only), env=env)
    assert done.returncode == Exit.OK, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_build_parser_reads_no_numeric_setting(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, "not-a-number")
    build_parser()  # does not fail: conversion waits for the command that owns the option


@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_every_numeric_setting_is_named_when_wrong(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, "12x")
    assert main(["worker", "--brokers", "127.0.0.1:1"]) == Exit.USAGE
    err = capsys.readouterr().err
    flag = "--" + name.removeprefix("SUNES_").lower().replace("_", "-")
    assert err.splitlines() == [
        f"sunes worker: error: argument {flag}: {name} / {flag} must be a whole number, got '12x'"
    ]


def test_a_bad_grace_days_does_not_stop_simulate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNES_GRACE_DAYS", "thirty")
    out = tmp_path / "s.ndjson"
    assert main(["simulate", "--establishments", "1", "--days", "1", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
    capsys.readouterr()


def test_a_bad_grace_days_stops_report_naming_it(
    monkeypatch: pytest.MonkeyPatch, registry_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNES_GRACE_DAYS", "thirty")
    assert main(["report", "--input", str(registry_only)]) == Exit.USAGE
    assert "SUNES_GRACE_DAYS / --grace-days must be a whole number, got 'thirty'" in (
        capsys.readouterr().err
    )


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNES_PARTITIONS", "abc")  # never converted: the flag is given
    args = build_parser().parse_args(["worker", "--partitions", "12"])
    assert args.partitions == 12
    monkeypatch.setenv("SUNES_PARTITIONS", "3")
    assert build_parser().parse_args(["worker"]).partitions == 3


def test_a_bad_client_profile_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(CLIENT_PROFILE_ENV, "tansuu")
    assert main(["publish", str(tmp_path / "f.ndjson")]) == Exit.USAGE
    assert capsys.readouterr().err.splitlines() == [
        "sunes publish: error: argument --broker-kind: SUNES_CLIENT_PROFILE / --broker-kind "
        "must be kafka or tansu, got 'tansuu'"
    ]


def test_sunes_broker_no_longer_picks_the_client_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SUNES_BROKER names the broker the tests start; the client profile has its own name."""
    monkeypatch.setenv("SUNES_BROKER", "tansu")
    monkeypatch.delenv(CLIENT_PROFILE_ENV, raising=False)
    assert client_profile_from(build_parser().parse_args(["worker"])) == "kafka"
    monkeypatch.setenv(CLIENT_PROFILE_ENV, "tansu")
    for argv in (["worker"], ["publish", "f"], ["simulate"]):
        assert client_profile_from(build_parser().parse_args(argv)) == "tansu"
    config = config_from_args(build_parser().parse_args(["worker"]))
    assert config.client_overrides["max_batch_size"] == 1
    assert config.faust_overrides["producer_max_batch_size"] == 1


def test_brokers_come_from_the_flag_then_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    monkeypatch.delenv("SUNES_BROKERS", raising=False)
    parse = build_parser().parse_args
    assert brokers_from(parse(["publish", "f"])) is None
    assert config_from_args(parse(["worker"])).brokers == (LOCAL_BOOTSTRAP,)
    monkeypatch.setenv(BOOTSTRAP_ENV, "k1:9092,k2:9092")
    assert brokers_from(parse(["publish", "f"])) == "k1:9092,k2:9092"
    assert config_from_args(parse(["worker"])).brokers == ("k1:9092", "k2:9092")
    assert brokers_from(parse(["simulate", "--brokers", "k3:9092"])) == "k3:9092"
    with pytest.raises(ConfigError, match="no broker given"):
        config_from_args(parse(["worker", "--brokers", ""]))


def test_the_topic_prefix_reaches_every_kafka_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNES_TOPIC_PREFIX", "ght-a.")
    parse = build_parser().parse_args
    topics = config_from_args(parse(["worker"])).topics
    assert topics.stays == "ght-a.sunes.stays.v1"
    assert topics.deadletter == "ght-a.sunes.deadletter.v1"
    for argv in (["publish", "f"], ["simulate"]):
        assert topic_names_from(parse(argv)) == topics
    assert topic_names_from(parse(["publish", "f", "--topic-prefix", ""])).stays == STAYS


def test_a_bad_topic_prefix_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNES_TOPIC_PREFIX", "ght a/")
    assert main(["worker"]) == Exit.USAGE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SUNES_TOPIC_PREFIX / --topic-prefix must be" in err
    assert "'ght a/'" in err


def test_kafka_options_are_defined_once() -> None:
    """--brokers and --broker-kind: the same definition in the three commands."""
    parser = build_parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    for flag in ("--brokers", "--broker-kind"):
        helps = {
            name: next(a.help for a in subparsers[name]._actions if flag in a.option_strings)
            for name in ("worker", "publish", "simulate")
        }
        assert helps["publish"] == helps["simulate"], flag
        assert helps["worker"].startswith(helps["publish"].rstrip("]")), flag
    source = Path(__file__).resolve().parents[3] / "streams"
    defined = [
        (path.name, node.args[0].value)
        for path in sorted(source.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value in ("--brokers", "--broker-kind")
    ]
    assert sorted(defined) == [("options.py", "--broker-kind"), ("options.py", "--brokers")]


def test_the_errors_share_one_root_mapped_to_exit_codes() -> None:
    assert [int(e) for e in Exit] == [0, 1, 2, 3, 130]
    assert ConfigError("x").exit == Exit.USAGE
    assert TopicSetupError("x").exit == Exit.KAFKA
    assert PublishError("x").exit == Exit.KAFKA
    assert CliError("x", Exit.KAFKA).exit == Exit.KAFKA
    assert isinstance(ConfigError("x"), ValueError)  # as before the root existed


def test_main_prints_a_cli_error_and_returns_its_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli import report

    def fail(args: argparse.Namespace) -> int:
        raise TopicSetupError("the topics could not be created")

    monkeypatch.setattr(report, "run", fail)
    assert main(["report", "--input", "x"]) == Exit.KAFKA
    assert capsys.readouterr().err == "error: the topics could not be created\n"


def test_an_unknown_flag_is_still_argparse_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--input", "x", "--nope"]) == Exit.USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: sunes ")  # argparse: the usage, then the error
    assert "unrecognized arguments: --nope" in err


def test_access_settings_from_env_and_their_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SUNES_OIDC_ISSUER": "http://127.0.0.1:8080/realms/sunes",
        "SUNES_OIDC_AUDIENCE": "sunes-worker",
        "SUNES_OIDC_LEEWAY_SECONDS": "10",
        "SUNES_FIGURES_ACCESS": "token",
    }

    def access_with(changes: dict[str, str]) -> AccessConfig:
        for name, value in {**env, **changes}.items():
            monkeypatch.setenv(name, value)
        return config_from_args(build_parser().parse_args(["worker"])).access

    access = access_with({})
    assert (access.oidc_issuer, access.oidc_audience, access.oidc_leeway_seconds) == (
        "http://127.0.0.1:8080/realms/sunes", "sunes-worker", 10,
    )  # fmt: skip
    assert access.figures_access == "token" and access.oidc_scope_claim == "sunes_scopes"
    for wrong, says in (
        ({"SUNES_OIDC_AUDIENCE": ""}, "SUNES_OIDC_AUDIENCE"),
        ({"SUNES_OIDC_LEEWAY_SECONDS": "3600"}, "SUNES_OIDC_LEEWAY_SECONDS must be from 0 to 300"),
        ({"SUNES_FIGURES_ACCESS": "public"}, "SUNES_FIGURES_ACCESS must be open or token"),
        ({"SUNES_OIDC_ISSUER": "sso.example"}, "issuer's URL"),
    ):
        with pytest.raises(ConfigError, match=says):
            access_with(wrong)


def test_a_bad_tokens_file_stops_the_worker_before_kafka(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "tokens.toml"
    bad.write_text('[[token]]\nname = "x"\nsha256 = "abc"\nscopes = ["national"]\n')
    assert main(["worker", "--brokers", "127.0.0.1:1", "--access-tokens-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "sha256 must be the token's hex sha256" in err and "SUNES_ACCESS_TOKENS_FILE" in err


def test_a_bad_ingest_mode_stops_the_worker_with_one_line_naming_it() -> None:
    done = sunes("worker", env={**os.environ, "SUNES_INGEST": "thread"})
    assert done.returncode == Exit.USAGE
    assert done.stderr.splitlines() == [
        "sunes worker: error: argument --ingest: SUNES_INGEST / --ingest must be process or "
        "inline, got 'thread'"
    ]


def test_the_ingest_mode_reaches_the_worker_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUNES_INGEST", raising=False)
    assert config_from_args(build_parser().parse_args(["worker"])).ingest == "process"
    monkeypatch.setenv("SUNES_INGEST", "Inline")
    assert config_from_args(build_parser().parse_args(["worker"])).ingest == "inline"
    args = build_parser().parse_args(["worker", "--ingest", "process"])
    assert config_from_args(args).ingest == "process"
    with pytest.raises(ConfigError, match="SUNES_INGEST / --ingest must be process or inline"):
        WorkerConfig(ingest="fork")
