"""Bulletins and tombstones in SQLite: the only state a board must never lose.

The database enforces identity (a UNIQUE content-hash id makes a second copy a no-op), every change
is one transaction, and a file database runs in WAL mode with synchronous=FULL so that whatever
the board acknowledged survives power loss (docs/design.md). The connection's pragmas and
locking are `board.store.database`'s.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Boolean, func, or_
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel, col, delete, select

from board.bulletin import Bulletin, Tombstone, readable_bulletins
from board.errors import (
    AmbiguousRef,
    NotAuthor,
    NotFound,
)
from board.mod_policy import sign_tombstone
from board.refs import MAX_MATCHES, distinct_refs, normalise_ref
from board.signing import BoardKey
from board.store.database import open_engine, prepare, reader, unavailable
from board.store.moderation import hidden, restored_after
from board.store.schema import upgrade
from board.store.shares import share_statement
from board.store.tables import (
    AirtimeRow,
    BulletinRow,
    MemberRow,
    ModerationRow,
    TombstoneRow,
    bulletin_values,
)
from board.when import unix_seconds
from board.wire.tombstone import SignedTombstone

logger = logging.getLogger(__name__)


# Compiled once: a bundle or a flood stores thousands of bulletins through these.
_BULLETINS = SQLModel.metadata.tables["bulletin"]
_TOMBSTONES = SQLModel.metadata.tables["tombstone"]
_ADD_BULLETIN = insert(_BULLETINS).on_conflict_do_nothing()
_IS_DELETED = sqlalchemy.select(_TOMBSTONES.c.id).where(
    _TOMBSTONES.c.id == sqlalchemy.bindparam("id")
)


@dataclass(frozen=True)
class Merged:
    """What merging a batch (a bundle) changed."""

    new: int = 0  # bulletins stored
    already: int = 0  # bulletins held already, or deleted here before
    removed: int = 0  # held bulletins that a tombstone in the batch removed
    tombstones: int = 0  # tombstones stored


def _tombstone(row: TombstoneRow | sqlalchemy.Row[Any]) -> Tombstone:
    """The stored deletion: a `SignedTombstone` when a board signed it (it may go on the air)."""
    fields = (
        row.id,
        row.ring,
        row.author,
        row.deleted_by,
        datetime.fromtimestamp(row.deleted_at, UTC),
        datetime.fromtimestamp(row.expires_at, UTC),
    )
    if row.board_key is None or row.signature is None:
        return Tombstone(*fields)
    return SignedTombstone(*fields, board_key=row.board_key, signature=row.signature)


def _signature(tombstone: Tombstone) -> dict[str, bytes | None]:
    """The tombstone's signature columns (None for one no board signed)."""
    if isinstance(tombstone, SignedTombstone):
        return {"board_key": tombstone.board_key, "signature": tombstone.signature}
    return {"board_key": None, "signature": None}


def _bulletin(row: BulletinRow) -> Bulletin:
    return Bulletin.from_canonical_bytes(row.canonical)


