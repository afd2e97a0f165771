"""The `meshboard` command through click's CliRunner: exact output and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from board.store.bulletins import Store
from node.cli import cli
from node.rings_cli import default_db_path

RINGS = """\
[[ring]]
name = "public"
channel = 0

[[ring]]
name = "garden"
channel = 1

[[ring]]
name = "elders"
channel = 2
"""


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "board.db")


@pytest.fixture
def rings(tmp_path: Path) -> Iterator[None]:
    """Commands in the test see a configuration with rings on channels 0, 1 and 2."""
    path = tmp_path / "meshboard.toml"
    path.write_text(RINGS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESHBOARD_CONFIG", str(path))
        yield


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def post(db: str, *args: str) -> str:
    code, output = invoke("post", *args, "--db", db)
    assert code == 0, output
    assert output.startswith("ok #")
    return output.strip().removeprefix("ok #")


def test_version() -> None:
    assert invoke("--version") == (0, "meshboard, version 0.1.0\n")


@pytest.mark.usefixtures("rings")
def test_post_list_show_delete_round_trip(db: str) -> None:
    ref = post(db, "tool", "Ladder,", "3 m", "--ring", "1")
    assert invoke("list", "--db", db) == (
        0,
        f"#{ref}  garden  tool      -            Ladder, 3 m\n",
    )

    code, output = invoke("show", f"#{ref}", "--db", db, "--json")
    assert code == 0
    record = json.loads(output)
    assert (
        record["ref"],
        record["type"],
        record["text"],
        record["ring"],
        record["channel"],
        record["event_time"],
    ) == (ref, "tool", "Ladder, 3 m", "garden", 1, None)
    assert record["author"] == "!00000000"

    assert invoke("delete", ref, "--db", db) == (0, f"deleted #{ref}\n")
    assert invoke("list", "--db", db) == (0, "no bulletins\n")
    assert invoke("list", "--db", db, "--json") == (0, "[]\n")


@pytest.mark.usefixtures("rings")
def test_list_filters_by_type_and_ring(db: str) -> None:
    meal = post(db, "meal", "Soup", "--when", "tomorrow 18:00", "--tz", "Europe/Berlin")
    post(db, "tool", "Drill")
    post(db, "meal", "Curry", "--ring", "2")
    code, output = invoke("list", "MEAL", "--ring", "0", "--db", db, "--json")
    assert code == 0
    [record] = json.loads(output)
    assert record["ref"] == meal
    assert record["event_time"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("post", "soup", "Hot"),
            "Error: unknown type 'soup'; types: meal skill tool childcare food notice\n",
        ),
        (("post", "meal", "Soup", "--when", "25:00"), None),
        (("show", "zz9"), "Error: no bulletin #zz9\n"),
        (("delete", "#zz9"), "Error: no bulletin #zz9\n"),
        (
            ("list", "soup"),
            "Error: unknown type 'soup'; types: meal skill tool childcare food notice\n",
        ),
    ],
)
def test_errors_are_one_line_and_exit_1(
    db: str, args: tuple[str, ...], message: str | None
) -> None:
    Store.open(Path(db)).close()
    code, output = invoke(*args, "--db", db)
    assert code == 1
    assert output.startswith("Error: ")
    assert output.count("\n") == 1
    if message is not None:
        assert output == message


@pytest.mark.parametrize(
    "command",
    ["list", "show a3f0", "delete a3f0", "audit", "members", "tally", "export out.mbundle"],
)
def test_reading_a_database_that_is_not_there_is_an_error_and_creates_nothing(
    tmp_path: Path, command: str
) -> None:
    typo = tmp_path / "bord.db"
    code, output = invoke(*command.split(), "--db", str(typo))
    assert (code, output) == (
        1,
        f"Error: no database at {typo} (a daemon creates it; `meshboard post` too)\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_posting_creates_the_database(tmp_path: Path) -> None:
    new = tmp_path / "new" / "board.db"
    code, output = invoke("post", "meal", "Soup", "--db", str(new))
    assert code == 0 and output.startswith("ok #")
    assert new.exists()


@pytest.mark.parametrize("command", ["list", "post notice Hi", "status", "export"])
def test_a_damaged_database_is_one_error_line_for_every_command(
    tmp_path: Path, command: str
) -> None:
    damaged = tmp_path / "board.db"
    damaged.write_bytes(b"not a database, a shopping list\n" * 200)
    args = [*command.split(), "--db", str(damaged)]
    if command == "export":
        args.append(str(tmp_path / "out.mbx"))
    code, output = invoke(*args)
    assert (code, output) == (
        1,
        f"Error: cannot open database {damaged}: file is not a database; "
        "`meshboard doctor` checks it\n",
    )


def test_run_requires_a_port(db: str) -> None:
    code, output = invoke("run", "--db", db)
    assert code == 2
    assert "Missing option '--port'" in output


def test_db_comes_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.db"
    result = CliRunner(env={"MESHBOARD_DB": str(path)}).invoke(cli, ["post", "notice", "Hi"])
    assert result.exit_code == 0
    assert path.exists()


def test_default_db_is_in_the_user_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "meshboard" / "meshboard.db"


@pytest.mark.parametrize("command", cli.list_commands(click.Context(cli)))
def test_every_command_has_help_and_is_in_the_readme(command: str) -> None:
    code, _ = invoke(command, "--help")
    assert code == 0
    loaded = cli.get_command(click.Context(cli), command)  # the group loads its commands lazily
    assert loaded is not None
    assert (loaded.help or "").strip()
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"meshboard {command}" in readme
