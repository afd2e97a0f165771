"""`meshboard audit` and `meshboard moderators` through click's CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.moderation import ModerationStore
from board.wire.moderation import Action
from node.cli import cli

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_audit_lists_accepted_and_refused_attempts(tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    store = Store.open(db)
    log = ModerationStore(store.engine)
    key = BoardKey.generate()
    bulletin = "qgqscvnmneyy58hvrxq8zdvzvr"
    log.log(
        at=AT,
        ring=0,
        moderator="!5678ef01",
        action=Action.REMOVE,
        bulletin=bulletin,
        source="handheld",
        refused="not on duty",
    )
    log.log(
        at=AT,
        ring=0,
        moderator="!1234abcd",
        action=Action.REMOVE,
        bulletin=bulletin,
        source="handheld",
        board_key=key.public_bytes,
    )
    log.log(
        at=AT,
        ring=1,
        moderator="!1234abcd",
        action=Action.RESTORE,
        bulletin=bulletin,
        source="air:!0000beef",
        board_key=key.public_bytes,
        refused="bad signature",
    )
    store.close()

    assert invoke("audit", "--db", str(db), "--tz", "UTC", "--ring", "0") == (
        0,
        "2026-11-23 09:00  ring 0  !5678ef01  remove  #qgqscvnmneyy  handheld  "
        "refused: not on duty\n"
        "2026-11-23 09:00  ring 0  !1234abcd  remove  #qgqscvnmneyy  handheld  accepted\n",
    )
    code, output = invoke("audit", "--db", str(db), "--json")
    assert code == 0
    entries = json.loads(output)
    assert [(e["ring"], e["accepted"], e["reason"]) for e in entries] == [
        (0, False, "not on duty"),
        (0, True, ""),
        (1, False, "bad signature"),
    ]
    assert entries[2] == {
        "at": "2026-11-23T09:00:00+00:00",
        "ring": 1,
        "moderator": "!1234abcd",
        "action": "restore",
        "bulletin": bulletin,
        "board_key": key.public,
        "source": "air:!0000beef",
        "accepted": False,
        "reason": "bad signature",
    }


def test_audit_of_a_board_without_moderation(tmp_path: Path) -> None:
    Store.open(tmp_path / "b.db").close()
    assert invoke("audit", "--db", str(tmp_path / "b.db")) == (0, "no moderation yet\n")
