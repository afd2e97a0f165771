"""The schema version: a fresh database, the upgrade of a database from the field, and refusals.

`fixtures/schema_v1.sql` is a database written by the release before schema versioning
(`schema_fixture.py` says how it was made). It is loaded into a real file and opened the way
the daemon and the CLI open a database.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy
from sqlalchemy import event

from board.bulletin import Bulletin, new_bulletin
from board.errors import NotFound
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.subs import Subscriptions
from board.messages import Inbound
from board.store.bulletins import Store
from board.store.migrations import MIGRATIONS, Migration
from board.store.moderation import ModerationStore
from board.store.outbox import OutboxStore
from board.store.schema import LATEST, SchemaTooNew, upgrade
from board.store.shares import tally_period
from board.store.tools import ToolStore, loans_between
from board.tally import calendar_month
from board.types import TypeRegistry
from board.wire.moderation import Action
from tests.board.schema_fixture import (
    AIR_TOMBSTONE,
    ANA,
    BEN,
    DELETED,
    EVE,
    HIDDEN,
    LENT,
    NOW,
    POSTS,
    RINGS,
    at,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "schema_v1.sql"
READ_AT = NOW + timedelta(hours=1)  # every bulletin of the story is still active then
# The refs the board answered when the story posted them (fixed: ids hash the content).
REFS = {
    0: "bdv1",
    1: "nxw3",
    2: "cjpk",
    3: "2k1f",
    4: "71vy",
    5: "5f6k",
    6: "dfy5",
    7: "k7x2",
    8: "6ew1",
    9: "rcpc",
}


def load(path: Path, sql: Path = FIXTURE) -> Path:
    """A database file holding exactly what the dump holds (with its `user_version`), in WAL
    mode like every board's database.
    """
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(sql.read_text(encoding="utf-8"))
    db.close()
    return path


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    db.close()
    return version


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        lines = list(db.iterdump())
    db.close()
    return lines


def _normal(sql: str | None) -> str | None:
    """SQL text without layout: the same statement however SQLAlchemy or a person spaced it."""
    if sql is None:
        return None
    return re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql)).strip()


def schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    """Every table and index, from sqlite_master."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    db.close()
    return sorted((kind, name, table, _normal(sql)) for kind, name, table, sql in rows)


def post(index: int) -> Bulletin:
    """The story's bulletin POSTS[index] (one posted without a time), rebuilt: same id."""
    minutes, author, ring, command = POSTS[index]
    _, type_name, text = command.split(" ", 2)
    return new_bulletin(
        TypeRegistry(), type=type_name, text=text, author=author, ring=ring, now=at(minutes)
    )


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    return load(tmp_path / "board.db")


@pytest.fixture
def migrated(v1: Path) -> Iterator[Store]:
    store = Store.open(v1)
    yield store
    store.close()


def test_a_fresh_database_gets_the_latest_schema(tmp_path: Path) -> None:
    Store.open(tmp_path / "fresh.db").close()
    assert user_version(tmp_path / "fresh.db") == LATEST
    assert not list(tmp_path.glob("*.bak"))


def test_a_migrated_v1_database_has_exactly_the_schema_of_a_fresh_one(
    tmp_path: Path, v1: Path
) -> None:
    Store.open(tmp_path / "fresh.db").close()
    Store.open(v1).close()
    assert schema(v1) == schema(tmp_path / "fresh.db")


def test_a_database_from_before_some_v1_tables_gets_them(tmp_path: Path, v1: Path) -> None:
    """Before versioning, each store made its own tables when first used."""
    with sqlite3.connect(v1) as db:
        for table in ("outbox_send", "outbox", "subscription", "tool_state", "tool_loan", "share"):
            db.execute(f"DROP TABLE {table}")
        db.execute("DROP INDEX ix_bulletin_ref")  # one that v2 drops again
    db.close()
    Store.open(tmp_path / "fresh.db").close()
    Store.open(v1).close()
    assert schema(v1) == schema(tmp_path / "fresh.db")


