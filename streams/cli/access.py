"""`sunes access hash-token`: the sha256 of a static token, for SUNES_ACCESS_TOKENS_FILE.

The token is read from standard input (never from the command line, where `ps` and the shell
history would keep it); `--new` makes one instead and prints it once, on stderr.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from streams.access.scopes import Scope
from streams.access.static import MIN_TOKEN_LENGTH, hash_token
from streams.cli.errors import CliError, ConfigError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "access", help="static machine tokens of the worker (docs/access.md)"
    )
    commands = parser.add_subparsers(dest="access_command", metavar="COMMAND", required=True)
    hashing = commands.add_parser(
        "hash-token",
        help="print the sha256 of a token read from stdin (or of a new one, --new)",
        description="Print the hex sha256 of the token on standard input, as the tokens file "
        "wants it; with --name and --scope, the whole [[token]] table to paste into it.",
    )
    hashing.add_argument("--new", action="store_true", help="make a new random token "
                         "(printed once on stderr) instead of reading one")  # fmt: skip
    hashing.add_argument("--name", help="the token's name (the subject in the access log)")
    hashing.add_argument("--scope", action="append", default=[], metavar="SCOPE",
                         help="finess:<FINESS>, ej:<FINESS juridique>, region:<code> or "
                         "national; repeat for several")  # fmt: skip
    hashing.set_defaults(handler=run_hash_token)


def run_hash_token(args: argparse.Namespace) -> int:
    try:
        scopes = [str(Scope.parse(s)) for s in args.scope]
    except ValueError as exc:
        raise ConfigError(f"--scope: {exc}") from None
    if bool(args.name) != bool(scopes):
        raise ConfigError("give both --name and --scope (for a [[token]] table), or neither")
    if args.new:
        token = secrets.token_urlsafe(32)
        print(f"the new token (shown once, give it to its client): {token}", file=sys.stderr)
    else:
        token = sys.stdin.readline().strip()
        if len(token) < MIN_TOKEN_LENGTH:
            raise CliError(
                f"the token on stdin has {len(token)} characters: give one of at least "
                f"{MIN_TOKEN_LENGTH} (or --new to make one)"
            )
    digest = hash_token(token)
    if not args.name:
        print(digest)
        return 0
    listed = ", ".join(f'"{s}"' for s in scopes)
    print(f'[[token]]\nname = "{args.name}"\nsha256 = "{digest}"\nscopes = [{listed}]')
    return 0
