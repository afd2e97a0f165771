"""The monthly tally: what was shared, per calendar or lunar month, per ring."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy

from board.bulletin import Bulletin
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.paging import MAX_PACKET_BYTES, utf8_len
from board.messages import Inbound
from board.store.bulletins import Store
from board.store.shares import monthly, table_loans, tally_period
from board.tally import SYNODIC_MONTH, calendar_month, handheld_line, lunar_month
from tests.board.schema_fixture import NOW
from tests.board.store.test_schema import load

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
# 23:30 UTC on 31 October is already 00:30 on 1 November in Berlin (UTC+1 after the DST end).
HALLOWEEN_LATE = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)


def test_a_bulletin_counts_in_the_month_of_the_boards_time_zone(
    store: Store, make: Callable[..., Bulletin]
) -> None:
    store.add(make(now=HALLOWEEN_LATE), HALLOWEEN_LATE)
    october_utc = tally_period(store.engine, calendar_month(HALLOWEEN_LATE, UTC_ZONE), 0)
    november_berlin = tally_period(store.engine, calendar_month(HALLOWEEN_LATE, BERLIN), 0)
    assert calendar_month(HALLOWEEN_LATE, UTC_ZONE).label == "2026-10"
    assert calendar_month(HALLOWEEN_LATE, BERLIN).label == "2026-11"
    assert (october_utc.meals, november_berlin.meals) == (1, 1)
    early_berlin = calendar_month(HALLOWEEN_LATE - timedelta(hours=1), BERLIN)
    assert tally_period(store.engine, early_berlin, 0).meals == 0


def test_calendar_months_cover_a_year_end_without_gaps() -> None:
    december = calendar_month(datetime(2026, 12, 31, 22, 59, tzinfo=UTC), BERLIN)
    january = calendar_month(december.end, BERLIN)
    assert (december.label, january.label) == ("2026-12", "2027-01")
    assert december.end == january.start == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


def test_a_lunar_month_starts_near_a_known_new_moon() -> None:
    # An almanac's new moon: 2024-01-11 11:57 UTC. The mean month may be up to ~14 h off.
    period = lunar_month(datetime(2024, 1, 20, tzinfo=UTC), UTC_ZONE)
    assert abs(period.start - datetime(2024, 1, 11, 11, 57, tzinfo=UTC)) < timedelta(hours=14)
    assert period.label == "moon 2024-01-11"
    assert abs((period.end - period.start) - SYNODIC_MONTH) < timedelta(seconds=1)
    assert lunar_month(period.end, UTC_ZONE).start == period.end


def test_counts_by_type_and_distinct_posters_survive_the_purge(
    store: Store, make: Callable[..., Bulletin]
) -> None:
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    for bulletin in [
        make(now=now, text="Soup", author="!00000001"),
        make(now=now, text="Stew", author="!00000001"),
        make(now=now, type="skill", text="Bike repair", author="!00000002"),
        make(now=now, type="tool", text="Ladder", author="!00000003"),
        make(now=now, type="childcare", text="Swap thu", author="!00000002"),
        make(now=now, type="notice", text="Bins moved", author="!00000004"),
    ]:
        assert store.add(bulletin, now)
    store.add(make(now=now, text="Soup", author="!00000001"), now)  # the same bulletin again
    store.purge_expired(now + timedelta(days=60))
    assert store.count() == 0
    (counted,) = monthly(store.engine, 0, now + timedelta(days=5), UTC_ZONE)
    assert (counted.meals, counted.skills, counted.tools, counted.childcare) == (2, 1, 1, 1)
    assert counted.posters == 4
    assert counted.loans is None


def test_another_rings_shares_never_count(store: Store, make: Callable[..., Bulletin]) -> None:
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    store.add(make(now=now, ring=1, text="Inner circle supper"), now)
    store.add(make(now=now, ring=1, type="tool", text="Drill"), now)
    store.add(make(now=now, ring=0, text="Public soup"), now)
    month = calendar_month(now, UTC_ZONE)
    public, inner = (tally_period(store.engine, month, ring) for ring in (0, 1))
    assert (public.meals, public.tools, public.posters) == (1, 0, 1)
    assert (inner.meals, inner.tools) == (1, 1)


def test_monthly_lists_every_month_back_to_the_first_share(
    store: Store, make: Callable[..., Bulletin]
) -> None:
    september = datetime(2026, 9, 3, tzinfo=UTC)
    store.add(make(now=september), september)
    tallies = monthly(store.engine, 0, datetime(2026, 11, 2, tzinfo=UTC), UTC_ZONE)
    assert [(t.period.label, t.meals) for t in tallies] == [
        ("2026-11", 0),
        ("2026-10", 0),
        ("2026-09", 1),
    ]


def test_loans_come_from_the_tool_librarys_table_when_there_is_one(tmp_path: Path) -> None:
    month = calendar_month(datetime(2026, 11, 10, tzinfo=UTC), UTC_ZONE)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'board.db'}")
    assert table_loans(engine)(month.start, month.end, 0) is None  # no tool library here
    store = Store(engine)  # the schema has one
    with store.engine.begin() as connection:
        for n, (ring, at) in enumerate([(0, month.start), (0, month.end), (1, month.start)]):
            connection.exec_driver_sql(
                "INSERT INTO tool_loan (bulletin_id, ring, owner, borrower, lent_at) "
                "VALUES (?, ?, '!a1b2c3d4', 'Ben', ?)",
                (f"tool{n}", ring, int(at.timestamp())),
            )
    assert table_loans(store.engine)(month.start, month.end, 0) == 1
    store.close()


@pytest.mark.parametrize(
    ("loans", "expected"),
    [
        (None, "Nov: 0 meals, 0 skills, 1 tool offered, - lent, 0 childcare, 1 neighbour posting"),
        (2, "Nov: 0 meals, 0 skills, 1 tool offered, 2 lent, 0 childcare, 1 neighbour posting"),
    ],
)
def test_the_handheld_line(
    store: Store, make: Callable[..., Bulletin], loans: int | None, expected: str
) -> None:
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    store.add(make(now=now, type="tool", text="Ladder"), now)
    counted = tally_period(store.engine, calendar_month(now, UTC_ZONE), 0, lambda *_: loans)
    assert handheld_line(counted) == expected


def test_a_handheld_asks_for_the_tally_and_gets_one_packet_for_its_ring(
    store: Store, make: Callable[..., Bulletin]
) -> None:
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    for index in range(3):
        store.add(make(now=now, text=f"Soup {index}", author=f"!0000000{index}"), now)
    store.add(make(now=now, ring=1, type="skill", text="Secret skill"), now)
    handler = CommandHandler(store, BoardConfig(tz=BERLIN))
    outcome = handler.handle(Inbound("!a1b2c3d4", 0, "tally", direct=True, now=now))
    (reply,) = outcome.replies
    assert reply.ring == 0
    assert reply.text == (
        "Nov: 3 meals, 0 skills, 0 tools offered, 0 lent, 0 childcare, 3 neighbours posting"
    )
    assert utf8_len(reply.text) <= MAX_PACKET_BYTES


def test_the_longest_handheld_tally_fits_one_packet() -> None:
    month = calendar_month(datetime(2026, 9, 1, tzinfo=UTC), UTC_ZONE)
    from board.tally import Tally

    huge = Tally(month, 0, 10**9, 10**9, 10**9, 10**9, 10**9, 10**9)
    assert utf8_len(handheld_line(huge)) <= MAX_PACKET_BYTES


def test_a_database_from_before_the_tally_counts_what_it_holds(tmp_path: Path) -> None:
    path = load(tmp_path / "old.db")  # schema v1, from a board that had no tally yet:
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE share")
    db.close()
    store = Store.open(path)
    try:
        counted = tally_period(store.engine, calendar_month(NOW, UTC_ZONE), 0)
    finally:
        store.close()
    # What ring 0 holds: a meal, a tool, a skill (hidden, but shared) and a notice and food.
    assert (counted.meals, counted.tools, counted.skills, counted.posters) == (1, 1, 1, 3)
