"""Hostile and broken input to the core: anything but a domain error is a bug.

Hypothesis drives the command parser and every decoder of the core with arbitrary and mutated
input. What must hold: `CommandHandler.handle` never raises at all and every reply fits one packet
and shows no control character; decoders raise only their documented domain error, and whatever
they accept re-encodes to the same bytes; the sync engine never raises, and a packet it cannot
decode changes nothing in the store.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from board.bulletin import MAX_LIFETIME, MAX_TEXT_BYTES, Bulletin, is_control, new_bulletin
from board.errors import (
    ForeignPacket,
    InvalidBulletin,
    InvalidWhen,
    MalformedBulletin,
    MalformedPacket,
    NotFound,
)
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.paging import MAX_PACKET_BYTES
from board.messages import Inbound
from board.refs import ALPHABET, normalise_ref
from board.store.bulletins import Store
from board.sync.engine import SyncConfig, SyncEngine
from board.sync.reconcile import summarise
from board.types import TypeRegistry
from board.when import MAX_EVENT_AHEAD, RELATIVE_DAYS, WEEKDAYS, parse_when
from board.wire.codec import (
    Announce,
    Inventory,
    Request,
    TombstoneMsg,
    decode,
    encode,
)
from board.wire.keys import KEY_BYTES

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [ZoneInfo(name) for name in ("UTC", "Europe/Berlin", "Pacific/Kiritimati", "Pacific/Niue")]
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SENDERS = ["!a1b2c3d4", "!0badcafe", "!00000000", "!ffffffff"]

#: Words that reach deep into the grammar, and the classic nasties.
NASTY = [
    *("help", "?", "post", "list", "read", "more", "del", "meal", "tool", "MEAL", "tue", "18:00"),
    *("6pm", "13pm", "25:00", "tmrw", "noon", "2027-01-01", "0001-01-01", "9999-12-31", "#"),
    *("#a3f0", "#zzzz", "#ilo1", "'); DROP TABLE bulletin;--", "$(rm -rf /)", "`reboot`"),
    *("\x1b[2J", "\u202e", "\u2066", "\u200b", "\ufffd", "\x00", "\r\n", "\u2028", "\x85"),
    *("🍲", "👨\u200d👩\u200d👧", "e\u0301", "\U0001f1e9\U0001f1ea", "\ud800", " " * 40, "x" * 210),
]
commands = st.one_of(
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), max_size=10).map(" ".join),
    st.text(max_size=300),
)
moments = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
)


def memory_store() -> Store:
    return Store(sqlalchemy.create_engine("sqlite://", poolclass=StaticPool))


def assert_showable(bulletin: Bulletin) -> None:
    """What another person may see: printable, visible, within budget, and not for ever."""
    assert not any(is_control(c) for c in bulletin.text)
    assert "\ufffd" not in bulletin.text
    assert any(unicodedata.category(c)[0] in "LNPS" for c in bulletin.text)
    assert len(bulletin.text.encode("utf-8")) <= MAX_TEXT_BYTES
    assert bulletin.expires_at - bulletin.created_at <= MAX_LIFETIME


# -- the command parser -----------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "!", "!!", " ! ", "\n!"]),
            commands,
            st.booleans(),
            st.sampled_from(SENDERS),
            st.integers(-1, 9),
        ),
        min_size=1,
        max_size=6,
    ),
    moments,
    st.sampled_from(ZONES),
)
def test_the_parser_answers_anything_within_one_clean_packet(
    messages: list[tuple[str, str, bool, str, int]], now: datetime, tz: ZoneInfo
) -> None:
    store = memory_store()
    handler = CommandHandler(store, BoardConfig(tz=tz))
    for prefix, text, direct, sender, ring in messages:
        before = store.count()
        outcome = handler.handle(Inbound(sender, ring, prefix + text, direct, now))
        for reply in outcome.replies:
            assert (reply.to, reply.ring) == (sender, ring)
            assert len(reply.text.encode("utf-8")) <= MAX_PACKET_BYTES
            assert not any(is_control(c) for c in reply.text), reply.text
        if not direct and not (prefix + text).strip().startswith("!"):
            assert outcome.replies == [] and outcome.posted == [] and outcome.deleted == []
            assert store.count() == before
        now += timedelta(seconds=7)
    for bulletin in store.active(now - timedelta(days=1)):
        assert_showable(bulletin)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                "{:04d}-{:02d}-{:02d}".format,
                st.integers(0, 9999),
                st.integers(0, 13),
                st.integers(0, 32),
            ),
            st.builds("{}:{:02d}".format, st.integers(0, 99), st.integers(0, 99)),
            st.builds("{}{}".format, st.integers(0, 99), st.sampled_from(["am", "pm", "pm,"])),
            st.sampled_from([*WEEKDAYS, *RELATIVE_DAYS, "noon", "NOON:", "Tue,"]),
            st.text(max_size=8),
        ),
        max_size=3,
    ),
    moments,
    st.sampled_from(ZONES),
)
def test_event_times_are_read_near_now_or_refused(
    tokens: list[str], now: datetime, tz: ZoneInfo
) -> None:
    try:
        event, used = parse_when(tokens, now, tz)
    except InvalidWhen:
        return
    if event is None:
        assert used == 0
        return
    assert used in (1, 2) and event.tzinfo is not None
    # "today" alone is local midnight, earlier today; nothing is more than a year ahead.
    assert now - timedelta(days=1, hours=1) <= event <= now + MAX_EVENT_AHEAD + timedelta(days=8)


@given(st.text(max_size=40))
def test_a_typed_ref_is_an_id_prefix_or_not_found(typed: str) -> None:
    try:
        ref = normalise_ref(typed)
    except NotFound:
        return
    assert ref and all(c in ALPHABET for c in ref)


# -- decoders: mutation of valid encodings ------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """`base` after one to three edits: bit flips, overwrites, cuts, insertions, duplications."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "truncate", "repeat"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[at:]
        elif op == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


