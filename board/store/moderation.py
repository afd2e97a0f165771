"""Moderation in SQLite: the winning action per bulletin, and the audit log of every attempt.

A moderator's removal hides a bulletin without deleting it: its bytes stay, so that `mod undo`
can bring it back on every board and digests still agree. `Store` leaves out of lists and reads
every bulletin whose winning action here is a removal (`hidden`).

A restore also undoes a deletion older than itself (someone who claimed the author's id on the
channel key asked a board to delete): in the same transaction the tombstone goes, and the
bulletin comes back from the bytes the tombstone kept. A board that never held it gets it from
its neighbours by repair, as it no longer holds the tombstone that kept it out; and a tombstone
older than the restore is refused from then on (`restored_after`).

The audit log is append-only and never purged: it is what a neighbourhood looks at when someone
asks who removed what, and its rows are small and rare.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, delete, select

from board.bulletin import Bulletin, Tombstone
from board.errors import MalformedBulletin
from board.refs import REF_LENGTH
from board.signing import encode_public
from board.store.applied import Applied
from board.store.tables import (
    BulletinRow,
    ModerationLogRow,
    ModerationRow,
    TombstoneRow,
    bulletin_values,
)
from board.when import unix_seconds
from board.wire.keys import bytes_to_id, id_to_bytes
from board.wire.moderation import Action, ModerationMsg

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    ring: int
    moderator: str
    action: str
    bulletin: str
    board_key: str | None
    source: str
    accepted: bool
    reason: str

    def as_json(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "ring": self.ring,
            "moderator": self.moderator,
            "action": self.action,
            "bulletin": self.bulletin,
            "board_key": self.board_key,
            "source": self.source,
            "accepted": self.accepted,
            "reason": self.reason,
        }


def action_name(action: Action) -> str:
    return "remove" if action == Action.REMOVE else "restore"


def _msg(row: ModerationRow) -> ModerationMsg:
    return ModerationMsg(
        action=Action(row.action),
        target=id_to_bytes(row.id),
        ring=row.ring,
        moderator=row.moderator,
        at=datetime.fromtimestamp(row.at, UTC),
        expires_at=datetime.fromtimestamp(row.expires_at, UTC),
        board_key=row.board_key,
        signature=row.signature,
    )


def hidden(bulletin_id: Any, ring: Any) -> ColumnElement[bool]:
    """Whether a moderator removed the bulletin with this id on this ring (for `Store` queries,
    given the bulletin table's columns). The ring is matched too, so that a moderation made on
    one ring can never hide anything on another.
    """
    return (
        select(ModerationRow.id)
        .where(
            ModerationRow.id == bulletin_id,
            ModerationRow.ring == ring,
            ModerationRow.action == int(Action.REMOVE),
        )
        .exists()
    )


def restored_after(session: Session, tombstone: Tombstone) -> bool:
    """Whether a moderator restored the tombstone's target, on its ring, after it was deleted:
    then the tombstone is undone, wherever it comes from (inside the caller's transaction)."""
    row = session.get(ModerationRow, tombstone.bulletin_id)
    return (
        row is not None
        and row.action == int(Action.RESTORE)
        and row.ring == tombstone.ring
        and row.at > unix_seconds(tombstone.deleted_at)
    )


def _undelete(session: Session, msg: ModerationMsg, now: datetime) -> None:
    """A restore undoes an older deletion of its bulletin: the tombstone goes, and the bulletin
    comes back from the bytes it kept (if this board held it, and it has not expired)."""
    bulletin_id = bytes_to_id(msg.target)
    row = session.get(TombstoneRow, bulletin_id)
    if row is None or row.ring != msg.ring or row.deleted_at >= unix_seconds(msg.at):
        return
    canonical = row.canonical
    session.delete(row)
    logger.info("restore of %s undoes its deletion", bulletin_id)
    if canonical is None or row.expires_at <= unix_seconds(now):
        return  # its neighbours have it: repair brings it, now that nothing keeps it out
    try:
        bulletin = Bulletin.from_canonical_bytes(canonical)
    except MalformedBulletin as exc:
        logger.warning("cannot bring back bulletin %s: %s", bulletin_id, exc)
        return
    values = bulletin_values(bulletin, now)
    session.connection().execute(insert(BulletinRow).values(values).on_conflict_do_nothing())


class ModerationStore:
    """Moderation state of one board; shares the bulletin store's engine (and file)."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self.engine = engine

    def apply(self, msg: ModerationMsg, now: datetime) -> Applied:
        """Keep `msg` if it beats what this board holds for its bulletin, in one transaction;
        a restore also undoes an older deletion of the bulletin.

        STALE: we hold a later action (the sender should hear ours); DUPLICATE: the same one.
        """
        if msg.expires_at <= now:
            return Applied.STALE
        bulletin_id = bytes_to_id(msg.target)
        with Session(self.engine) as session, session.begin():
            row = session.get(ModerationRow, bulletin_id)
            if row is not None:
                held = _msg(row)
                if held.signature == msg.signature:
                    return Applied.DUPLICATE
                if not msg.beats(held):
                    return Applied.STALE
                session.delete(row)
                session.flush()
            session.add(
                ModerationRow(
                    id=bulletin_id,
                    ring=msg.ring,
                    action=int(msg.action),
                    moderator=msg.moderator,
                    at=unix_seconds(msg.at),
                    expires_at=unix_seconds(msg.expires_at),
                    board_key=msg.board_key,
                    signature=msg.signature,
                )
            )
            if msg.action == Action.RESTORE:
                _undelete(session, msg, now)
        logger.info(
            "%s of bulletin %s by moderator %s", action_name(msg.action), bulletin_id, msg.moderator
        )
        return Applied.NEW

    def current(self, bulletin_id: str) -> ModerationMsg | None:
        with Session(self.engine) as session, session.begin():
            row = session.get(ModerationRow, bulletin_id)
            return None if row is None else _msg(row)

    def actions(self, ring: int, now: datetime) -> list[ModerationMsg]:
        """A ring's unexpired winning actions: what sync compares."""
        statement = select(ModerationRow).where(
            ModerationRow.ring == ring, col(ModerationRow.expires_at) > unix_seconds(now)
        )
        with Session(self.engine) as session, session.begin():
            return [_msg(row) for row in session.exec(statement)]

    def removed(self, ref: str, ring: int, now: datetime) -> list[str]:
        """Ids (at most two) of the ring's unexpired removed bulletins starting with `ref`."""
        statement = (
            select(ModerationRow.id)
            .where(
                ModerationRow.ring == ring,
                ModerationRow.action == int(Action.REMOVE),
                col(ModerationRow.expires_at) > unix_seconds(now),
                col(ModerationRow.id) >= ref,
                col(ModerationRow.id) < ref + "~",
            )
            .limit(2)
        )
        with Session(self.engine) as session, session.begin():
            return list(session.exec(statement))

    def purge_expired(self, now: datetime) -> int:
        with Session(self.engine) as session, session.begin():
            return session.exec(
                delete(ModerationRow).where(col(ModerationRow.expires_at) <= unix_seconds(now))
            ).rowcount

    def log(
        self,
        *,
        at: datetime,
        ring: int,
        moderator: str,
        action: Action,
        bulletin: str,
        source: str,
        board_key: bytes | None = None,
        refused: str = "",
    ) -> None:
        """Append one attempt to the audit log; `refused` says why it was not carried out."""
        self.note(
            at=at,
            ring=ring,
            node=moderator,
            event=action_name(action),
            refused=refused,
            bulletin=bulletin,
            source=source,
            board_key=board_key,
        )
        if refused:
            logger.info(
                "refused %s of %s by %s: %s", action_name(action), bulletin, moderator, refused
            )

    def note(
        self,
        *,
        at: datetime,
        ring: int,
        node: str,
        event: str,
        refused: str = "",
        bulletin: str = "",
        source: str = "handheld",
        board_key: bytes | None = None,
    ) -> None:
        """Append any event to the audit log: a moderation attempt (`log`), a membership event
        (`join`, `leave`, `key changed`), so the moderators see who joined their ring and whose
        key changed beside what was removed, or a `delete` refused from the air (a tombstone no
        trusted board signed)."""
        row = {
            "at": unix_seconds(at),
            "ring": ring,
            "moderator": node,
            "action": event,
            "bulletin": bulletin,
            "board_key": None if board_key is None else encode_public(board_key),
            "source": source,
            "accepted": not refused,
            "reason": refused,
        }
        with Session(self.engine) as session, session.begin():
            session.exec(insert(ModerationLogRow).values(row))

    def audit(self, ring: int | None = None) -> list[AuditEntry]:
        """The audit log, oldest first."""
        statement = select(ModerationLogRow).order_by(
            col(ModerationLogRow.at), col(ModerationLogRow.id)
        )
        if ring is not None:
            statement = statement.where(ModerationLogRow.ring == ring)
        with Session(self.engine) as session, session.begin():
            return [
                AuditEntry(
                    at=datetime.fromtimestamp(row.at, UTC),
                    ring=row.ring,
                    moderator=row.moderator,
                    action=row.action,
                    bulletin=row.bulletin,
                    board_key=row.board_key,
                    source=row.source,
                    accepted=row.accepted,
                    reason=row.reason,
                )
                for row in session.exec(statement)
            ]


def short(bulletin_id: str) -> str:
    """A bulletin's ref as people see it, for replies and the audit listing."""
    return bulletin_id[:REF_LENGTH]
