"""The root group loads a command's module only when that command runs (node/cli.py).

That is what keeps `meshboard web` under a Pi Zero 2's memory: the other commands' modules
load the store (SQLAlchemy, SQLModel) and the signing library. The checks that a module is
not loaded run in a fresh interpreter, since this one has loaded everything by now.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from node.cli import COMMANDS, cli

HEAVY = ("sqlalchemy", "sqlmodel", "cryptography", "meshtastic", "tomlkit", "matplotlib")

LOADED = """
import json, sys
from node.cli import cli
try:
    cli(sys.argv[1:], prog_name="meshboard")
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps({{
    "commands": sorted(m for m in sys.modules if m.startswith("node.commands.")),
    "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy)),
}}))
"""


def loaded_by(*args: str) -> dict[str, list[str]]:
    """The command modules and heavy libraries a `meshboard ARGS` run loaded (the last line,
    after the command's own output)."""
    code = LOADED.format(heavy=HEAVY)
    run = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    answer: dict[str, list[str]] = json.loads(run.stdout.splitlines()[-1])
    return answer


def test_every_command_the_group_names_loads_as_itself() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert command.name == name


def test_the_help_lists_every_command_in_alphabetical_order() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    section = result.output.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in section.splitlines()] == sorted(COMMANDS)


def test_a_mistyped_command_is_offered_the_lazy_one_it_resembles() -> None:
    result = CliRunner().invoke(cli, ["lst"])
    assert result.exit_code == 2
    assert "No such command 'lst'. Did you mean 'list'?" in result.output


def test_the_root_group_alone_loads_no_command_module() -> None:
    assert loaded_by("--version") == {"commands": [], "heavy": []}


def test_meshboard_web_loads_its_own_module_and_nothing_heavy() -> None:
    assert loaded_by("web", "--help") == {"commands": ["node.commands.web"], "heavy": []}


def test_a_command_loads_only_the_module_that_holds_it() -> None:
    assert loaded_by("status", "--help")["commands"] == [
        "node.commands.common",
        "node.commands.daemon",
    ]
