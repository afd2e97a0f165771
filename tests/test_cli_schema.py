"""The CLI on databases of other schema versions: an old one is migrated, a newer one refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from board.store.schema import LATEST
from node.cli import cli
from tests.board.store.test_schema import load, user_version


def newer(path: Path) -> Path:
    """A database from a meshboard one schema version ahead."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE bulletin (id VARCHAR NOT NULL, PRIMARY KEY (id))")
        db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["show", "#abcd"],
        ["post", "notice", "Soup"],
        ["tally"],
        ["audit"],
        ["status"],
        ["run", "--port", "/dev/no-radio"],  # the daemon refuses before it opens the radio
    ],
)
def test_a_newer_database_is_one_line_and_exit_1(tmp_path: Path, command: list[str]) -> None:
    path = newer(tmp_path / "board.db")
    result = CliRunner().invoke(cli, [*command, "--db", str(path)])
    assert (result.exit_code, result.output) == (
        1,
        f"Error: database {path} has schema v{LATEST + 1}, newer than this meshboard's "
        f"v{LATEST}: upgrade meshboard, or restore the backup made before the upgrade\n",
    )
    assert user_version(path) == LATEST + 1


def test_list_migrates_an_old_database_and_keeps_a_copy(tmp_path: Path) -> None:
    path = load(tmp_path / "board.db")
    result = CliRunner().invoke(cli, ["list", "--db", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert user_version(path) == LATEST
    assert (tmp_path / "board.db.v1.bak").exists()
