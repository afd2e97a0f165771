"""The monthly tally: what a neighbourhood shared, counted per calendar or lunar month.

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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy
from sqlalchemy import func
from sqlalchemy.dialects.sqlite import Insert, insert
from sqlmodel import Session, SQLModel, col, select

from board.bulletin import Bulletin
from board.store.tables import ShareRow

logger = logging.getLogger(__name__)

#: The tally's columns and the bulletin type each counts.
SHARED_TYPES: dict[str, str] = {
    "meals": "meal",
    "skills": "skill",
    "tools": "tool",
    "childcare": "childcare",
}
#: A new moon everyone agrees on (2000-01-06 18:14 UTC) and the mean synodic month. The true
#: new moon wanders up to ~14 hours either side of the mean, so a lunar period may start that
#: far from the almanac's date; a tally needs a fixed boundary more than an exact one.
REFERENCE_NEW_MOON = datetime(2000, 1, 6, 18, 14, tzinfo=UTC)
SYNODIC_MONTH = timedelta(days=29.530588853)
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

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


@dataclass(frozen=True)
class Period:
    """A month to count: [start, end), and how people call it."""

    start: datetime
    end: datetime
    label: str  # "2025-11" for a calendar month, "moon 2025-11-20" for a lunar one
    short: str  # "Nov", for a handheld


def calendar_month(moment: datetime, tz: ZoneInfo) -> Period:
    """The calendar month holding `moment`, in the board's time zone."""
    local = moment.astimezone(tz)
    start = datetime(local.year, local.month, 1, tzinfo=tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    end = datetime(year, month, 1, tzinfo=tz)
    return Period(
        start.astimezone(UTC), end.astimezone(UTC), f"{local:%Y-%m}", MONTH_NAMES[local.month - 1]
    )


def lunar_month(moment: datetime, tz: ZoneInfo) -> Period:
    """The synodic month (mean new moon to mean new moon) holding `moment`.

    Labelled by the local date of its starting new moon.
    """
    turns = (moment - REFERENCE_NEW_MOON) // SYNODIC_MONTH
    if moment >= _new_moon(turns + 1):  # the boundaries are whole seconds: mind the rounding
        turns += 1
    start, end = _new_moon(turns), _new_moon(turns + 1)
    local = start.astimezone(tz)
    return Period(start, end, f"moon {local:%Y-%m-%d}", f"moon {local.day} {local:%b}")


def _new_moon(turns: int) -> datetime:
    """The `turns`-th mean new moon after the reference, to the second."""
    return (REFERENCE_NEW_MOON + turns * SYNODIC_MONTH).replace(microsecond=0)


PeriodOf = Callable[[datetime, ZoneInfo], Period]


@dataclass(frozen=True)
class Tally:
    """What one ring shared in one period; `loans` is None when loans are not tracked."""

    period: Period
    ring: int
    meals: int
    skills: int
    tools: int
    loans: int | None
    childcare: int
    posters: int  # distinct authors of any bulletin in the period


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
    window = (
        ShareRow.ring == ring,
        col(ShareRow.created_at) >= int(period.start.timestamp()),
        col(ShareRow.created_at) < int(period.end.timestamp()),
    )
    with Session(engine) as session, session.begin():
        by_type = dict(
            session.exec(
                select(ShareRow.type, func.count()).where(*window).group_by(ShareRow.type)
            ).all()
        )
        posters = session.exec(select(func.count(func.distinct(ShareRow.author))).where(*window))
        poster_count = posters.one()
    counts = {column: by_type.get(type_name, 0) for column, type_name in SHARED_TYPES.items()}
    return Tally(
        period=period,
        ring=ring,
        loans=loans(period.start, period.end, ring),
        posters=poster_count,
        **counts,
    )


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


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def handheld_line(tally: Tally) -> str:
    """`Nov: 12 meals, 3 skills, 5 tools offered, 2 lent, 4 childcare, 9 neighbours posting`."""
    lent = "-" if tally.loans is None else str(tally.loans)
    return (
        f"{tally.period.short}: {plural(tally.meals, 'meal')}, {plural(tally.skills, 'skill')}, "
        f"{plural(tally.tools, 'tool')} offered, {lent} lent, {tally.childcare} childcare, "
        f"{plural(tally.posters, 'neighbour')} posting"
    )
