"""What the web page shows: the public rings' bulletins, by day for the week, as plain data.

Only rings in `MeshboardConfig.on_the_web` are ever read (`web = true` and not private), so a
private ring's bulletin cannot reach a template by mistake; the reader (`node.web.reading`, one
per request) hides what a moderator removed or a deletion took, as the store does, so the next
request no longer shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from board.bulletin import Bulletin
from board.config import MeshboardConfig, RingSpec
from board.errors import NotFound
from board.lending import describe
from board.tally import Tally, calendar_month
from node.web.reading import BoardReader

WEEK = 7


@dataclass(frozen=True)
class Caps:
    """How many of each list the week page shows; the rest are a link away (`/day/…`,
    `/tools`, `/notices`), so a busy week's page stays under 30 kB for a phone on a slow
    link (bench/web_memory.py measures it over 2,000 bulletins)."""

    events: int = 8  # per day
    tools: int = 15
    notices: int = 10
    per_page: int = 50  # on the longer pages


CAPS = Caps()


@dataclass(frozen=True)
class Shown:
    """One bulletin as a page shows it, times already in the board's zone."""

    ref: str
    type: str
    text: str
    ring: str
    when: datetime | None  # local event time
    posted: datetime  # local
    expires: datetime  # local

    @classmethod
    def of(cls, bulletin: Bulletin, config: MeshboardConfig, tz: ZoneInfo) -> Shown:
        event = bulletin.event_time
        return cls(
            ref=bulletin.ref,
            type=bulletin.type,
            text=bulletin.text,
            ring=config.name_of(bulletin.ring),
            when=None if event is None else event.astimezone(tz),
            posted=bulletin.created_at.astimezone(tz),
            expires=bulletin.expires_at.astimezone(tz),
        )


@dataclass(frozen=True)
class Day:
    day: date
    events: list[Shown]


@dataclass(frozen=True)
class Tool:
    bulletin: Shown
    state: str  # "free", "lent to Ben till fri": the words the handheld `list tool` uses


@dataclass(frozen=True)
class Week:
    days: list[Day]  # today and the six days after, each with its events in time order
    tools: list[Tool]  # the tool library: every tool on offer, free or lent
    notices: list[Shown]  # the rest without an event time, newest first
    tallies: list[Tally]  # this month, per web ring
    rings: tuple[RingSpec, ...]


def week(board: BoardReader, config: MeshboardConfig, now: datetime, tz: ZoneInfo) -> Week:
    """This week on the web rings: events by local day, the tool library, the other
    bulletins without a time, and the month's tally."""
    today = now.astimezone(tz).date()
    days = {today + timedelta(days=i): list[Shown]() for i in range(WEEK)}
    notices, library = list[Shown](), list[Tool]()
    for bulletin in _public(board, config, now):
        shown = Shown.of(bulletin, config, tz)
        if bulletin.type == "tool":
            library.append(Tool(shown, describe(board.tool_state(bulletin.id), now, tz)))
        elif shown.when is None:
            notices.append(shown)
        elif shown.when.date() in days and shown.when >= now:
            days[shown.when.date()].append(shown)
    for events in days.values():
        events.sort(key=lambda s: (s.when, s.ref))
    notices.sort(key=lambda s: (s.posted, s.ref), reverse=True)
    library.sort(key=lambda t: t.bulletin.text.casefold())
    month = calendar_month(now, tz)
    tallies = [board.tally(month, spec.channel) for spec in config.on_the_web]
    return Week(
        [Day(d, events) for d, events in days.items()],
        library,
        notices,
        tallies,
        config.on_the_web,
    )


def bulletin(
    board: BoardReader, config: MeshboardConfig, ref: str, now: datetime, tz: ZoneInfo
) -> Shown | None:
    """The bulletin `ref` names on a web ring, or None: on a private ring it does not exist."""
    for spec in config.on_the_web:
        try:
            return Shown.of(board.get(ref, spec.channel, now=now), config, tz)
        except NotFound:
            continue
    return None


def everything(
    board: BoardReader, config: MeshboardConfig, now: datetime, tz: ZoneInfo
) -> list[Shown]:
    """Every active bulletin of the web rings, newest first (for `/bulletins.json`)."""
    return [Shown.of(b, config, tz) for b in _public(board, config, now)]


def _public(board: BoardReader, config: MeshboardConfig, now: datetime) -> list[Bulletin]:
    found: list[Bulletin] = []
    for spec in config.on_the_web:
        found += board.active(now, spec.channel)
    return found
