"""Every shared option of the `sunes` commands: counting rules, worker, Kafka.

Each option may default to an environment variable. The variable is read as a string and
converted by the option's `type=`, which argparse applies to a string default only when the
command that owns the option runs: a bad SUNES_PARTITIONS stops `sunes worker` with one line
naming the setting, and never `sunes report`.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

from processors.calendar import calendar_versions
from processors.settings import DEFAULT_STAY_SCOPE, Settings
from streams.cli.errors import ConfigError, Exit
from streams.kafka_clients import (
    BOOTSTRAP_ALIAS_ENV,
    BOOTSTRAP_ENV,
    CLIENT_PROFILE_ENV,
    CLIENT_PROFILES,
    LOCAL_BOOTSTRAP,
)
from topics.names import TopicNames
from topics.records import STAY_KINDS

# "argument --partitions: SUNES_PARTITIONS / --partitions must be ...": a converter below.
_SETTING_ERROR = re.compile(r"^argument [^:]+: [A-Z][A-Z0-9_]* / --[a-z-]+ must be ")


class Parser(argparse.ArgumentParser):
    """argparse, but a bad setting value is one line: the usage would only hide it."""

    def error(self, message: str) -> NoReturn:
        if _SETTING_ERROR.match(message):
            self.exit(Exit.USAGE, f"{self.prog}: error: {message}\n")
        super().error(message)


def whole_number(env_name: str, flag: str) -> Callable[[str], int]:
    """A `type=` converter whose error names both the variable and the flag."""

    def convert(raw: str) -> int:
        try:
            return int(raw.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{env_name} / {flag} must be a whole number, got {raw!r}"
            ) from None

    return convert


def client_profile(raw: str) -> str:
    profile = raw.strip().lower()
    if profile not in CLIENT_PROFILES:
        raise argparse.ArgumentTypeError(
            f"{CLIENT_PROFILE_ENV} / --broker-kind must be {' or '.join(CLIENT_PROFILES)}, "
            f"got {raw!r}"
        )
    return profile


INGEST_MODES = ("process", "inline")


def ingest_mode(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in INGEST_MODES:
        raise argparse.ArgumentTypeError(
            f"SUNES_INGEST / --ingest must be {' or '.join(INGEST_MODES)}, got {raw!r}"
        )
    return mode


TOPIC_PREFIX_ENV = "SUNES_TOPIC_PREFIX"
_TOPIC_CHARACTERS = re.compile(r"^[A-Za-z0-9._-]*$")


def topic_prefix(raw: str) -> str:
    """A prefix Kafka accepts in a topic name (letters, digits, '.', '_', '-')."""
    prefix = raw.strip()
    if not _TOPIC_CHARACTERS.match(prefix) or len(prefix) > 200:
        raise argparse.ArgumentTypeError(
            f"{TOPIC_PREFIX_ENV} / --topic-prefix must be letters, digits, '.', '_' or '-' "
            f"(at most 200), got {raw!r}"
        )
    return prefix


def _env_bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _number_option(
    group: argparse._ArgumentGroup,
    flag: str,
    env_name: str,
    default: int,
    env: Mapping[str, str],
    help: str,
) -> None:
    group.add_argument(
        flag,
        type=whole_number(env_name, flag),
        default=env.get(env_name) or str(default),  # a string: converted only when used
        metavar="N",
        help=help,
    )


# --- counting rules: `sunes report` and `sunes worker` ------------------------------------


def add_rule_options(parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ) -> None:
    group = parser.add_argument_group("counting rules (see docs/indicators.md)")
    _number_option(group, "--grace-days", "SUNES_GRACE_DAYS", 30, env,
                   "days after discharge (or production) a document or message still counts "
                   "[env SUNES_GRACE_DAYS, default 30; 0 = same day]")  # fmt: skip
    _number_option(group, "--lookback-days", "SUNES_LOOKBACK_DAYS", 365, env,
                   "DS 1.4: how far back an earlier stay makes a returning patient "
                   "[env SUNES_LOOKBACK_DAYS, default 365]")  # fmt: skip
    group.add_argument(
        "--stay-scope",
        default=env.get("SUNES_STAY_SCOPE", ",".join(sorted(DEFAULT_STAY_SCOPE))),
        help="comma-separated stay kinds counted by DS 1.x and DS 4.x, among "
        f"{', '.join(STAY_KINDS)} [env SUNES_STAY_SCOPE]",
    )
    _number_option(group, "--retention-days", "SUNES_RETENTION_DAYS", 3653, env,
                   "an event with a timestamp older than this before it was received is refused "
                   "as too late [env SUNES_RETENTION_DAYS, default 3653: ten years]")  # fmt: skip
    _number_option(group, "--future-skew-hours", "SUNES_FUTURE_SKEW_HOURS", 24, env,
                   "an event with a timestamp more than this after it was received is refused "
                   "[env SUNES_FUTURE_SKEW_HOURS, default 24]")  # fmt: skip
    for name, what in (
        ("dmp-opposition", "stays of patients who opposed DMP feeding"),
        ("deceased", "stays of deceased patients"),
        ("unqualified-ins", "stays whose discharge carries no qualified INS"),
    ):
        env_name = "SUNES_EXCLUDE_" + name.upper().replace("-", "_")
        group.add_argument(
            f"--exclude-{name}",
            action="store_true",
            default=_env_bool(env, env_name),
            help=f"leave {what} out of the DS 1.x denominators [env {env_name}]",
        )
    group.add_argument(
        "--calendar-version",
        choices=calendar_versions(),
        default=env.get("SUNES_CALENDAR_VERSION") or None,
        help="funding windows and targets to use [env SUNES_CALENDAR_VERSION, default: latest]",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    scope = frozenset(kind.strip() for kind in args.stay_scope.split(",") if kind.strip())
    try:
        return Settings(
            grace_days=args.grace_days,
            lookback_days=args.lookback_days,
            retention_days=args.retention_days,
            future_skew_hours=args.future_skew_hours,
            stay_scope=scope,
            exclude_dmp_opposition=args.exclude_dmp_opposition,
            exclude_deceased=args.exclude_deceased,
            exclude_unqualified_ins=args.exclude_unqualified_ins,
            calendar_version=args.calendar_version,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


# --- Kafka: `sunes worker`, `sunes publish`, `sunes simulate` -----------------------------


def add_kafka_options(
    parser: argparse.ArgumentParser,
    env: Mapping[str, str] = os.environ,
    *,
    fallback_brokers: str | None = None,
    topic_creation: bool = True,
) -> None:
    """--brokers and --broker-kind; --no-create-topics when `topic_creation`.

    --brokers has no argparse default: `brokers_from` falls back to the environment, so that
    a command can tell a flag from a variable (`sunes simulate --output` refuses the flag).
    """
    group = parser.add_argument_group("Kafka")
    default = f", default {fallback_brokers}" if fallback_brokers else ""
    group.add_argument(
        "--brokers",
        metavar="HOST:PORT[,HOST:PORT]",
        help=f"Kafka bootstrap servers, comma-separated [env {BOOTSTRAP_ENV}{default}]",
    )
    group.add_argument(
        "--broker-kind",
        type=client_profile,
        default=env.get(CLIENT_PROFILE_ENV) or None,
        metavar="{" + ",".join(CLIENT_PROFILES) + "}",
        help="tansu: the client settings the embedded Tansu broker needs (one record per "
        f"batch, no idempotence) [env {CLIENT_PROFILE_ENV}, default kafka]. TLS and SASL: the "
        "SUNES_TLS* and SUNES_SASL_* variables (see README)",
    )
    group.add_argument(
        "--topic-prefix",
        type=topic_prefix,
        default=env.get(TOPIC_PREFIX_ENV, ""),
        metavar="PREFIX",
        help="put this before every topic name of the contract (e.g. 'ght-a.' reads "
        f"ght-a.sunes.stays.v1), to run several pipelines on one cluster [env {TOPIC_PREFIX_ENV}]",
    )
    if topic_creation:
        group.add_argument(
            "--no-create-topics",
            dest="create_topics",
            action="store_false",
            help="do not create the missing input topics (by default they are created with "
            "the partitions and compaction of topics/names.py)",
        )


def brokers_from(
    args: argparse.Namespace, env: Mapping[str, str] = os.environ, fallback: str | None = None
) -> str | None:
    """--brokers, else $KAFKA_BOOTSTRAP_SERVERS (or $SUNES_BROKERS), else `fallback`.

    None when an empty --brokers was given, or nothing and no fallback."""
    if args.brokers is not None:
        return str(args.brokers).strip() or None
    for value in (env.get(BOOTSTRAP_ENV), env.get(BOOTSTRAP_ALIAS_ENV)):
        if value and value.strip():
            return value.strip()
    return fallback


def topic_names_from(args: argparse.Namespace) -> TopicNames:
    """The topics of --topic-prefix (the contract's names when there is none)."""
    return TopicNames.prefixed(args.topic_prefix)


def client_profile_from(args: argparse.Namespace) -> str:
    """--broker-kind, else $SUNES_CLIENT_PROFILE (converted by argparse), else kafka."""
    profile: str | None = args.broker_kind
    return profile or "kafka"


# --- the worker ---------------------------------------------------------------------------


def add_worker_options(
    parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ
) -> None:
    add_kafka_options(parser, env, fallback_brokers=LOCAL_BOOTSTRAP, topic_creation=False)
    group = parser.add_argument_group("worker")
    group.add_argument("--app-id", default=env.get("SUNES_APP_ID", "sunes-stream"),
                       help="consumer group and internal topic prefix [env SUNES_APP_ID]")  # fmt: skip
    group.add_argument(
        "--store",
        default=env.get("SUNES_STORE", "rocksdb://"),
        help="state store: rocksdb:// (on disk, under --data-dir) or memory:// (tests; the "
        "state is read back from the changelog at every start) [env SUNES_STORE, default "
        "rocksdb://]",
    )
    group.add_argument("--data-dir", type=Path, default=env.get("SUNES_DATA_DIR", "var/sunes"),
                       help="where rocksdb keeps tables [env SUNES_DATA_DIR]")  # fmt: skip
    _number_option(group, "--partitions", "SUNES_PARTITIONS", 6, env,
                   "partitions of the internal topics [env SUNES_PARTITIONS, default 6]")  # fmt: skip
    _number_option(group, "--replication-factor", "SUNES_REPLICATION_FACTOR", 1, env,
                   "of the internal topics [env SUNES_REPLICATION_FACTOR, default 1]")  # fmt: skip
    group.add_argument("--web-host", default=env.get("SUNES_WEB_HOST", "127.0.0.1"),
                       help="bind address of /indicators, /metrics, /health [env SUNES_WEB_HOST]")  # fmt: skip
    _number_option(group, "--web-port", "SUNES_WEB_PORT", 6066, env,
                   "[env SUNES_WEB_PORT, default 6066]")  # fmt: skip
    _number_option(group, "--cache-entries", "SUNES_CACHE_ENTRIES", 100_000, env,
                   "decoded state entries kept in RAM above the store, ~1 KB each "
                   "[env SUNES_CACHE_ENTRIES, default 100000]")  # fmt: skip
    _number_option(group, "--ingest-batch", "SUNES_INGEST_BATCH", 5000, env,
                   "input messages per ingest poll at most: one bundle per FINESS per poll; "
                   "larger, more memory and a longer hold of /health and /metrics per poll, "
                   "for no CPU gain measured "
                   "[env SUNES_INGEST_BATCH, default 5000, at most 100000]")  # fmt: skip
    group.add_argument(
        "--ingest",
        type=ingest_mode,
        default=env.get("SUNES_INGEST") or "process",
        help="where the ingest stage runs: process (a child process of the worker, off its "
        "main thread) or inline (on the worker's event loop) [env SUNES_INGEST, default "
        "process]",
    )
    _number_option(group, "--stop-grace-seconds", "SUNES_STOP_GRACE_SECONDS", 25, env,
                   "a stopped worker exits within this, brokers gone or not (what it could "
                   "not flush is replayed at the next start) [env SUNES_STOP_GRACE_SECONDS, "
                   "default 25]")  # fmt: skip
    group.add_argument(
        "--api-token-file",
        type=Path,
        default=env.get("SUNES_API_TOKEN_FILE") or None,
        metavar="FILE",
        help="the access token of the worklists (/indicators/.../units: they list stays), "
        "read from FILE; or give it in SUNES_API_TOKEN. Without one the worklists are off "
        "[env SUNES_API_TOKEN_FILE]",
    )
    add_access_options(group, env)
    group.add_argument(
        "--loglevel", default="warning", choices=("debug", "info", "warning", "error")
    )
    add_rule_options(parser, env)


def add_access_options(group: argparse._ArgumentGroup, env: Mapping[str, str]) -> None:
    """Who may see what (streams/access, docs/access.md)."""
    group.add_argument("--oidc-issuer", default=env.get("SUNES_OIDC_ISSUER") or None, metavar="URL",
                       help="accept OpenID Connect bearer tokens (JWT) of this issuer, e.g. "
                       "https://sso.example/realms/ght [env SUNES_OIDC_ISSUER]")  # fmt: skip
    group.add_argument("--oidc-audience", default=env.get("SUNES_OIDC_AUDIENCE") or None,
                       metavar="CLIENT_ID", help="the audience the tokens must carry "
                       "[env SUNES_OIDC_AUDIENCE]")  # fmt: skip
    group.add_argument("--oidc-scope-claim", default=env.get("SUNES_OIDC_SCOPE_CLAIM") or "sunes_scopes",
                       metavar="CLAIM", help="the claim that lists the scopes "
                       "[env SUNES_OIDC_SCOPE_CLAIM, default sunes_scopes]")  # fmt: skip
    _number_option(group, "--oidc-leeway-seconds", "SUNES_OIDC_LEEWAY_SECONDS", 30, env,
                   "clock skew allowed on exp/nbf, at most 300 "
                   "[env SUNES_OIDC_LEEWAY_SECONDS, default 30]")  # fmt: skip
    group.add_argument("--access-tokens-file", type=Path, default=env.get("SUNES_ACCESS_TOKENS_FILE") or None,
                       metavar="FILE", help="static machine tokens (TOML, sha256 of each, with "
                       "their scopes), re-read when changed [env SUNES_ACCESS_TOKENS_FILE]")  # fmt: skip
    group.add_argument("--figures-access", choices=("open", "token"),
                       default=env.get("SUNES_FIGURES_ACCESS") or "open",
                       help="what /indicators and /metrics need: open (anyone who reaches the port) or "
                       "token (a bearer token; each caller sees its scope) "
                       "[env SUNES_FIGURES_ACCESS, default open]")  # fmt: skip


HL7_MAPPING_ENV = "SUNES_HL7_MAPPING"


def add_hl7_mapping_option(
    parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ
) -> None:
    """--mapping of `sunes hl7 convert` and `sunes hl7 listen`: the HL7 mapping file."""
    default = env.get(HL7_MAPPING_ENV)
    parser.add_argument(
        "--mapping",
        type=Path,
        default=Path(default) if default else None,
        metavar="FILE.toml",
        help="the HL7 mapping (sending facility → FINESS, identities, stay kinds, time zone; "
        f"docs/hl7-mapping.example.toml) [env {HL7_MAPPING_ENV}; default: the built-in "
        "mapping of the ANS corpus and the test fixtures]",
    )
