"""Tool states and loan history in SQLite, beside the bulletins they describe.

A tool's state lives in its own row, tied to the bulletin by a foreign key that cascades: when
the bulletin expires, is purged or is deleted, its state goes with it, with no code to forget.
Loans are history (the monthly tally counts them), so they outlive the bulletin.

Last-writer-wins: a state replaces the stored one only if its version (`ToolStateMsg.version`:
the owner's timestamp, then the encoded bytes) is larger, so every board that has heard the same
states holds the same one, whatever order they arrived in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, col, select

from board.lending import stored_state
from board.store.applied import Applied
from board.store.bulletins import Store
from board.store.tables import BulletinRow, LoanRow, ToolStateRow
from board.when import unix_seconds
from board.wire.keys import bulletin_key, bytes_to_id
from board.wire.tools import ToolStateMsg

logger = logging.getLogger(__name__)

TOOL_TYPE = "tool"


@dataclass(frozen=True)
class StateApplied:
    """What `ToolStore.apply` did with a tool state, and the state it superseded."""

    applied: Applied
    replaced: ToolStateMsg | None = None  # the state this one superseded


def _state(row: ToolStateRow) -> ToolStateMsg | None:
    return stored_state(row.bulletin_id, row.state)  # a row from an older rule: no state


class ToolStore:
    """Tool states and loans of one board, in the bulletin store's database."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def get(self, bulletin_id: str) -> ToolStateMsg | None:
        """The tool's current state; None means nobody ever lent it (it is free)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ToolStateRow, bulletin_id)
            return None if row is None else _state(row)

    def apply(self, msg: ToolStateMsg) -> StateApplied:
        """Store `msg` if it is the owner's latest word on a tool held here, in one transaction.

        A lend is also recorded as a loan, even if a later word already superseded it: the loan
        happened. Recording is idempotent (one row per tool and timestamp).
        """
        bulletin_id = bytes_to_id(msg.target)
        with Session(self.engine) as session, session.begin():
            bulletin = session.get(BulletinRow, bulletin_id)
            if bulletin is None or bulletin.type != TOOL_TYPE or bulletin.ring != msg.ring:
                return StateApplied(Applied.ORPHAN)
            if msg.lent:
                loan = {
                    "bulletin_id": bulletin_id,
                    "ring": msg.ring,
                    "owner": bulletin.author,
                    "borrower": msg.borrower,
                    "lent_at": msg.stamp,
                }
                session.exec(insert(LoanRow).values(loan).on_conflict_do_nothing())
            row = session.get(ToolStateRow, bulletin_id)
            current = None if row is None else _state(row)
            if current is not None and current.version() >= msg.version():
                return StateApplied(Applied.STALE)
            values = {
                "bulletin_id": bulletin_id,
                "ring": msg.ring,
                "stamp": msg.stamp,
                "state": msg.body(),
            }
            statement = insert(ToolStateRow).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=["bulletin_id"],
                set_={"stamp": msg.stamp, "state": msg.body()},
            )
            session.exec(statement)
        logger.info("tool %s is now %s", bulletin_id, "lent" if msg.lent else "free")
        return StateApplied(Applied.NEW, current)

    def active(self, ring: int, now: datetime) -> list[ToolStateMsg]:
        """States of the ring's unexpired tools: what sync summarises beside the bulletins."""
        statement = (
            select(ToolStateRow)
            .join(BulletinRow, col(BulletinRow.id) == col(ToolStateRow.bulletin_id))
            .where(ToolStateRow.ring == ring, col(BulletinRow.expires_at) > unix_seconds(now))
        )
        with Session(self.engine) as session, session.begin():
            states = [_state(row) for row in session.exec(statement)]
        return [s for s in states if s is not None]

    def loans_between(self, start: datetime, end: datetime, ring: int | None = None) -> int:
        """Loans whose `lend` was said in [start, end), on one ring or all."""
        statement = (
            select(func.count())
            .select_from(LoanRow)
            .where(
                col(LoanRow.lent_at) >= unix_seconds(start),
                col(LoanRow.lent_at) < unix_seconds(end),
            )
        )
        if ring is not None:
            statement = statement.where(LoanRow.ring == ring)
        with Session(self.engine) as session, session.begin():
            return session.exec(statement).one()


def loans_between(store: Store, start: datetime, end: datetime, ring: int | None = None) -> int:
    """How many tools were lent in [start, end) on `ring` (every ring if None): for the tally."""
    return ToolStore(store).loans_between(start, end, ring)


def state_target(bulletin_id: str) -> bytes:
    """The 16 bytes a tool state names its tool by: the bulletin's sync key."""
    return bulletin_key(bulletin_id)