def _bulletin(text: str = "Soup at the hall", **fields: object) -> Bulletin:
    values: dict[str, object] = {"type": "meal", "author": "!a1b2c3d4", "ring": 0, "now": T0}
    values.update(fields)
    return new_bulletin(TypeRegistry(), text=text, **values)  # type: ignore[arg-type]


VALID_BULLETINS = [
    _bulletin(),
    _bulletin("Grød med smør 🍲\nund Käse", type="food", ring=3),
    _bulletin("x" * 200, type="childcare", event_time=T0 + timedelta(days=2)),
]
KEY = bytes(range(KEY_BYTES))
VALID_PAYLOADS = [
    *(encode(Announce.of(b)) for b in VALID_BULLETINS),
    encode(TombstoneMsg(KEY, 0, "!a1b2c3d4", None, T0, T0 + timedelta(days=1))),
    encode(summarise(0, [KEY])),
    encode(Inventory(0, 0xFFFF, (b"\x00\x01\x02\x03", b"\x10\x00\x00\x00"))),
    encode(Request(0, (b"\x00\x01\x02\x03",))),
]


@settings(max_examples=200)
@given(
    st.one_of(
        st.binary(max_size=260),
        st.sampled_from(VALID_BULLETINS).flatmap(lambda b: mutated(b.canonical_bytes())),
    )
)
def test_bulletin_bytes_decode_to_a_showable_bulletin_or_malformed(data: bytes) -> None:
    try:
        bulletin = Bulletin.from_canonical_bytes(data)
    except MalformedBulletin:
        return
    assert bulletin.canonical_bytes() == data
    assert_showable(bulletin)


@settings(max_examples=200)
@given(st.sampled_from(VALID_PAYLOADS).flatmap(mutated))
def test_mutated_board_packets_are_refused_or_round_trip(payload: bytes) -> None:
    try:
        msg = decode(payload)
    except (ForeignPacket, MalformedPacket):
        return
    assert encode(msg) == payload


