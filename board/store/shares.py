"""What the monthly tally is counted from, and the counting (`board.tally` has the periods).

Bulletins are purged when they expire, so counting the bulletin table would forget last month by
the middle of this one. `Store.add` therefore appends one row per bulletin to the `share` table
the first time it is stored (posted here, synced, or imported from a bundle), and nothing ever
deletes from it. The row keeps only what the tally needs: ring, type, author and when the
bulletin was created (so a bulletin that arrives late still counts in the month it was posted,
and any time zone or month kind can be chosen when reading). A bulletin its author deletes a
minute later stays counted: a mistake costs one in the tally, a forgetting store costs all.

Tool loans are not bulletins: they come from a `LoanCounter` (the tool library's loan history),
and when none is wired in the tally says "not tracked" instead of inventing a zero.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy
from sqlalchemy import func
from sqlalchemy.dialects.sqlite import Insert, insert
from sqlmodel import Session, SQLModel, col, select

from board.bulletin import Bulletin
from board.store.tables import ShareRow
from board.tally import Period, PeriodOf, Tally, calendar_month, counted, lunar_month, window

#: How many tool loans were made in [start, end) on a ring; None when loans are not tracked.
LoanCounter = Callable[[datetime, datetime, int], int | None]


def share_statement(bulletin: Bulletin) -> tuple[Insert, dict[str, Any]]:
    """The insert `Store.add` runs in its own transaction when a bulletin is first stored, and
    its parameters (a statement compiled once, for bundles of thousands of bulletins).
    """
    row = {
        "id": bulletin.id,
        "ring": bulletin.ring,
        "type": bulletin.type,
        "author": bulletin.author,
        "created_at": int(bulletin.created_at.timestamp()),
    }
    return _ADD_SHARE, row


_ADD_SHARE = insert(SQLModel.metadata.tables["share"]).on_conflict_do_nothing()


def no_loans(_start: datetime, _end: datetime, _ring: int) -> int | None:
    """The loan counter of a board without a tool library: not tracked."""
    return None


def table_loans(engine: sqlalchemy.Engine) -> LoanCounter:
    """Count loans from the tool library's `tool_loan` table (ring, lent_at) when it exists."""

    def count(start: datetime, end: datetime, ring: int) -> int | None:
        if not sqlalchemy.inspect(engine).has_table("tool_loan"):
            return None
        query = sqlalchemy.text(
            "SELECT count(*) FROM tool_loan WHERE ring = :ring AND lent_at >= :start "
            "AND lent_at < :end"
        )
        with engine.connect() as connection:
            found = connection.execute(
                query,
                {"ring": ring, "start": int(start.timestamp()), "end": int(end.timestamp())},
            ).scalar_one()
        return int(found)

    return count


def tally_period(
    engine: sqlalchemy.Engine, period: Period, ring: int, loans: LoanCounter = no_loans
) -> Tally:
    """Count one ring's shares in one period (one query for types, one for posters)."""
    start, end = window(period)
    shares = (
        ShareRow.ring == ring,
        col(ShareRow.created_at) >= start,
        col(ShareRow.created_at) < end,
    )
    with Session(engine) as session, session.begin():
        by_type = dict(
            session.exec(
                select(ShareRow.type, func.count()).where(*shares).group_by(ShareRow.type)
            ).all()
        )
        posters = session.exec(select(func.count(func.distinct(ShareRow.author))).where(*shares))
        poster_count = posters.one()
    return counted(period, ring, by_type, poster_count, loans(period.start, period.end, ring))


def monthly(
    engine: sqlalchemy.Engine,
    ring: int,
    now: datetime,
    tz: ZoneInfo,
    *,
    moon: bool = False,
    loans: LoanCounter = no_loans,
) -> list[Tally]:
    """Every period from the ring's first share to the current one, newest first."""
    period_of: PeriodOf = lunar_month if moon else calendar_month
    with Session(engine) as session, session.begin():
        first = session.exec(
            select(func.min(ShareRow.created_at)).where(ShareRow.ring == ring)
        ).one()
    current = period_of(now, tz)
    periods = [current]
    if first is not None:
        oldest = datetime.fromtimestamp(first, UTC)
        while periods[-1].start > oldest:
            periods.append(period_of(periods[-1].start - timedelta(seconds=1), tz))
    return [tally_period(engine, period, ring, loans) for period in periods]
