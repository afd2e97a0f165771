"""`meshboard --config` and `--ring` through click's CliRunner: rings by name, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from board.config import EXAMPLE
from board.signing import BoardKey, key_path
from node.cli import cli

RINGS = """\
[[ring]]
name = "public"
channel = 0
[ring.moderation]
moderators = ["!000000aa"]
rotation = "1w"
starts = "2026-01-05"

[[ring]]
name = "garden"
channel = 1
digest = "6h"
[ring.moderation]
moderators = ["!000000b1", "!000000b2"]
starts = "2999-01-04"

[[ring]]
name = "elders"
channel = 2
serve = false
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "meshboard.toml"
    path.write_text(RINGS)
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "board.db")


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(cli, list(args))
    return result.exit_code, result.output


def post(config: str, db: str, *args: str) -> str:
    code, output = invoke("--config", config, "post", *args, "--db", db)
    assert code == 0, output
    return output.strip().removeprefix("ok #")


def test_config_example_prints_the_documented_example() -> None:
    assert invoke("config", "--example") == (0, EXAMPLE)


def test_config_shows_the_rings_of_the_file(config: str) -> None:
    assert invoke("--config", config, "config") == (
        0,
        f"file: {config}\n"
        "ring    channel  served  digest  moderators\n"
        "public  0        yes     -       !000000aa (1w each)\n"
        "garden  1        yes     6h      !000000b1 !000000b2 (1w each)\n"
        "elders  2        no      -       -\n",
    )
    code, output = invoke("config", "--json", env={"MESHBOARD_CONFIG": config})
    assert code == 0
    data = json.loads(output)
    assert data["file"] == config
    assert [(r["ring"], r["channel"], r["served"], r["digest"]) for r in data["rings"]] == [
        ("public", 0, True, None),
        ("garden", 1, True, "6h"),
        ("elders", 2, False, None),
    ]
    assert data["rings"][1]["moderators"] == ["!000000b1", "!000000b2"]


def test_without_a_file_there_is_one_public_ring() -> None:
    code, output = invoke("config", "--json")
    assert code == 0
    assert json.loads(output) == {
        "file": None,
        "rings": [
            {
                "ring": "public",
                "channel": 0,
                "served": True,
                "digest": None,
                "moderators": [],
                "rotation": None,
                "starts": None,
                "boards": [],
                "web": False,
                "bridge": None,
            }
        ],
    }