class Store:
    """All bulletin storage of one board; hand it an engine, or use `Store.open`."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self.engine = prepare(engine)
        self._reader = reader(engine)
        upgrade(engine)  # before anything reads a table (board.store.schema)

    @classmethod
    def open(cls, url_or_path: str | Path) -> Store:
        """Open (creating if needed) a database from an `sqlite://` URL or a plain file path."""
        engine, database = open_engine(url_or_path)
        try:
            return cls(engine)
        except (sqlite3.Error, sqlalchemy.exc.DBAPIError) as error:
            engine.dispose()
            raise unavailable(database, error) from error

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        """A transaction that only reads: `list` and `read` must not wait for the outbox's
        write (an fsync on a slow SD card) or a CLI post to finish.
        """
        with Session(self._reader) as session, session.begin():
            yield session

    def add(self, bulletin: Bulletin, now: datetime) -> bool:
        """Store a bulletin; False if it was already here, is tombstoned or has expired."""
        if bulletin.expires_at <= now:
            logger.debug("not storing expired bulletin %s", bulletin.id)
            return False
        with Session(self.engine) as session, session.begin():
            stored = self._insert(session, bulletin, now)
        if stored:
            logger.info("stored bulletin %s on ring %d", bulletin.id, bulletin.ring)
        return stored

    @staticmethod
    def _insert(session: Session, bulletin: Bulletin, now: datetime) -> bool:
        """Insert unless held or tombstoned; a first sighting is also counted for the tally."""
        row = bulletin_values(bulletin, now)
        connection = session.connection()
        if connection.execute(_IS_DELETED, {"id": row["id"]}).first() is not None:
            logger.debug("not storing deleted bulletin %s", row["id"])
            return False
        stored = connection.execute(_ADD_BULLETIN, row).rowcount == 1
        if stored:
            connection.execute(*share_statement(bulletin))
        return stored

    def merge(
        self,
        bulletins: Sequence[Bulletin],
        tombstones: Sequence[Tombstone],
        now: datetime,
        progress: Callable[[int], None] | None = None,
    ) -> Merged:
        """Store a batch in one transaction: all of it, or (on any error) none of it.

        Tombstones go first, so a bulletin removed in the batch is not stored. `progress` is
        told after each item.
        """
        new = already = removed = stored_tombstones = 0
        with Session(self.engine) as session, session.begin():
            for tombstone in tombstones:
                held = session.get(BulletinRow, tombstone.bulletin_id) is not None
                if self._tombstone(session, tombstone, now):
                    stored_tombstones += 1
                    removed += held
                if progress is not None:
                    progress(1)
            for bulletin in bulletins:
                if bulletin.expires_at > now and self._insert(session, bulletin, now):
                    new += 1
                else:
                    already += 1
                if progress is not None:
                    progress(1)
        logger.info("merged %d new bulletins and %d tombstones", new, stored_tombstones)
        return Merged(new, already, removed, stored_tombstones)

    def get(
        self, ref_or_id: str, ring: int | None = None, *, now: datetime | None = None
    ) -> Bulletin:
        """The one bulletin whose id starts with the typed ref; `ring=None` searches every ring.

        With `now`, expired bulletins that are not yet purged are not found.
        """
        prefix = normalise_ref(ref_or_id)
        with self._reading() as session:
            return _bulletin(self._one(session, prefix, ring, now))

    def find_repost(self, bulletin: Bulletin, within: timedelta) -> Bulletin | None:
        """A stored bulletin equal to this one except posted up to `within` earlier.

        Lets the command handler answer a person's re-sent `post` with the first bulletin's ref
        instead of storing the same words twice a few seconds apart.
        """
        created = unix_seconds(bulletin.created_at)
        event_time = None if bulletin.event_time is None else unix_seconds(bulletin.event_time)
        statement = (
            select(BulletinRow)
            .where(
                BulletinRow.ring == bulletin.ring,
                BulletinRow.author == bulletin.author,
                BulletinRow.type == bulletin.type,
                BulletinRow.text == bulletin.text,
                col(BulletinRow.event_time).is_(event_time)
                if event_time is None
                else BulletinRow.event_time == event_time,
                col(BulletinRow.created_at).between(created - int(within.total_seconds()), created),
            )
            .order_by(col(BulletinRow.created_at).desc())
            .limit(1)
        )
        with self._reading() as session:
            row = session.exec(statement).first()
            return None if row is None else _bulletin(row)

    def active(
        self,
        now: datetime,
        ring: int | None = None,
        type: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Bulletin]:
        """Bulletins not yet expired, newest created first (ties broken by id)."""
        statement = select(BulletinRow).where(*self._shown(now, ring, type))
        statement = (
            statement.order_by(col(BulletinRow.created_at).desc(), col(BulletinRow.id))
            .offset(offset)
            .limit(limit)
        )
        with self._reading() as session:
            return readable_bulletins((row.id, row.canonical) for row in session.exec(statement))

    def page(
        self,
        now: datetime,
        ring: int,
        type: str | None = None,
        *,
        after: Bulletin | None = None,
        limit: int,
    ) -> list[Bulletin]:
        """Up to `limit` of what `active` lists, starting just after `after` (in that order).

        `more` goes on from the last bulletin a person was shown, so a list never holds its
        whole ring in memory, and each page is a short walk along an index (schema v2).
        """
        bulletins: list[Bulletin] = []
        position = None if after is None else (unix_seconds(after.created_at), after.id)
        table = _BULLETINS.c
        with self._reading() as session:
            while len(bulletins) < limit:
                # Only the columns it needs, without the ORM: a page is read per `list`.
                statement = sqlalchemy.select(table.id, table.created_at, table.canonical)
                statement = statement.where(*self._shown(now, ring, type))
                if position is not None:
                    created, last = position
                    statement = statement.where(
                        table.created_at <= created,
                        or_(table.created_at < created, table.id > last),
                    )
                wanted = limit - len(bulletins)
                statement = statement.order_by(table.created_at.desc(), table.id).limit(wanted)
                rows = list(session.connection().execute(statement))
                bulletins += readable_bulletins((row.id, row.canonical) for row in rows)
                if len(rows) < wanted:
                    break
                position = (rows[-1].created_at, rows[-1].id)  # past any unreadable ones
        return bulletins

    def delete(
        self,
        ref_or_id: str,
        requester: str | None,
        ring: int | None,
        now: datetime,
        key: BoardKey | None = None,
    ) -> Bulletin:
        """Remove a bulletin and leave a tombstone, in one transaction; return what was removed.

        `requester=None` is the local operator, who may delete anything; anyone else must be the
        author. The tombstone is signed with this board's `key`, which is what makes other
        boards accept it; without a key it deletes here only (other boards refuse it). It keeps
        the bulletin's bytes, so that a moderator's `mod undo` can bring it back.
        """
        prefix = normalise_ref(ref_or_id)
        with Session(self.engine) as session, session.begin():
            row = self._one(session, prefix, ring, now)
            if requester is not None and requester != row.author:
                raise NotAuthor(f"only the author can delete #{row.ref}")
            bulletin = _bulletin(row)
            deleted_at = unix_seconds(now)
            restore = session.get(ModerationRow, row.id)
            if restore is not None and restore.at >= deleted_at:
                deleted_at = restore.at + 1  # a clock behind the moderator's: still the later
            deletion = Tombstone(
                row.id,
                row.ring,
                row.author,
                requester,
                datetime.fromtimestamp(deleted_at, UTC),
                bulletin.expires_at,
            )
            if key is not None:
                deletion = sign_tombstone(key, deletion)
            session.exec(delete(BulletinRow).where(col(BulletinRow.id) == row.id))
            tombstone = {
                "id": row.id,
                "ring": row.ring,
                "author": row.author,
                "deleted_by": requester,
                "deleted_at": deleted_at,
                "expires_at": row.expires_at,
                "canonical": row.canonical,
                **_signature(deletion),
            }
            session.exec(insert(TombstoneRow).values(tombstone).on_conflict_do_nothing())
        logger.info("deleted bulletin %s (by %s)", bulletin.id, requester or "operator")
        if key is None:
            logger.warning(
                "this board has no signing key: other boards will refuse the deletion of %s",
                bulletin.id,
            )
        return bulletin

    def purge_expired(self, now: datetime) -> int:
        """Forget expired bulletins, tombstones, moderations and member records; return how
        many bulletins went."""
        moment = unix_seconds(now)
        with Session(self.engine) as session, session.begin():
            removed = session.exec(
                delete(BulletinRow).where(col(BulletinRow.expires_at) <= moment)
            ).rowcount
            session.exec(delete(TombstoneRow).where(col(TombstoneRow.expires_at) <= moment))
            session.exec(delete(ModerationRow).where(col(ModerationRow.expires_at) <= moment))
            session.exec(delete(MemberRow).where(col(MemberRow.expires_at) <= moment))
        if removed:
            logger.info("purged %d expired bulletins", removed)
        return removed

    def count(self, ring: int | None = None, *, now: datetime | None = None) -> int:
        """Stored bulletins (only unexpired ones when `now` is given)."""
        statement = select(func.count()).select_from(BulletinRow)
        if ring is not None:
            statement = statement.where(BulletinRow.ring == ring)
        if now is not None:
            statement = statement.where(col(BulletinRow.expires_at) > unix_seconds(now))
        with self._reading() as session:
            return session.exec(statement).one()

    def active_ids(self, ring: int, now: datetime, max_bytes: int | None = None) -> list[str]:
        """Ids of a ring's unexpired bulletins, in ascending order (see `active_id_runs`)."""
        return [i for run in self.active_id_runs(ring, now, max_bytes) for i in run]

    def active_id_runs(
        self, ring: int, now: datetime, max_bytes: int | None = None, run: int = 4096
    ) -> Iterator[list[str]]:
        """Ids of a ring's unexpired bulletins, in ascending order, `run` at a time: what sync
        summarises and compares, read without holding every id string at once.

        `max_bytes` leaves out bulletins whose canonical encoding is longer (those that cannot
        travel in one packet stay local, and must not make digests disagree for ever). Ids
        sort as their raw bytes do, which lets sync pack the keys and search them.
        """
        table = _BULLETINS.c
        statement = sqlalchemy.select(table.id).where(
            table.ring == ring, table.expires_at > unix_seconds(now)
        )
        if max_bytes is not None:
            statement = statement.where(func.length(table.canonical) <= max_bytes)
        # Read from the (ring, expires_at, id, length(canonical)) index alone, without the ORM,
        # sorted by SQLite: sync reads every id of a ring this way (about 30,000 on a busy board).
        statement = statement.order_by(table.id)
        with self._reading() as session:
            result = session.connection().execute(statement).scalars()
            while ids := result.fetchmany(run):
                yield list(ids)

    def ids_expired(self, ring: int, after: datetime, upto: datetime) -> list[str]:
        """Ids of a ring's bulletins that expire in (after, upto]: what left its active set."""
        table = _BULLETINS.c
        statement = sqlalchemy.select(table.id).where(
            table.ring == ring,
            table.expires_at > unix_seconds(after),
            table.expires_at <= unix_seconds(upto),
        )
        with self._reading() as session:
            return list(session.connection().execute(statement).scalars())

    def next_expiry(self, ring: int, now: datetime) -> datetime | None:
        """When the ring's active set next shrinks by itself (a bulletin or tombstone expires)."""
        moment = unix_seconds(now)
        with self._reading() as session:
            times = [
                session.exec(
                    select(func.min(table.expires_at)).where(
                        table.ring == ring, col(table.expires_at) > moment
                    )
                ).one()
                for table in (BulletinRow, TombstoneRow, ModerationRow)
            ]
        found = [t for t in times if t is not None]
        return datetime.fromtimestamp(min(found), UTC) if found else None

    def canonical(self, bulletin_id: str) -> bytes | None:
        """A stored bulletin's canonical bytes by exact id, ready to put on the air."""
        with self._reading() as session:
            row = session.get(BulletinRow, bulletin_id)
            return None if row is None else row.canonical

    def tombstones(self, ring: int, now: datetime) -> list[Tombstone]:
        """A ring's unexpired tombstones (sync reads them with every look at the ring)."""
        table = _TOMBSTONES.c
        statement = sqlalchemy.select(_TOMBSTONES).where(
            table.ring == ring, table.expires_at > unix_seconds(now)
        )
        with self._reading() as session:
            return [_tombstone(row) for row in session.connection().execute(statement)]

    def get_tombstone(self, bulletin_id: str) -> Tombstone | None:
        with self._reading() as session:
            row = session.get(TombstoneRow, bulletin_id)
            return None if row is None else _tombstone(row)

    def deleted(self, ref: str, ring: int, now: datetime) -> list[Tombstone]:
        """The ring's unexpired tombstones (at most two) whose ids start with `ref`: what a
        moderator's `mod undo #ref` may mean."""
        table = _TOMBSTONES.c
        statement = (
            sqlalchemy.select(_TOMBSTONES)
            .where(
                table.ring == ring,
                table.expires_at > unix_seconds(now),
                table.id >= ref,
                table.id < ref + "~",
            )
            .order_by(table.id)
            .limit(2)
        )
        with self._reading() as session:
            return [_tombstone(row) for row in session.connection().execute(statement)]

    def apply_tombstone(self, tombstone: Tombstone, now: datetime) -> bool:
        """Store a deletion heard from the mesh, in one transaction; False if nothing changed.

        The target, if held, is deleted (its bytes are kept with the tombstone, for a moderator's
        undo), and an unsigned tombstone takes its expiry (the target's own word beats the
        message's; a signed one whose expiry differs is refused, as no board makes one). A
        tombstone never reaches across rings: one whose target lives on another ring is refused.
        Nor does one older than a moderator's restore of its target: the restore undid it.
        """
        with Session(self.engine) as session, session.begin():
            if not self._tombstone(session, tombstone, now):
                return False
        logger.info("tombstone for bulletin %s from the mesh", tombstone.bulletin_id)
        return True

    @staticmethod
    def _tombstone(session: Session, tombstone: Tombstone, now: datetime) -> bool:
        """`apply_tombstone` inside the caller's transaction."""
        expires_at = unix_seconds(tombstone.expires_at)
        if session.get(TombstoneRow, tombstone.bulletin_id) is not None:
            return False
        if restored_after(session, tombstone):
            logger.info("tombstone for %s is older than its restore", tombstone.bulletin_id)
            return False
        target = session.get(BulletinRow, tombstone.bulletin_id)
        if target is not None:
            if target.ring != tombstone.ring:
                logger.warning("tombstone for %s on the wrong ring", tombstone.bulletin_id)
                return False
            signed = isinstance(tombstone, SignedTombstone)
            if signed and (target.expires_at, target.author) != (expires_at, tombstone.author):
                # No board signs one: the signature would not cover what we would keep.
                logger.warning("signed tombstone for %s does not match it", tombstone.bulletin_id)
                return False
            expires_at = target.expires_at
        if expires_at <= unix_seconds(now):
            return False
        if target is not None:
            session.delete(target)
        row = {
            "id": tombstone.bulletin_id,
            "ring": tombstone.ring,
            "author": target.author if target is not None else tombstone.author,
            "deleted_by": tombstone.deleted_by,
            "deleted_at": unix_seconds(tombstone.deleted_at),
            "expires_at": expires_at,
            "canonical": None if target is None else target.canonical,
            **_signature(tombstone),
        }
        session.exec(insert(TombstoneRow).values(row))
        return True

    def record_airtime(self, at: datetime, seconds: float, forget_before: datetime) -> None:
        """Remember one transmission and forget those that left the budget window: one write."""
        with Session(self.engine) as session, session.begin():
            session.add(AirtimeRow(at=at.timestamp(), seconds=seconds))
            session.exec(delete(AirtimeRow).where(col(AirtimeRow.at) < forget_before.timestamp()))

    def airtime_since(self, since: datetime) -> list[tuple[datetime, float]]:
        """This board's transmissions from `since` on, oldest first."""
        statement = (
            select(AirtimeRow)
            .where(col(AirtimeRow.at) >= since.timestamp())
            .order_by(col(AirtimeRow.at))
        )
        with self._reading() as session:
            return [
                (datetime.fromtimestamp(row.at, UTC), row.seconds)
                for row in session.exec(statement)
            ]

    @staticmethod
    def _shown(
        now: datetime | None, ring: int | None, type: str | None = None
    ) -> list[ColumnElement[bool]]:
        """What a person may see: unexpired (with `now`), of the ring and type, not hidden."""
        conditions: list[ColumnElement[bool]] = []
        if now is not None:
            # Most stored bulletins are unexpired (the daemon purges every 10 minutes). Saying
            # so keeps SQLite walking a ring newest first for `list` rather than gathering the
            # whole ring by expiry and sorting it (bench/store_scale.py).
            unexpired = col(BulletinRow.expires_at) > unix_seconds(now)
            conditions.append(func.likely(unexpired, type_=Boolean))
        if ring is not None:
            conditions.append(col(BulletinRow.ring) == ring)
        if type is not None:
            conditions.append(col(BulletinRow.type) == type.lower())
        # A moderator's removal hides a bulletin from people; sync still holds its bytes.
        conditions.append(~hidden(BulletinRow.id, BulletinRow.ring))
        return conditions

    def _one(
        self, session: Session, prefix: str, ring: int | None, now: datetime | None
    ) -> BulletinRow:
        """The single row whose id starts with `prefix` (a range scan on the primary key)."""
        statement = select(BulletinRow).where(
            *self._shown(now, ring),
            col(BulletinRow.id) >= prefix,
            col(BulletinRow.id) < prefix + "~",
        )
        rows = list(session.exec(statement.order_by(col(BulletinRow.id)).limit(MAX_MATCHES)))
        if not rows:
            raise NotFound(f"no bulletin #{prefix}")
        if len(rows) > 1:
            raise AmbiguousRef(prefix, distinct_refs([row.id for row in rows], prefix))
        return rows[0]
