"""Event times as people type them on a handheld: `tue 18:00`, `6pm`, `tomorrow`.

Times are read and shown in the board's configured time zone and stored as UTC. `now` is always
passed in, because a board's clock is the daemon's business (docs/design.md: clocks lie).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from board.errors import InvalidWhen

WEEKDAYS: dict[str, int] = {
    **dict.fromkeys(("mon", "monday"), 0),
    **dict.fromkeys(("tue", "tues", "tuesday"), 1),
    **dict.fromkeys(("wed", "weds", "wednesday"), 2),
    **dict.fromkeys(("thu", "thur", "thurs", "thursday"), 3),
    **dict.fromkeys(("fri", "friday"), 4),
    **dict.fromkeys(("sat", "saturday"), 5),
    **dict.fromkeys(("sun", "sunday"), 6),
}
RELATIVE_DAYS: dict[str, int] = {
    **dict.fromkeys(("today", "tonight"), 0),
    **dict.fromkeys(("tomorrow", "tmrw", "tmr"), 1),
}
SHORT_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MIDNIGHT = time(0)
#: The furthest ahead an event may be typed: a year, so a bulletin's life stays bounded
#: (`board.bulletin.MAX_LIFETIME`) and a mistyped year is caught rather than kept for decades.
MAX_EVENT_AHEAD = timedelta(days=366)

_24H = re.compile(r"(\d{1,2}):(\d{2})")
_12H = re.compile(r"(\d{1,2})(?::(\d{2}))?([ap]m)")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TRAILING = ",:;"
_HINT = "try tue 18:00, 6pm, tomorrow"


def _clean(token: str) -> str:
    """Lowercase, and forgive one trailing comma or colon (`tue 18:00: soup`)."""
    token = token.lower()
    return token[:-1] if len(token) > 1 and token[-1] in _TRAILING else token


def _time(token: str) -> time | None:
    """A time of day, None if the token is not shaped like one, InvalidWhen if impossible."""
    if token == "noon":
        return time(12)
    if match := _24H.fullmatch(token):
        hour, minute = int(match[1]), int(match[2])
    elif match := _12H.fullmatch(token):
        hour, minute = int(match[1]), int(match[2] or 0)
        if not 1 <= hour <= 12:
            raise InvalidWhen(f"no such time '{token}'; {_HINT}")
        hour = hour % 12 + (12 if match[3] == "pm" else 0)
    else:
        return None
    if hour > 23 or minute > 59:
        raise InvalidWhen(f"no such time '{token}'; {_HINT}")
    return time(hour, minute)


def _day(token: str, today: date) -> date | int | None:
    """A fixed date, a weekday number (resolved once the time is known), or None."""
    if token in RELATIVE_DAYS:
        return today + timedelta(days=RELATIVE_DAYS[token])
    if token in WEEKDAYS:
        return WEEKDAYS[token]
    if match := _ISO_DATE.fullmatch(token):
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise InvalidWhen(f"no such date '{token}'") from None
        if day < today:
            raise InvalidWhen(f"'{token}' has passed")
        if day > today + MAX_EVENT_AHEAD:
            raise InvalidWhen(f"'{token}' is more than a year ahead")
        return day
    return None


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """Local wall time on a day, as UTC (a time skipped by DST lands just after the gap)."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def parse_when(tokens: Sequence[str], now: datetime, tz: ZoneInfo) -> tuple[datetime | None, int]:
    """Read an event time from the leading tokens; return it (UTC) and how many tokens it used.

    A weekday means the next such day whose time is not already past (today counts); a time alone
    means its next occurrence; a day alone means local midnight of that day.
    """
    if not tokens:
        return None, 0
    today = now.astimezone(tz).date()
    first = _clean(tokens[0])
    day = _day(first, today)
    if day is None:
        clock = _time(first)
        if clock is None:
            return None, 0
        event = _at(today, clock, tz)
        if event < now:
            event = _at(today + timedelta(days=1), clock, tz)
        return event, 1
    clock = _time(_clean(tokens[1])) if len(tokens) > 1 else None
    used = 1 if clock is None else 2
    if isinstance(day, int):
        day = today + timedelta(days=(day - today.weekday()) % 7)
        if clock is not None and _at(day, clock, tz) < now:
            day += timedelta(days=7)
    event = _at(day, clock or MIDNIGHT, tz)
    if clock is not None and event < now:  # `today 05:06` at 08:00: a day named, a time gone
        raise InvalidWhen(f"'{tokens[0]} {tokens[1]}' has passed")
    return event, used


def parse_when_text(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """The whole of `text` as an event time (the CLI's `--when`), else InvalidWhen."""
    tokens = text.split()
    event, used = parse_when(tokens, now, tz)
    if event is None or used != len(tokens):
        raise InvalidWhen(f"cannot read '{text}' as a time; {_HINT}")
    return event


def is_day_only(event_time: datetime, tz: ZoneInfo) -> bool:
    """True when an event was given as a day without a time (it sits at local midnight)."""
    return event_time.astimezone(tz).time() == MIDNIGHT


def format_when(event_time: datetime, now: datetime, tz: ZoneInfo) -> str:
    """Short form for lists: `today 18:00`, `tmrw 18:00`, `tue 18:00`, `12 Dec 18:00`, `tue`."""
    local = event_time.astimezone(tz)
    days = (local.date() - now.astimezone(tz).date()).days
    if days == 0:
        day = "today"
    elif days == 1:
        day = "tmrw"
    elif 2 <= days <= 6:
        day = SHORT_WEEKDAYS[local.weekday()]
    else:
        day = f"{local.day} {MONTHS[local.month - 1]}"
    if local.time() == MIDNIGHT:
        return day
    return f"{day} {local:%H:%M}"


def unix_seconds(moment: datetime) -> int:
    """Whole unix seconds, as every time column of the store holds them.

    A naive datetime is refused: read as local time by `timestamp()`, it would shift by the
    machine's offset, and the board's clock is UTC everywhere inside the core.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return int(moment.timestamp())
