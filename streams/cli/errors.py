"""The exit codes of every `sunes` command and the error root that `streams.cli.main` maps to them.

A command returns an `Exit`, or raises a `CliError` (or a subclass: `ConfigError` here,
`streams.kafka_clients.TopicSetupError`, `streams.cli.producer.PublishError`): `main` prints
`error: <message>` on stderr and returns the error's `exit`. This module imports nothing of
ours, so that the layers below the CLI can raise these errors without importing a command.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What a `sunes` command's exit status means."""

    OK = 0
    INVALID_INPUT = 1  # lines of the input broke the contract (reported one by one)
    USAGE = 2  # a flag, a file or a setting is wrong; the message says which
    KAFKA = 3  # Kafka (or the demo's broker or worker) could not be reached or refused
    INTERRUPTED = 130  # Ctrl-C: what was done is flushed and reported


class CliError(Exception):
    """A failure the command reports as one line, `error: <message>`, and an exit code."""

    exit: Exit = Exit.USAGE

    def __init__(self, message: str, exit: Exit | None = None) -> None:
        super().__init__(message)
        if exit is not None:
            self.exit = exit


class ConfigError(CliError, ValueError):
    """A setting is wrong; the message says which and how to fix it."""

    exit = Exit.USAGE
