"""The store against real SQLite: identity, expiry, rings, deletion and durability settings."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

import board.store.database
from board.bulletin import Bulletin
from board.errors import AmbiguousRef, DatabaseUnavailable, NotAuthor, NotFound
from board.refs import REF_LENGTH
from board.store.bulletins import Store
from board.store.tables import TombstoneRow

Make = Callable[..., Bulletin]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ALICE, BOB = "!a1b2c3d4", "!0badcafe"


def colliding(
    make: Make, length: int, rings: tuple[int, int] = (0, 0)
) -> tuple[Bulletin, Bulletin]:
    """Bulletins on `rings` whose ids share their first `length` characters (found by search)."""
    seen: dict[str, Bulletin] = {}
    for n in range(50_000):
        first, second = (make(text=f"Soup number {n}", ring=ring) for ring in rings)
        if (other := seen.get(second.id[:length])) is not None:
            return other, second
        seen[first.id[:length]] = first
    raise AssertionError("no collision found")


def tombstones(store: Store) -> int:
    with Session(store.engine) as session:
        return session.exec(select(func.count()).select_from(TombstoneRow)).one()


def test_add_twice_stores_once(store: Store, make: Make) -> None:
    assert store.add(make(), NOW) is True
    assert store.add(make(), NOW + timedelta(minutes=1)) is False
    assert store.count() == 1


def test_round_trip_through_the_database(store: Store, make: Make) -> None:
    bulletin = make(text="Grüße 👋🏽\nzweite Zeile", event_time=NOW + timedelta(hours=3))
    store.add(bulletin, NOW)
    stored = store.get(bulletin.ref)
    assert stored == bulletin
    assert stored.created_at.tzinfo == UTC


def test_expired_bulletins_are_not_stored_or_listed(store: Store, make: Make) -> None:
    meal = make()  # a meal without event time lives one day
    assert store.add(meal, NOW + timedelta(days=1)) is False
    store.add(meal, NOW)
    assert store.active(NOW + timedelta(hours=23)) == [meal]
    assert store.active(NOW + timedelta(days=1)) == []
    assert store.count(now=NOW + timedelta(days=1)) == 0
    with pytest.raises(NotFound):
        store.get(meal.ref, now=NOW + timedelta(days=1))


def test_active_is_newest_first_and_filtered(store: Store, make: Make) -> None:
    older = make(text="old", now=NOW)
    newer = make(text="new", now=NOW + timedelta(minutes=5))
    tool = make(text="ladder", type="tool", now=NOW + timedelta(minutes=1))
    elsewhere = make(text="other ring", ring=2, now=NOW + timedelta(minutes=9))
    for bulletin in (older, newer, tool, elsewhere):
        store.add(bulletin, NOW + timedelta(minutes=10))
    later = NOW + timedelta(minutes=10)
    assert store.active(later, ring=0) == [newer, tool, older]
    assert store.active(later) == [elsewhere, newer, tool, older]
    assert store.active(later, ring=0, type="MEAL") == [newer, older]
    assert store.active(later, ring=0, limit=1, offset=1) == [tool]
    assert store.count(ring=0) == 3
    assert store.count(ring=2) == 1


@pytest.mark.parametrize("size", [1, 2, 5])
def test_pages_walk_the_list_in_order_from_where_the_last_one_ended(
    store: Store, make: Make, size: int
) -> None:
    # Six bulletins, two posted in each of three seconds: ties go by id, as in `active`.
    for n in range(6):
        store.add(make(text=f"Lesson {n}", now=NOW + timedelta(seconds=n // 2)), NOW)
    store.add(make(text="Other ring", ring=1), NOW)
    later = NOW + timedelta(minutes=1)
    walked: list[Bulletin] = []
    while page := store.page(later, 0, after=walked[-1] if walked else None, limit=size):
        assert len(page) <= size
        walked += page
    assert walked == store.active(later, ring=0)
    assert [b.text for b in store.page(later, 0, "meal", after=walked[2], limit=9)] == [
        b.text for b in walked[3:]
    ]


def test_purge_removes_expired_bulletins_and_tombstones(store: Store, make: Make) -> None:
    meal, tool = make(), make(type="tool", text="ladder")
    deleted = make(text="gone")
    for bulletin in (meal, tool, deleted):
        store.add(bulletin, NOW)
    store.delete(deleted.ref, requester=ALICE, ring=0, now=NOW)
    assert store.purge_expired(NOW + timedelta(hours=1)) == 0
    assert tombstones(store) == 1
    assert store.purge_expired(NOW + timedelta(days=2)) == 1
    assert store.count() == 1
    assert tombstones(store) == 0
    assert store.active(NOW + timedelta(days=2)) == [tool]


@pytest.mark.parametrize("typed", ["full id", "ref", "#REF", "two"])
def test_get_by_prefix(store: Store, make: Make, typed: str) -> None:
    bulletin = make()
    store.add(bulletin, NOW)
    ref = {
        "full id": bulletin.id,
        "ref": bulletin.ref,
        "#REF": "#" + bulletin.ref.upper(),
        "two": bulletin.id[:2],
    }[typed]
    assert store.get(ref) == bulletin


def test_get_unknown(store: Store, make: Make) -> None:
    store.add(make(), NOW)
    with pytest.raises(NotFound, match=r"^no bulletin #zz9$"):
        store.get("#zz9")


def test_another_ring_is_not_visible(store: Store, make: Make) -> None:
    bulletin = make(ring=1)
    store.add(bulletin, NOW)
    with pytest.raises(NotFound):
        store.get(bulletin.ref, ring=0)
    assert store.get(bulletin.ref, ring=1) == bulletin
    assert store.get(bulletin.ref) == bulletin  # the operator's CLI sees every ring


def test_ambiguous_prefix_offers_longer_refs(store: Store, make: Make) -> None:
    first, second = colliding(make, REF_LENGTH)
    store.add(first, NOW)
    store.add(second, NOW)
    with pytest.raises(AmbiguousRef) as caught:
        store.get(first.ref)
    matches = caught.value.matches
    assert sorted(matches) == sorted([first.id[: len(matches[0])], second.id[: len(matches[1])]])
    assert all(len(match) > REF_LENGTH for match in matches)
    assert str(caught.value) == f"#{first.ref} matches #{matches[0]} #{matches[1]}; send more of it"
    assert {store.get(match) for match in matches} == {first, second}


def test_ambiguity_only_counts_the_asked_ring(store: Store, make: Make) -> None:
    first, second = colliding(make, 2, rings=(0, 3))
    store.add(first, NOW)
    store.add(second, NOW)
    with pytest.raises(AmbiguousRef):
        store.get(first.id[:2])
    assert store.get(first.id[:2], ring=0) == first
    assert store.get(first.id[:2], ring=3) == second


def test_author_deletes_and_tombstone_blocks_re_adding(store: Store, make: Make) -> None:
    bulletin = make()
    store.add(bulletin, NOW)
    assert store.delete("#" + bulletin.ref, requester=ALICE, ring=0, now=NOW) == bulletin
    assert store.active(NOW) == []
    assert tombstones(store) == 1
    assert store.add(bulletin, NOW + timedelta(minutes=1)) is False
    assert store.count() == 0


def test_only_the_author_may_delete(store: Store, make: Make) -> None:
    bulletin = make()
    store.add(bulletin, NOW)
    with pytest.raises(NotAuthor, match=f"^only the author can delete #{bulletin.ref}$"):
        store.delete(bulletin.ref, requester=BOB, ring=0, now=NOW)
    assert store.active(NOW) == [bulletin]
    assert tombstones(store) == 0


def test_the_local_operator_may_delete_anything(store: Store, make: Make) -> None:
    bulletin = make(ring=5)
    store.add(bulletin, NOW)
    assert store.delete(bulletin.ref, requester=None, ring=None, now=NOW) == bulletin
    assert store.count() == 0


def test_delete_on_another_ring_is_not_found(store: Store, make: Make) -> None:
    bulletin = make(ring=1)
    store.add(bulletin, NOW)
    with pytest.raises(NotFound):
        store.delete(bulletin.ref, requester=ALICE, ring=0, now=NOW)
    assert store.count() == 1


def test_find_repost(store: Store, make: Make) -> None:
    first = make()
    store.add(first, NOW)
    again = make(now=NOW + timedelta(minutes=2))
    assert store.find_repost(again, timedelta(minutes=10)) == first
    assert store.find_repost(again, timedelta(minutes=1)) is None
    assert store.find_repost(make(now=again.created_at, ring=1), timedelta(minutes=10)) is None
    assert store.find_repost(make(now=again.created_at, author=BOB), timedelta(hours=1)) is None
    timed = make(now=again.created_at, event_time=NOW + timedelta(hours=8))
    assert store.find_repost(timed, timedelta(minutes=10)) is None


def test_naive_times_are_a_programming_error(store: Store, make: Make) -> None:
    with pytest.raises(ValueError):
        store.active(datetime(2026, 11, 23, 9, 0))


@pytest.mark.parametrize("form", ["path", "url"])
def test_open_a_file_database(tmp_path: Path, make: Make, form: str) -> None:
    path = tmp_path / "nested" / "dir" / "board.db"
    target = path if form == "path" else f"sqlite:///{path}"
    store = Store.open(target)
    store.add(make(), NOW)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()
    reopened = Store.open(str(path))
    assert reopened.active(NOW) == [make()]
    reopened.close()


def test_open_in_memory(make: Make) -> None:
    store = Store.open("sqlite://")
    store.add(make(), NOW)
    assert store.count() == 1
    store.close()


def test_daemon_and_cli_can_share_a_file(tmp_path: Path, make: Make) -> None:
    daemon, cli = Store.open(tmp_path / "board.db"), Store.open(tmp_path / "board.db")
    cli.add(make(), NOW)
    assert daemon.active(NOW) == [make()]
    daemon.delete(make().ref, requester=None, ring=None, now=NOW)
    assert cli.add(make(), NOW) is False
    daemon.close()
    cli.close()


def test_two_stores_on_one_engine(store: Store, make: Make) -> None:
    again = Store(store.engine)  # listeners must not be installed twice (BEGIN inside BEGIN)
    again.add(make(), NOW)
    assert store.count() == 1


def locked_rollback_file(path: Path) -> sqlite3.Connection:
    """A database not yet in WAL mode, with another program in the middle of writing it."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other_program (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other_program VALUES (1)")
    return holder


