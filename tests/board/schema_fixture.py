"""Freeze a board database as SQL text, so a later schema can be tested against it.

    PYTHONPATH=<checkout of the release to freeze> python tests/board/schema_fixture.py OUT.sql

Runs a small, fixed story through the public APIs of whatever `board/` is on the path (posts on
three rings, a deletion, a tombstone from the air, a moderator's removal and a refused attempt, a
tool lent, a subscription, replies and a board packet waiting in the outbox, airtime spent),
so that every table holds rows written by that code, then dumps the database (schema, rows and
`PRAGMA user_version`) as SQL. `tests/board/store/test_schema.py` loads the dump and opens it the
way a board does, which is the upgrade a board in the field goes through.

When the schema changes, freeze the release before the change the same way (a `git worktree`
of it on PYTHONPATH) as `fixtures/schema_vN.sql`, and keep the older ones.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import board
from board.bulletin import Tombstone
from board.config import MeshboardConfig, RingSpec, Rotation
from board.handheld.asks import AskRouter
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.subs import Subscriptions
from board.handheld.tools import ToolCommands
from board.messages import Inbound, Outgoing, Reply
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.outbox import OutboxStore
from board.store.tools import ToolStore

#: The story's clock: Monday 23 November 2026, 09:00 UTC. Tests read the data at NOW.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MODERATOR = "!1234abcd"  # on duty the whole week
ANA, BEN, EVE = "!a1b2c3d4", "!0badcafe", "!5678ef01"
RINGS = MeshboardConfig(
    rings=(
        RingSpec("public", 0, rotation=Rotation((MODERATOR,), timedelta(weeks=1), NOW)),
        RingSpec("garden", 1),
        RingSpec("elders", 2),
    )
)
#: (minutes after NOW, author, ring, command): every post the story makes, in order.
POSTS = (
    (0, ANA, 0, "post meal tue 18:00 Soup at the hall, bring a bowl"),
    (1, BEN, 0, "post tool Ladder, 3 m, aluminium"),
    (2, EVE, 0, "post skill Bread baking on Saturday mornings"),
    (3, ANA, 0, "post notice Street party planning meeting"),
    (4, BEN, 0, "post food Co-op pickup: 12 boxes of apples"),
    (5, ANA, 1, "post meal wed Garden harvest stew"),
    (6, EVE, 1, "post childcare Two evenings a week, swap welcome"),
    (7, BEN, 1, "post tool Wheelbarrow"),
    (8, ANA, 2, "post notice Elders' tea on Thursday"),
    (9, EVE, 0, "post notice Lost cat, grey, answers to Pip"),
)
DELETED = 9  # Eve deletes her lost-cat notice (the cat came home): a tombstone
HIDDEN = 2  # the moderator removes the bread-baking post
LENT = 1  # Ben lends his ladder
#: A tombstone heard from the air for a bulletin this board never held.
AIR_TOMBSTONE = Tombstone(
    bulletin_id="0" * 26,
    ring=1,
    author=ANA,
    deleted_by=ANA,
    deleted_at=NOW,
    expires_at=NOW + timedelta(days=3),
)
#: The board key, fixed so the fixture's signatures are reproducible.
KEY_SEED = bytes(range(32))


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def story(store: Store) -> dict[int, str]:
    """Fill every table through the public APIs; the refs of the posts, by POSTS index."""
    key = BoardKey(Ed25519PrivateKey.from_private_bytes(KEY_SEED))
    board = BoardConfig(rings=RINGS)
    tools = ToolStore(store)
    subs = Subscriptions(store, board.types)
    handler = CommandHandler(
        store,
        board,
        extensions=(ToolCommands(store, tools, AskRouter(store)), subs),
        key=key,
    )

    def say(minutes: int, sender: str, ring: int, text: str, *, verified: bool = False) -> str:
        inbound = Inbound(sender, ring, text, True, at(minutes), verified=verified)
        return handler.handle(inbound).replies[0].text

    refs = {}
    for index, (minutes, author, ring, text) in enumerate(POSTS):
        answer = say(minutes, author, ring, text)
        assert answer.startswith("ok #"), answer
        refs[index] = answer.split()[1]
    assert say(20, EVE, 0, f"del {refs[DELETED]}").startswith("deleted")
    assert say(21, BEN, 0, f"lend {refs[LENT]} to Ana until sat").endswith("till sat")
    assert say(22, MODERATOR, 0, f"mod del {refs[HIDDEN]}", verified=True).startswith("removed")
    assert say(23, EVE, 0, f"mod del {refs[0]}", verified=True).startswith("mod:")  # refused
    assert say(24, ANA, 0, "sub meal").startswith("subscribed")
    assert say(25, BEN, 1, "sub tool").startswith("subscribed")
    assert store.apply_tombstone(AIR_TOMBSTONE, at(26))
    outbox = OutboxStore(store)
    reply = outbox.add(Reply(ANA, 0, "ok #abcd meal: Soup"), at(27))
    outbox.sent(reply.id, 0x1234, at(27))
    outbox.add(Outgoing(1, b"\xb1\x03board-plane bytes"), at(28))
    for minutes, seconds in ((27, 1.9), (28, 0.6)):
        store.record_airtime(at(minutes), seconds, forget_before=at(minutes) - timedelta(hours=1))
    return refs


def freeze(out: Path) -> None:
    """Run the story in a fresh file database and write it, as SQL, to `out`."""
    database = out.with_suffix(".db")
    database.unlink(missing_ok=True)
    store = Store.open(database)
    story(store)
    store.close()
    with sqlite3.connect(database) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        dump = "\n".join(connection.iterdump())
    connection.close()
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    header = (
        f"-- A board database written by meshboard at commit {_commit()}, frozen by\n"
        "-- tests/board/schema_fixture.py (the story is in that file). Regenerate only to\n"
        "-- freeze a new release; the tests load this file as it is.\n"
    )
    out.write_text(f"{header}PRAGMA user_version = {version};\n{dump}\n", encoding="utf-8")


def _commit() -> str:
    """The commit of the `board` package that wrote the data (its checkout's HEAD)."""
    where = Path(board.__file__).parent
    found = subprocess.run(
        ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or "unknown"


if __name__ == "__main__":
    freeze(Path(sys.argv[1]))
