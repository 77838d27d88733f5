"""`sunes access hash-token`: the hash the tokens file wants, from stdin or a new token."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from streams.access.static import StaticTokens, hash_token
from streams.cli import main

TOKEN = "a-token-of-the-tests-0123456789"


def test_hash_of_a_token_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
    assert main(["access", "hash-token"]) == 0
    assert capsys.readouterr().out == hash_token(TOKEN) + "\n"


def test_a_new_token_as_a_table_the_file_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["access", "hash-token", "--new", "--name", "ght", "--scope", "ej:750000099"]) == 0
    captured = capsys.readouterr()
    token = captured.err.rsplit(" ", 1)[-1].strip()
    assert token not in captured.out
    path = tmp_path / "tokens.toml"
    path.write_text(captured.out)
    found = StaticTokens(path).lookup(token)
    assert found is not None and found.subject == "ght"
    assert [str(s) for s in found.scopes] == ["ej:750000099"]


@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        (["--name", "x", "--scope", "nation"], TOKEN, "--scope: not a scope: 'nation'"),
        (["--name", "x"], TOKEN, "give both --name and --scope"),
        ([], "short", "at least 16"),
    ],
)
def test_usage_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    says: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["access", "hash-token", *argv]) == 2
    assert says in capsys.readouterr().err