def test_opening_a_v1_database_migrates_it_and_keeps_a_copy(
    v1: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = dump(v1)
    with caplog.at_level(logging.INFO, logger="board.store.schema"):
        Store.open(v1).close()
    assert user_version(v1) == LATEST
    backup = v1.with_name("board.db.v1.bak")
    assert dump(backup) == before
    assert f"kept a copy of {v1} (schema v1) in {backup}" in caplog.text
    for version in range(2, LATEST + 1):
        assert f"migrated {v1} from schema v{version - 1} to v{version}" in caplog.text


def test_a_database_whose_name_looks_like_a_uri_is_copied_too(tmp_path: Path) -> None:
    path = load(tmp_path / "board #1?.db")
    Store.open(path).close()
    assert user_version(path) == LATEST
    assert (tmp_path / "board #1?.db.v1.bak").exists()


def test_every_bulletin_is_still_listed_and_read_on_its_ring(migrated: Store) -> None:
    hidden_or_deleted = {HIDDEN, DELETED}
    for ring in (0, 1, 2):
        expected = [
            REFS[i]
            for i in reversed(range(len(POSTS)))
            if POSTS[i][2] == ring and i not in hidden_or_deleted
        ]
        assert [b.ref for b in migrated.active(READ_AT, ring=ring)] == expected
        for index, ref in REFS.items():
            if POSTS[index][2] == ring and index not in hidden_or_deleted:
                read = migrated.get(ref, ring, now=READ_AT)
                assert (read.ref, read.author) == (ref, POSTS[index][1])
                assert POSTS[index][3].endswith(read.text)
    handler = CommandHandler(migrated, BoardConfig(rings=RINGS))
    listing = handler.handle(Inbound(ANA, 1, "list", True, READ_AT)).replies[0].text
    assert listing.splitlines()[0] == f"#{REFS[7]} tool: Wheelbarrow"


def test_tombstones_still_keep_deleted_bulletins_out(migrated: Store) -> None:
    assert not migrated.add(post(DELETED), READ_AT)
    with pytest.raises(NotFound):
        migrated.get(REFS[DELETED], 0, now=READ_AT)
    assert [t.bulletin_id for t in migrated.tombstones(1, READ_AT)] == [AIR_TOMBSTONE.bulletin_id]
    assert migrated.get_tombstone(post(DELETED).id) is not None


def test_a_moderated_bulletin_stays_hidden_and_the_audit_log_is_kept(migrated: Store) -> None:
    with pytest.raises(NotFound):
        migrated.get(REFS[HIDDEN], 0, now=READ_AT)
    moderation = ModerationStore(migrated.engine)
    current = moderation.current(post(HIDDEN).id)
    assert current is not None and current.action == Action.REMOVE
    audit = moderation.audit()
    assert [(e.moderator, e.accepted, e.reason) for e in audit] == [
        ("!1234abcd", True, ""),
        (EVE, False, "not on duty"),
    ]


def test_the_lent_tool_subscriptions_outbox_tally_and_airtime_are_kept(migrated: Store) -> None:
    state = ToolStore(migrated).get(post(LENT).id)
    assert state is not None and state.lent and state.borrower == "Ana"
    assert loans_between(migrated, NOW, READ_AT) == 1
    subs = Subscriptions(migrated)
    assert (subs.subscribed(ANA, 0), subs.subscribed(BEN, 1)) == (["meal"], ["tool"])
    reply, board = OutboxStore(migrated).pending()
    assert (reply.kind, reply.attempts, reply.packet_ids) == ("reply", 1, (0x1234,))
    assert board.kind == "board" and board.queued_at == at(28)
    month = tally_period(migrated.engine, calendar_month(NOW, ZoneInfo("UTC")), 0)
    assert (month.meals, month.tools, month.skills, month.posters) == (1, 1, 1, 3)
    assert migrated.airtime_since(NOW) == [(at(27), 1.9), (at(28), 0.6)]


def test_a_failing_migration_leaves_the_database_at_v1_with_all_its_data(v1: Path) -> None:
    before, shape = dump(v1), schema(v1)
    real = MIGRATIONS[0]
    broken = Migration(2, "breaks half-way", (*real.steps[:4], "CREATE INDEX ix ON nowhere (x)"))
    engine = sqlalchemy.create_engine(f"sqlite:///{v1}")
    with pytest.raises(sqlite3.OperationalError, match=r"no such table: main\.nowhere"):
        upgrade(engine, [broken])
    engine.dispose()
    assert (user_version(v1), dump(v1), schema(v1)) == (0, before, shape)
    Store.open(v1).close()  # and the real migration still runs afterwards
    assert user_version(v1) == LATEST


def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    before = dump(path)
    with pytest.raises(SchemaTooNew) as refused:
        Store.open(path)
    assert str(refused.value) == (
        f"database {path} has schema v{LATEST + 1}, newer than this meshboard's v{LATEST}: "
        "upgrade meshboard, or restore the backup made before the upgrade"
    )
    assert (user_version(path), dump(path)) == (LATEST + 1, before)


def test_two_processes_opening_an_old_database_migrate_it_once(
    v1: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The second one reads the version before the first has finished, and waits for the lock."""
    url = f"sqlite:///{v1}"
    second_waits = threading.Event()
    second = sqlalchemy.create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(second, "connect")
    def watch(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        def trace(statement: str) -> None:
            if statement == "BEGIN IMMEDIATE":
                second_waits.set()

        dbapi_connection.set_trace_callback(trace)

    first_holds = threading.Event()

    def hold_until_the_second_waits(_db: sqlite3.Connection) -> None:
        first_holds.set()
        assert second_waits.wait(10), "the second opener never asked for the lock"

    real = MIGRATIONS[0]
    slow = Migration(2, real.summary, (*real.steps, hold_until_the_second_waits))
    first = sqlalchemy.create_engine(url, connect_args={"check_same_thread": False})
    migrating = threading.Thread(target=upgrade, args=(first, [slow]))
    with caplog.at_level(logging.INFO, logger="board.store.schema"):
        migrating.start()
        assert first_holds.wait(10)
        Store(second).close()
        migrating.join()
    first.dispose()
    assert user_version(v1) == LATEST
    for version in range(2, LATEST + 1):  # each step once: the second found v2 done
        assert caplog.text.count(f"to v{version}:") == 1
