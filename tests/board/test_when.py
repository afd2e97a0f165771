"""Event times as typed on a handheld, read in the board's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from board.errors import InvalidWhen
from board.when import format_when, is_day_only, parse_when, parse_when_text

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN).astimezone(UTC)  # Monday 10:00 in Berlin


def berlin(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("typed", "event", "used"),
    [
        ("tue 18:00 Soup", berlin(11, 24, 18), 2),
        ("6pm Soup", berlin(11, 23, 18), 1),
        ("6:30pm", berlin(11, 23, 18, 30), 1),
        ("9:00 Breakfast", berlin(11, 24, 9), 1),  # already past today: tomorrow
        ("10:00", berlin(11, 23, 10), 1),  # now is not past yet
        ("12pm", berlin(11, 23, 12), 1),
        ("12am", berlin(11, 24, 0), 1),
        ("noon", berlin(11, 23, 12), 1),
        ("mon Soup", berlin(11, 23), 1),  # today counts without a time
        ("mon 11:00", berlin(11, 23, 11), 2),
        ("mon 9:00", berlin(11, 30, 9), 2),  # today's 9:00 is past: next week
        ("MONDAY 9am", berlin(11, 30, 9), 2),
        ("sun", berlin(11, 29), 1),
        ("weds", berlin(11, 25), 1),
        ("thurs 7am", berlin(11, 26, 7), 2),
        ("Friday 19:30 Choir", berlin(11, 27, 19, 30), 2),
        ("today", berlin(11, 23), 1),
        ("tomorrow", berlin(11, 24), 1),
        ("Tomorrow 6:30pm", berlin(11, 24, 18, 30), 2),
        ("tmrw 18:00", berlin(11, 24, 18), 2),
        ("tue 18:00: Soup", berlin(11, 24, 18), 2),  # the echo's own colon is forgiven
        ("2026-12-12 18:00", berlin(12, 12, 18), 2),
    ],
)
def test_parse_when(typed: str, event: datetime, used: int) -> None:
    parsed, consumed = parse_when(typed.split(), NOW, BERLIN)
    assert parsed == event
    assert parsed is not None and parsed.tzinfo == UTC
    assert consumed == used


@pytest.mark.parametrize("typed", ["Soup tue", "6 eggs", "18.00 Soup", "", "#a3f0", "tuesdays"])
def test_text_that_is_not_a_time_consumes_nothing(typed: str) -> None:
    assert parse_when(typed.split(), NOW, BERLIN) == (None, 0)


def test_a_day_followed_by_text_uses_only_the_day() -> None:
    assert parse_when(["tue", "soup"], NOW, BERLIN) == (berlin(11, 24), 1)


@pytest.mark.parametrize("typed", ["today 05:06", "today 9am", "2026-11-23 09:59", "tonight 8:00"])
def test_a_named_day_at_a_time_already_gone_is_refused(typed: str) -> None:
    """Monday 10:00: a time alone or a weekday rolls on to the next one; a named day cannot."""
    with pytest.raises(InvalidWhen, match="has passed"):
        parse_when(typed.split(), NOW, BERLIN)


@pytest.mark.parametrize("typed", ["25:00", "13pm", "0am", "18:60", "tue 24:00", "2026-02-30"])
def test_impossible_times_are_refused(typed: str) -> None:
    with pytest.raises(InvalidWhen):
        parse_when(typed.split(), NOW, BERLIN)


@pytest.mark.parametrize(
    ("now_local", "typed", "event_utc"),
    [
        # Spring forward on Sunday 2026-03-29: noon is CEST (UTC+2), not CET.
        (datetime(2026, 3, 28, 12, 0), "sun 12:00", datetime(2026, 3, 29, 10, 0)),
        (datetime(2026, 3, 28, 23, 0), "9:00", datetime(2026, 3, 29, 7, 0)),
        # 02:30 does not exist that night; it lands just after the gap, 03:30 CEST.
        (datetime(2026, 3, 28, 12, 0), "tomorrow 2:30", datetime(2026, 3, 29, 1, 30)),
        # Fall back on Sunday 2026-10-25: evening is CET (UTC+1) again.
        (datetime(2026, 10, 24, 12, 0), "sun 18:00", datetime(2026, 10, 25, 17, 0)),
        (datetime(2026, 10, 24, 12, 0), "sun", datetime(2026, 10, 24, 22, 0)),
    ],
)
def test_times_follow_daylight_saving(now_local: datetime, typed: str, event_utc: datetime) -> None:
    now = now_local.replace(tzinfo=BERLIN)
    parsed, _ = parse_when(typed.split(), now, BERLIN)
    assert parsed == event_utc.replace(tzinfo=UTC)


def test_parse_when_text_takes_the_whole_string() -> None:
    assert parse_when_text("tue 18:00", NOW, BERLIN) == berlin(11, 24, 18)


@pytest.mark.parametrize("typed", ["", "soup", "tue 18:00 soup", "18:00 tue", "25:00"])
def test_parse_when_text_refuses_anything_else(typed: str) -> None:
    with pytest.raises(InvalidWhen):
        parse_when_text(typed, NOW, BERLIN)


@pytest.mark.parametrize(
    ("event", "shown"),
    [
        (berlin(11, 23, 18), "today 18:00"),
        (berlin(11, 24, 18), "tmrw 18:00"),
        (berlin(11, 25, 18, 30), "wed 18:30"),
        (berlin(11, 29, 18), "sun 18:00"),  # six days away
        (berlin(11, 30, 18), "30 Nov 18:00"),  # seven days away
        (berlin(12, 12, 18), "12 Dec 18:00"),
        (berlin(11, 22, 18), "22 Nov 18:00"),  # yesterday
        (berlin(11, 24), "tmrw"),  # a day without a time
        (berlin(11, 26), "thu"),
        (berlin(12, 24), "24 Dec"),
    ],
)
def test_format_when(event: datetime, shown: str) -> None:
    assert format_when(event.astimezone(UTC), NOW, BERLIN) == shown


@pytest.mark.parametrize("typed", ["tue 18:00", "6pm", "tomorrow", "thu", "sat 9am"])
def test_what_is_shown_reads_back_the_same(typed: str) -> None:
    event = parse_when_text(typed, NOW, BERLIN)
    assert parse_when_text(format_when(event, NOW, BERLIN), NOW, BERLIN) == event


@pytest.mark.parametrize(("typed", "day_only"), [("tue", True), ("tue 18:00", False)])
def test_is_day_only(typed: str, day_only: bool) -> None:
    assert is_day_only(parse_when_text(typed, NOW, BERLIN), BERLIN) is day_only
