"""`meshboard members`: who joined the private rings, from the board's database, for a person
or a script."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from board.mod_policy import sign_member
from board.signing import BoardKey
from board.store.applied import Applied
from board.store.bulletins import Store
from board.store.members import MemberStore
from node.cli import cli
from node.rings_view import fingerprint

RINGS = """\
[[ring]]
name = "public"
channel = 0

[[ring]]
name = "garden"
channel = 1

[[ring]]
name = "tools"
channel = 2
"""
LEFT_KEY = bytes(range(32))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "meshboard.toml"
    path.write_text(RINGS)
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, datetime, BoardKey]:
    """A board database where !1234abcd joined the garden and !5678ef01 left it."""
    path = tmp_path / "board.db"
    now = datetime.now(UTC)
    at = (now - timedelta(days=2)).replace(microsecond=0)
    key = BoardKey.generate()
    store = Store.open(path)
    members = MemberStore(store.engine)
    joined = sign_member(key, 1, "!1234abcd", True, bytes(32), at, at + timedelta(days=365))
    left = sign_member(key, 1, "!5678ef01", False, LEFT_KEY, at, at + timedelta(days=365))
    assert members.apply(joined, now) is Applied.NEW
    assert members.apply(left, now) is Applied.NEW
    store.close()
    return str(path), at, key


def test_members_lists_each_private_ring_and_who_left(
    config: str, db: tuple[str, datetime, BoardKey]
) -> None:
    path, at, _key = db
    code, output = invoke("--config", config, "members", "--db", path, "--tz", "UTC")
    assert code == 0, output
    joined = at.strftime("%d %b %Y %H:%M UTC")
    expires = (at + timedelta(days=365)).strftime("%d %b %Y %H:%M UTC")
    assert output.splitlines() == [
        "garden (channel 1): 1 member(s), 1 left",
        f"  !1234abcd  joined {joined}  expires {expires}  key {fingerprint(bytes(32))}",
        f"  !5678ef01  left {joined}  key {fingerprint(LEFT_KEY)}",
        "tools (channel 2): 0 member(s)",
        "  nobody has joined",
    ]


def test_members_json_parses_for_scripts(config: str, db: tuple[str, datetime, BoardKey]) -> None:
    path, at, key = db
    code, output = invoke("--config", config, "members", "--db", path, "--ring", "garden", "--json")
    assert code == 0, output
    [garden] = json.loads(output)["rings"]
    assert (garden["ring"], garden["channel"]) == ("garden", 1)
    [member] = garden["members"]
    assert member == {
        "node": "!1234abcd",
        "joined_at": at.isoformat(),
        "expires_at": (at + timedelta(days=365)).isoformat(),
        "key": base64.b64encode(bytes(32)).decode(),
        "fingerprint": fingerprint(bytes(32)),
        "board_key": key.public,
    }
    [left] = garden["left"]
    assert (left["node"], left["left_at"], left["fingerprint"]) == (
        "!5678ef01",
        at.isoformat(),
        fingerprint(LEFT_KEY),
    )


def test_channel_0_has_no_members(config: str, tmp_path: Path) -> None:
    db = str(tmp_path / "board.db")
    Store.open(Path(db)).close()
    code, output = invoke("--config", config, "members", "--db", db, "--ring", "public")
    assert (code, output) == (1, "Error: ring public is channel 0: open to all, nobody joins\n")
    code, output = invoke("members", "--db", db)  # no file: only the public ring
    assert (code, output) == (
        0,
        "no private rings: only channel 0, which everyone on the mesh can read\n",
    )
    assert json.loads(invoke("members", "--db", db, "--json")[1]) == {"rings": []}