def test_config_shows_a_rings_web_page_and_broker(tmp_path: Path) -> None:
    path = tmp_path / "meshboard.toml"
    path.write_text(
        '[[ring]]\nname = "public"\nchannel = 0\nweb = true\n\n'
        '[[ring]]\nname = "garden"\nchannel = 1\nbridge = "mqtts://broker.example"\n'
        'bridge_username = "garden-board"\n',
        encoding="utf-8",
    )
    code, output = invoke("--config", str(path), "config")
    assert code == 0
    assert output.splitlines()[-2:] == [
        "public: on the web page (meshboard web)",
        "garden: also through the MQTT broker mqtts://broker.example as garden-board",
    ]
    code, output = invoke("--config", str(path), "config", "--json")
    rings = json.loads(output)["rings"]
    assert [(r["web"], r["bridge"]) for r in rings] == [
        (True, None),
        (False, "mqtts://broker.example"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "Error: {path}: no such file\n"),
        ("[[ring]]\nname = 'Public'\nchannel = 0\n", None),
        ("[[ring]]\nname = 'public'\nchannel = 9\n", None),
        ("[[ring\n", None),
    ],
)
@pytest.mark.parametrize("command", [("config",), ("list",), ("post", "meal", "Soup")])
def test_a_bad_file_is_one_error_line_and_exit_1(
    tmp_path: Path, db: str, text: str | None, message: str | None, command: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    db_args = [] if command == ("config",) else ["--db", db]
    code, output = invoke("--config", str(path), *command, *db_args)
    assert code == 1
    assert output.startswith(f"Error: {path}: ") and output.count("\n") == 1, output
    if message is not None:
        assert output == message.format(path=path)
    assert not Path(db).exists(), "nothing is written with a bad configuration"


def test_the_example_still_prints_beside_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[ring\n")
    assert invoke("--config", str(path), "config", "--example") == (0, EXAMPLE)


def test_rings_are_named_or_numbered_and_shown_by_name(config: str, db: str) -> None:
    soup = post(config, db, "meal", "Soup", "--ring", "public")
    ladder = post(config, db, "tool", "Ladder", "--ring", "1")
    plums = post(config, db, "food", "Plums", "--ring", "GARDEN")
    code, output = invoke("--config", config, "list", "--ring", "garden", "--db", db)
    assert code == 0
    assert sorted(output.splitlines(), key=lambda line: "Plums" in line) == [
        f"#{ladder}  garden  tool      -            Ladder",
        f"#{plums}  garden  food      -            Plums",
    ]
    code, output = invoke("--config", config, "list", "--ring", "0", "--db", db, "--json")
    [record] = json.loads(output)
    assert (record["ref"], record["ring"], record["channel"]) == (soup, "public", 0)

    code, output = invoke("--config", config, "show", ladder, "--db", db, "--tz", "UTC")
    assert output.splitlines()[:2] == [f"#{ladder}  tool  garden", "Ladder"]
    assert invoke("--config", config, "show", ladder, "--ring", "public", "--db", db) == (
        1,
        f"Error: no bulletin #{ladder}\n",
    )
    assert invoke("--config", config, "delete", ladder, "--ring", "public", "--db", db) == (
        1,
        f"Error: no bulletin #{ladder}\n",
    )
    assert invoke("--config", config, "delete", ladder, "--ring", "garden", "--db", db) == (
        0,
        f"deleted #{ladder}\n",
    )


def test_a_post_without_ring_goes_to_the_first_ring_served(config: str, db: str) -> None:
    ref = post(config, db, "notice", "Hello")
    code, output = invoke("--config", config, "show", ref, "--db", db, "--json")
    assert code == 0
    assert json.loads(output)["ring"] == "public"


@pytest.mark.parametrize("command", ["post", "list", "show", "delete", "moderators"])
def test_an_unknown_ring_is_a_clean_error_listing_the_rings(
    config: str, db: str, command: str
) -> None:
    args = {"post": ["meal", "Soup"], "show": ["ab12"], "delete": ["ab12"]}.get(command, [])
    code, output = invoke("--config", config, command, *args, "--ring", "attic", "--db", db)
    assert (code, output) == (
        1,
        "Error: no ring 'attic'; rings: public (0), garden (1), elders (2)\n",
    )


def test_posting_into_a_ring_the_board_does_not_serve_is_refused(config: str, db: str) -> None:
    args = ["post", "meal", "Soup", "--ring", "elders", "--db", db]
    assert invoke("--config", config, *args) == (
        1,
        f"Error: this board does not serve ring elders (channel 2); "
        f"set serve = true for it in {config}\n",
    )
    assert not Path(db).exists()


def test_moderators_shows_who_is_on_duty_and_this_boards_key(config: str, db: str) -> None:
    code, output = invoke("--config", config, "moderators", "--db", db, "--tz", "UTC")
    assert code == 0, output
    key = BoardKey.load_or_create(key_path(Path(db))).public
    lines = output.splitlines()
    assert lines[0].startswith("public (channel 0): !000000aa on duty until ")
    assert lines[0].endswith(", then !000000aa")
    assert lines[1] == "  roster: !000000aa (on duty)"
    assert (
        lines[3] == "  radio keys: none pinned (meshboard moderators --pin --port PORT pins them)"
    )
    assert lines[4] == (
        "garden (channel 1): nobody on duty until Fri 04 Jan 2999 00:00 UTC, then !000000b1"
    )
    assert lines[5] == "  roster: !000000b1, !000000b2"
    assert lines[8] == "elders (channel 2): no moderation"
    assert lines[9] == f"this board's key: {key}"

    code, output = invoke("--config", config, "moderators", "--ring", "1", "--db", db, "--json")
    assert code == 0
    data = json.loads(output)
    assert data["board_key"] == key
    [garden] = data["rings"]
    assert (garden["ring"], garden["on_duty"], garden["next"]) == ("garden", None, "!000000b1")
    assert garden["until"] == "2999-01-04T00:00:00+00:00"
    assert garden["moderators"] == ["!000000b1", "!000000b2"]
    assert [(k["node"], k["pinned"], k["key"]) for k in garden["keys"]] == [
        ("!000000b1", False, None),
        ("!000000b2", False, None),
    ]