def _store_state(store: Store) -> tuple[list[str], list[str]]:
    bulletins = sorted(b.id for b in store.active(T0 - timedelta(days=400)))
    tombstones = sorted(
        t.bulletin_id for ring in range(8) for t in store.tombstones(ring, T0 - timedelta(days=400))
    )
    return bulletins, tombstones


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(VALID_PAYLOADS), st.sampled_from(VALID_PAYLOADS).flatmap(mutated)
            ),
            st.integers(0, 8),
            st.sampled_from(SENDERS),
            st.integers(0, 3600),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_sync_engine_survives_anything_and_bad_packets_change_nothing(
    packets: list[tuple[bytes, int, str, int]],
) -> None:
    sync = SyncEngine(memory_store(), SyncConfig(rings=frozenset({0, 3})), random.Random(0))
    now = T0
    for payload, ring, sender, gap in packets:
        now += timedelta(seconds=gap)
        before = _store_state(sync.store)
        sync.receive(payload, ring, sender, now)
        try:
            decode(payload)
        except (ForeignPacket, MalformedPacket):
            assert _store_state(sync.store) == before
        sync.poll(now)
    for bulletin in sync.store.active(T0 - timedelta(days=1)):
        assert_showable(bulletin)


def test_a_bulletin_cannot_live_for_years() -> None:
    with pytest.raises(InvalidBulletin, match="lives at most 400 days"):
        _bulletin(event_time=T0 + timedelta(days=800))


# -- what hypothesis found, kept as plain examples --------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("post meal 0001-01-01 Soup", "'0001-01-01' has passed"),  # was an OverflowError
        ("post meal 2099-01-01 Soup", "'2099-01-01' is more than a year ahead"),  # was kept
        ("\ud800", "unknown command '\ufffd'; send help"),  # was a UnicodeEncodeError
        ("post meal \u200b\u200b", "text is empty"),  # was an invisible bulletin
        ("post meal Free \u202esoup", "text contains control characters"),  # was kept
        ("post meal Soup \ufffd", "text has bytes that are not UTF-8"),  # was kept
        ("read #\x1b[2J", "no bulletin #?[2J"),  # the escape went back to the screen
    ],
)
def test_what_hypothesis_found(text: str, answer: str) -> None:
    handler = CommandHandler(memory_store(), BoardConfig(tz=BERLIN))
    [reply] = handler.handle(Inbound(SENDERS[0], 0, text, True, T0)).replies
    assert reply.text == answer


def test_a_stored_row_that_todays_rules_refuse_does_not_break_the_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = memory_store()
    kept = _bulletin("Soup at the hall")
    store.add(kept, T0)
    invisible = _bulletin("Tea").canonical_bytes().replace(b"Tea", "\u200b".encode())
    with store.engine.begin() as db:  # as an older version of the board would have stored it
        db.exec_driver_sql(
            "INSERT INTO bulletin SELECT 'old', 'old', ring, type, '', author, created_at,"
            " event_time, expires_at, received_at, ? FROM bulletin",
            (invisible,),
        )
    assert store.active(T0) == [kept]
    assert "not listing stored bulletin old" in caplog.text


def test_a_page_reads_on_past_rows_that_todays_rules_refuse() -> None:
    store = memory_store()
    kept = _bulletin("Soup at the hall")
    store.add(kept, T0)
    invisible = _bulletin("Tea").canonical_bytes().replace(b"Tea", "\u200b".encode())
    with store.engine.begin() as db:  # sorts first: same time, and "0" before any other id
        db.exec_driver_sql(
            "INSERT INTO bulletin SELECT '0', '0', ring, type, '', author, created_at,"
            " event_time, expires_at, received_at, ? FROM bulletin",
            (invisible,),
        )
    assert store.page(T0, 0, limit=1) == [kept]
