"""What the web page shows: the public rings' bulletins, by day for the week, as plain data.

Only rings in `MeshboardConfig.on_the_web` are ever read (`web = true` and not private), so a
private ring's bulletin cannot reach a template by mistake; the store hides what a moderator
removed or a deletion took, so the next request no longer shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from board.bulletin import Bulletin
from board.config import MeshboardConfig, RingSpec
from board.errors import NotFound
from board.handheld.tools import describe
from board.store.bulletins import Store
from board.store.shares import tally_period
from board.store.tools import ToolStore, loans_between
from board.tally import Tally, calendar_month

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


def week(store: Store, config: MeshboardConfig, now: datetime, tz: ZoneInfo) -> Week:
    """This week on the web rings: events by local day, the tool library, the other
    bulletins without a time, and the month's tally."""
    today = now.astimezone(tz).date()
    days = {today + timedelta(days=i): list[Shown]() for i in range(WEEK)}
    tools, notices = ToolStore(store), list[Shown]()
    library: list[Tool] = []
    for bulletin in _public(store, config, now):
        shown = Shown.of(bulletin, config, tz)
        if bulletin.type == "tool":
            library.append(Tool(shown, describe(tools.get(bulletin.id), now, tz)))
        elif shown.when is None:
            notices.append(shown)
        elif shown.when.date() in days and shown.when >= now:
            days[shown.when.date()].append(shown)
    for events in days.values():
        events.sort(key=lambda s: (s.when, s.ref))
    notices.sort(key=lambda s: (s.posted, s.ref), reverse=True)
    library.sort(key=lambda t: t.bulletin.text.casefold())
    month = calendar_month(now, tz)
    tallies = [
        tally_period(
            store.engine, month, spec.channel, lambda a, b, r: loans_between(store, a, b, r)
        )
        for spec in config.on_the_web
    ]
    return Week(
        [Day(d, events) for d, events in days.items()],
        library,
        notices,
        tallies,
        config.on_the_web,
    )


def bulletin(
    store: Store, config: MeshboardConfig, ref: str, now: datetime, tz: ZoneInfo
) -> Shown | None:
    """The bulletin `ref` names on a web ring, or None: on a private ring it does not exist."""
    for spec in config.on_the_web:
        try:
            return Shown.of(store.get(ref, spec.channel, now=now), config, tz)
        except NotFound:
            continue
    return None


def everything(store: Store, config: MeshboardConfig, now: datetime, tz: ZoneInfo) -> list[Shown]:
    """Every active bulletin of the web rings, newest first (for `/bulletins.json`)."""
    return [Shown.of(b, config, tz) for b in _public(store, config, now)]


def _public(store: Store, config: MeshboardConfig, now: datetime) -> list[Bulletin]:
    found: list[Bulletin] = []
    for spec in config.on_the_web:
        found += store.active(now, ring=spec.channel)
    return found