def test_first_open_waits_for_a_writer_instead_of_failing(tmp_path: Path, make: Make) -> None:
    """Going to WAL needs the file to itself, and SQLite refuses at once rather than waiting:
    a `meshboard post` just as the daemon writes a new file must wait, like any busy step.
    """
    path = tmp_path / "board.db"
    holder = locked_rollback_file(path)
    release = threading.Timer(0.5, holder.execute, ("COMMIT",))
    release.start()
    store = Store.open(path)
    release.join()
    assert store.add(make(), NOW)
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("SELECT x FROM other_program").fetchall() == [(1,)]
    store.close()
    holder.close()


def test_first_open_fails_clearly_when_the_writer_never_lets_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board.store.database, "BUSY_TIMEOUT", 0.3)
    holder = locked_rollback_file(tmp_path / "board.db")
    with pytest.raises(DatabaseUnavailable, match=r"database is locked \(held by another program"):
        Store.open(tmp_path / "board.db")
    holder.close()


def test_a_file_that_is_not_a_database_is_named_not_traced(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    path.write_bytes(b"a shopping list, not a board\n" * 200)
    with pytest.raises(DatabaseUnavailable, match=r"board\.db: file is not a database; `meshboard"):
        Store.open(path)
    assert path.read_bytes().startswith(b"a shopping list")  # left as it was


def test_reads_do_not_wait_for_a_writer(tmp_path: Path, make: Make) -> None:
    """`list` and `read` go on while another connection holds the write lock (the outbox's
    fsync, a CLI post): in WAL mode a reader needs no lock, and only writes take one.
    """
    path = tmp_path / "board.db"
    store = Store.open(path)
    soup = make()
    store.add(soup, NOW)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM bulletin")  # not committed: readers still see the soup
    try:
        assert [b.id for b in store.page(NOW, 0, limit=5)] == [soup.id]
        assert store.get(soup.ref, 0, now=NOW) == soup
        assert store.count(0, now=NOW) == 1
        assert store.active_ids(0, NOW) == [soup.id]
        assert store.canonical(soup.id) == soup.canonical_bytes()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    store.close()
