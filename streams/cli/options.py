"""Counting-rule settings from command-line flags, defaulting to SUNES_* environment variables."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from processors.calendar import calendar_versions
from processors.settings import DEFAULT_STAY_SCOPE, Settings
from topics.records import STAY_KINDS


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(
            f"error: {name}={raw!r} is not a whole number; set it to e.g. {default}"
        ) from None


def _env_bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def add_rule_options(parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ) -> None:
    group = parser.add_argument_group("counting rules (see docs/indicators.md)")
    group.add_argument(
        "--grace-days",
        type=int,
        default=_env_int(env, "SUNES_GRACE_DAYS", 30),
        help="days after discharge (or production) a document or message still counts "
        "[env SUNES_GRACE_DAYS, default 30; 0 = same day]",
    )
    group.add_argument(
        "--lookback-days",
        type=int,
        default=_env_int(env, "SUNES_LOOKBACK_DAYS", 365),
        help="DS 1.4: how far back an earlier stay makes a returning patient "
        "[env SUNES_LOOKBACK_DAYS, default 365]",
    )
    group.add_argument(
        "--stay-scope",
        default=env.get("SUNES_STAY_SCOPE", ",".join(sorted(DEFAULT_STAY_SCOPE))),
        help="comma-separated stay kinds counted by DS 1.x and DS 4.x, among "
        f"{', '.join(STAY_KINDS)} [env SUNES_STAY_SCOPE]",
    )
    group.add_argument(
        "--retention-days",
        type=int,
        default=_env_int(env, "SUNES_RETENTION_DAYS", 3653),
        help="an event with a timestamp older than this before it was received is refused "
        "as too late [env SUNES_RETENTION_DAYS, default 3653: ten years]",
    )
    group.add_argument(
        "--future-skew-hours",
        type=int,
        default=_env_int(env, "SUNES_FUTURE_SKEW_HOURS", 24),
        help="an event with a timestamp more than this after it was received is refused "
        "[env SUNES_FUTURE_SKEW_HOURS, default 24]",
    )
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
        raise SystemExit(f"error: {exc}") from None
