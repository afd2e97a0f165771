"""The monthly tally: what a neighbourhood shared, counted per calendar or lunar month.

This module holds the periods (calendar months in the board's time zone, or mean lunar months),
the shape of one period's count and how its counts add up; `board.store.shares` keeps the record
it is counted from and runs the queries (the web page runs its own, read-only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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


def window(period: Period) -> tuple[int, int]:
    """The period as the store's unix seconds, [start, end): what a tally's queries count in."""
    return int(period.start.timestamp()), int(period.end.timestamp())


def counted(
    period: Period, ring: int, by_type: Mapping[str, int], posters: int, loans: int | None
) -> Tally:
    """One period's tally from its shares counted per bulletin type (a type the tally has no
    column for counts only among the posters), so every reader of the record adds up alike."""
    counts = {column: by_type.get(type_name, 0) for column, type_name in SHARED_TYPES.items()}
    return Tally(period=period, ring=ring, loans=loans, posters=posters, **counts)


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
