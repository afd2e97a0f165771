"""Ring members in SQLite: each person's latest signed word on each private ring.

One row per (ring, node): the record that wins (`MemberMsg.beats`), joined or left, so every
board that has heard the same records holds the same row whatever order they came in. A person
is a member of a ring while the winning record says joined, has not expired, and names the key
their radio presents now: a node whose key changed is not a member until it joins again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy
from sqlmodel import Session, col, select

from board.store.applied import Applied
from board.store.tables import MemberRow
from board.when import unix_seconds
from board.wire.members import MemberMsg

logger = logging.getLogger(__name__)


def _msg(row: MemberRow) -> MemberMsg:
    return MemberMsg(
        ring=row.ring,
        node=row.node,
        joined=row.joined,
        at=datetime.fromtimestamp(row.at, UTC),
        expires_at=datetime.fromtimestamp(row.expires_at, UTC),
        radio_key=row.public_key,
        board_key=row.board_key,
        signature=row.signature,
    )


class MemberStore:
    """The member records of one board; shares the bulletin store's engine (and file)."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self.engine = engine

    def apply(self, msg: MemberMsg, now: datetime) -> Applied:
        """Keep `msg` if it beats the record held for its person and ring, in one transaction.

        STALE: we hold a later record (its sender should hear ours); DUPLICATE: the same one.
        """
        if msg.expires_at <= now:
            return Applied.STALE
        with Session(self.engine) as session, session.begin():
            row = session.get(MemberRow, (msg.ring, msg.node))
            if row is not None:
                held = _msg(row)
                if held.signature == msg.signature:
                    return Applied.DUPLICATE
                if not msg.beats(held):
                    return Applied.STALE
                session.delete(row)
                session.flush()
            session.add(
                MemberRow(
                    ring=msg.ring,
                    node=msg.node,
                    public_key=msg.radio_key,
                    joined=msg.joined,
                    at=unix_seconds(msg.at),
                    expires_at=unix_seconds(msg.expires_at),
                    board_key=msg.board_key,
                    signature=msg.signature,
                )
            )
        logger.info("%s %s ring %d", msg.node, "joined" if msg.joined else "left", msg.ring)
        return Applied.NEW

    def current(self, ring: int, node: str) -> MemberMsg | None:
        """The winning record for `node` on `ring`, expired or not (None: never heard of)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(MemberRow, (ring, node))
            return None if row is None else _msg(row)

    def held(self, node: str, now: datetime) -> list[MemberMsg]:
        """`node`'s unexpired records on every ring, joined or left."""
        statement = select(MemberRow).where(
            MemberRow.node == node, col(MemberRow.expires_at) > unix_seconds(now)
        )
        with Session(self.engine) as session, session.begin():
            return [_msg(row) for row in session.exec(statement)]

    def records(self, ring: int, now: datetime) -> list[MemberMsg]:
        """A ring's unexpired winning records: what sync compares."""
        statement = select(MemberRow).where(
            MemberRow.ring == ring, col(MemberRow.expires_at) > unix_seconds(now)
        )
        with Session(self.engine) as session, session.begin():
            return [_msg(row) for row in session.exec(statement)]

    def members(self, ring: int, now: datetime) -> list[MemberMsg]:
        """Who belongs to `ring` now (joined, unexpired), by node id."""
        return sorted((m for m in self.records(ring, now) if m.joined), key=lambda m: m.node)
