"""docker-compose.yml and the Dockerfile, checked without a Docker engine: structure,
pinned images, mounted paths, dependencies, topics, and agreement with prometheus.yml."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.tools import PROMETHEUS_DIR, REPO_ROOT, load_yaml

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

# Keys of a compose service (compose specification) that this stack may use: a typo such
# as `depend_on` would otherwise be ignored silently by this test and rejected by Docker.
SERVICE_KEYS = {
    "build", "command", "container_name", "depends_on", "entrypoint", "environment",
    "healthcheck", "hostname", "image", "ports", "profiles", "restart", "user", "volumes",
    "working_dir", "deploy", "labels", "networks", "stop_grace_period", "ulimits",
}  # fmt: skip
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}
DEPENDENCY_CONDITIONS = {
    "service_started",
    "service_healthy",
    "service_completed_successfully",
}
WORKER_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "SUNES_WEB_HOST": "0.0.0.0",
    "SUNES_WEB_PORT": "6066",
    "SUNES_STORE": "rocksdb://",
    "SUNES_DATA_DIR": "/var/lib/sunes",
}
TOPICS = {
    "sunes.stays.v1": 6,
    "sunes.dmp.v1": 6,
    "sunes.mss.v1": 6,
    "sunes.establishments.v1": None,
    "sunes.deadletter.v1": None,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svc: dict[str, dict[str, Any]] = compose["services"]
    return svc


def workers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in services.items()
        if "build" in svc and _command(svc)[:2] == ["sunes", "worker"]
    }


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            found.append((instruction.upper(), args.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    return instructions[last_from:]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form: {args}"
    return [str(v) for v in value]


def _command(svc: dict[str, Any]) -> list[str]:
    """The command a service runs: its entrypoint (or the Dockerfile's) + its command."""
    entrypoint = _as_list(svc.get("entrypoint"))
    if not entrypoint and "build" in svc:
        entrypoint = next(_exec_form(a) for i, a in reversed(_final_stage()) if i == "ENTRYPOINT")
    return entrypoint + _as_list(svc.get("command"))


def _bind_mounts(svc: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in svc.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_top_level_structure(compose: dict[str, Any]) -> None:
    # `x-…` keys are extension fields (YAML anchors shared by services).
    unknown = {key for key in compose if not key.startswith("x-")} - TOP_LEVEL_KEYS
    assert not unknown, unknown
    assert "version" not in compose  # obsolete in the compose specification
    expected = {"kafka", "kafka-init", "simulator", "prometheus", "alertmanager", "grafana"}
    assert expected <= set(compose["services"])


def test_service_keys_are_known(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        unknown = set(svc) - SERVICE_KEYS
        assert not unknown, f"{name}: unknown keys {unknown}"
        assert "image" in svc or "build" in svc, f"{name}: neither image nor build"


def test_every_image_is_pinned_to_a_version(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "image" not in svc:
            continue
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: {image} has no tag"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to x.y.z"


def test_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    stage = _final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    users = [args for ins, args in stage if ins == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "must run as non-root"
    entrypoints = [args for ins, args in stage if ins == "ENTRYPOINT"]
    assert entrypoints and _exec_form(entrypoints[-1]) == ["sunes"]
    assert ("EXPOSE", "6066") in stage
    for svc in services.values():
        if "build" in svc:
            build = svc["build"]
            assert (REPO_ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()


def test_dockerfile_copies_existing_paths() -> None:
    for instruction, args in dockerfile_instructions():
        if instruction != "COPY" or args.startswith("--from"):
            continue
        *sources, _destination = args.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), (
                f"Dockerfile copies {source}, which is not in the repository "
                "(pip install . needs it: pyproject.toml names README.md as the readme)"
            )


def test_the_image_compiles_processors_with_the_pinned_mypy() -> None:
    """The build stage's wheel is compiled by mypyc (setup.py) with the mypy of the dev extra:
    the build `make venv` makes and the tests run."""
    (build,) = [
        a for i, a in dockerfile_instructions() if i == "RUN" and "SUNES_MYPYC_WHEEL=1" in a
    ]
    dev = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["dev"]
    (pin,) = [d for d in dev if d.startswith("mypy==")]
    assert f'"{pin}"' in build


def test_bind_mounted_host_paths_exist(services: dict[str, dict[str, Any]]) -> None:
    mounts = [(name, m) for name, svc in services.items() for m in _bind_mounts(svc)]
    assert mounts
    for name, (source, _target) in mounts:
        assert (REPO_ROOT / source).exists(), f"{name} mounts {source}, missing from the repo"


def test_dependencies(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for dep, spec in depends.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert not services[dep].get("profiles"), f"{name} depends on optional {dep}"
            condition = spec.get("condition", "service_started")
            assert condition in DEPENDENCY_CONDITIONS
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[dep].get("restart", "no") == "no", f"{dep} must be one-shot"


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("ZOOKEEPER" in key for key in env)
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "healthcheck" in kafka


def test_topics_are_created(services: dict[str, dict[str, Any]]) -> None:
    init = services["kafka-init"]
    script = " ".join(_command(init))
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "--if-not-exists" in script  # re-running the stack must not fail
    for topic in TOPICS:
        assert topic in script, f"{topic} is not created"
    for_loop = re.search(r"for topic in ([^;]+);.*?--partitions (\d+)", script, re.S)
    assert for_loop, "the input topics are created in a loop"
    assert set(for_loop.group(1).split()) == {t for t, p in TOPICS.items() if p == 6}
    assert for_loop.group(2) == "6"
    assert re.search(r"sunes\.establishments\.v1[^\n]*cleanup\.policy=compact", script)


def test_no_accidental_variable_interpolation() -> None:
    # Compose replaces `$NAME` / `${NAME}` from the host environment: a shell variable meant
    # for a container must be written `$$NAME`. Only these are meant for compose.
    allowed = {"${GRAFANA_ADMIN_PASSWORD:-admin}"}
    text = "\n".join(
        line for line in COMPOSE_FILE.read_text("utf-8").splitlines()
        if not line.lstrip().startswith("#")
    )  # fmt: skip
    found = set(re.findall(r"(?<!\$)\$(?:\{[^}]*\}|\w+)", text.replace("$$", "")))
    assert found <= allowed, f"compose would interpolate {found - allowed}"


def test_workers(services: dict[str, dict[str, Any]]) -> None:
    found = workers(services)
    assert found, "no worker service (built from the Dockerfile, running `sunes worker`)"
    ports = []
    for name, svc in found.items():
        assert _command(svc) == ["sunes", "worker"], name
        assert {k: str(v) for k, v in svc["environment"].items()} == WORKER_ENV, name
        assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        assert not svc.get("profiles"), f"{name} must start by default"
        ports += [p.split(":")[0] for p in svc.get("ports", [])]
    assert len(ports) == len(set(ports)), "two workers publish the same host port"


def test_prometheus_scrapes_exactly_the_workers(services: dict[str, dict[str, Any]]) -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "sunes-worker"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    port = WORKER_ENV["SUNES_WEB_PORT"]
    assert targets == {f"{name}:{port}" for name in workers(services)}
    am_targets = {
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"]
        for t in sc["targets"]
    }  # fmt: skip
    assert am_targets == {"alertmanager:9093"} and "alertmanager" in services


def test_simulator_is_optional(services: dict[str, dict[str, Any]]) -> None:
    simulator = services["simulator"]
    assert simulator["profiles"] == ["simulator"]
    assert _command(simulator) == [
        "sunes", "simulate", "--establishments", "20", "--rate", "200",
    ]  # fmt: skip
    assert simulator["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    optional = {name for name, svc in services.items() if svc.get("profiles")}
    assert optional == {"simulator"}


def _mounted_path(svc: dict[str, Any], container_path: str) -> Path:
    """Host path (in the repo) behind a path inside the container."""
    for source, target in _bind_mounts(svc):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return REPO_ROOT / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not bind-mounted")


def _flag(svc: dict[str, Any], flag: str) -> str:
    for arg in _as_list(svc.get("command")):
        if arg.startswith(f"--{flag}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"no --{flag}")


def test_monitoring_services_read_the_repository_files(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus, alertmanager = services["prometheus"], services["alertmanager"]
    assert (
        _mounted_path(prometheus, _flag(prometheus, "config.file")).resolve()
        == (PROMETHEUS_DIR / "prometheus.yml").resolve()
    )
    # prometheus.yml names its rules relative to itself: the rules must be mounted beside it.
    assert (
        _mounted_path(prometheus, "/etc/prometheus/rules").resolve()
        == (PROMETHEUS_DIR / "rules").resolve()
    )
    assert (
        _mounted_path(alertmanager, _flag(alertmanager, "config.file")).resolve()
        == (REPO_ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").resolve()
    )


def test_repository_is_mounted_read_only(services: dict[str, dict[str, Any]]) -> None:
    # A container writing into its bind mount would write into the checkout.
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            if volume.startswith((".", "/")):
                assert volume.endswith(":ro"), f"{name}: {volume} must be mounted :ro"
