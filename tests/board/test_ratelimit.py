"""Fair share: one sender over its rate is held back, told once, and everyone else is served."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from board.handheld.commands import SLOW_DOWN, BoardConfig, CommandHandler
from board.messages import Inbound, Reply
from board.ratelimit import BOARD_RATES, HANDHELD_RATES, Rate, RateLimiter
from board.store.bulletins import Store
from board.sync.engine import SyncConfig, SyncEngine
from board.sync.reconcile import summarise
from board.wire.codec import encode

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
ALICE, BOB = "!a1b2c3d4", "!0badcafe"
FIVE_THEN_ONE_PER_10S = (Rate(5, timedelta(seconds=10)),)


def test_a_burst_is_allowed_then_one_per_interval() -> None:
    limiter = RateLimiter(FIVE_THEN_ONE_PER_10S)
    assert [limiter.check(ALICE, T0).allowed for _ in range(6)] == [True] * 5 + [False]
    assert not limiter.check(ALICE, T0 + 9 * SECOND).allowed
    assert limiter.check(ALICE, T0 + 10 * SECOND).allowed
    assert not limiter.check(ALICE, T0 + 11 * SECOND).allowed


def test_the_sender_is_told_once_per_stretch_with_the_wait() -> None:
    limiter = RateLimiter(FIVE_THEN_ONE_PER_10S)
    for _ in range(5):
        limiter.check(ALICE, T0)
    first = limiter.check(ALICE, T0 + 4 * SECOND)
    assert (first.allowed, first.first_refusal, first.retry_seconds) == (False, True, 6)
    later = [limiter.check(ALICE, T0 + 5 * SECOND) for _ in range(10)]
    assert not any(v.allowed or v.first_refusal for v in later)
    assert limiter.check(ALICE, T0 + 10 * SECOND).allowed  # the stretch ends here
    again = limiter.check(ALICE, T0 + 10 * SECOND)
    assert again.first_refusal and again.retry_seconds == 10


def test_senders_have_their_own_buckets() -> None:
    limiter = RateLimiter(FIVE_THEN_ONE_PER_10S)
    for _ in range(20):
        limiter.check(ALICE, T0)
    assert limiter.check(BOB, T0).allowed


def test_the_wait_is_for_the_emptiest_bucket() -> None:
    limiter = RateLimiter(HANDHELD_RATES)  # 5 then 1 per 10 s; 30 then 1 per 2 min
    at = T0
    allowed = 0
    for _ in range(200):
        allowed += limiter.check(ALICE, at).allowed
        at += 10 * SECOND
    verdict = limiter.check(ALICE, at - 10 * SECOND)
    assert not verdict.allowed
    assert verdict.retry_seconds > 10  # it is the hourly bucket that is empty now
    assert allowed <= 30 + (200 * 10) / 120 + 1


def test_a_clock_that_steps_back_counts_as_no_time() -> None:
    limiter = RateLimiter(FIVE_THEN_ONE_PER_10S)
    for _ in range(5):
        limiter.check(ALICE, T0)
    assert not limiter.check(ALICE, T0 - timedelta(days=1)).allowed
    # Time runs on from the new reading: a clock corrected backwards does not block for a day.
    assert limiter.check(ALICE, T0 - timedelta(days=1) + 10 * SECOND).allowed


def test_memory_is_bounded_by_forgetting_the_least_recent_sender() -> None:
    limiter = RateLimiter(FIVE_THEN_ONE_PER_10S, max_senders=2)
    for _ in range(5):
        limiter.check(ALICE, T0)
    limiter.check(BOB, T0)
    limiter.check("!00000003", T0)  # Alice is forgotten: she starts with a full bucket again
    assert limiter.check(ALICE, T0).allowed


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Rate(0, SECOND)
    with pytest.raises(ValueError):
        Rate(1, timedelta(0))
    with pytest.raises(ValueError):
        RateLimiter(())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([ALICE, BOB]), st.integers(0, 120)), max_size=150))
def test_no_window_ever_allows_more_than_the_rate(events: list[tuple[str, int]]) -> None:
    """Over any stretch of t seconds a sender gets at most burst + t / every, for every bucket."""
    limiter = RateLimiter(HANDHELD_RATES)
    at, allowed = T0, []
    for sender, gap in events:
        at += gap * SECOND
        if limiter.check(sender, at).allowed:
            allowed.append((sender, at))
    for rate in HANDHELD_RATES:
        for sender in (ALICE, BOB):
            times = [t for s, t in allowed if s == sender]
            for i, start in enumerate(times):
                for j in range(i, len(times)):
                    assert j - i + 1 <= rate.burst + (times[j] - start) / rate.every + 1e-9


# -- through the command handler -----------------------------------------------------------------


@pytest.fixture
def limited() -> CommandHandler:
    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool)
    return CommandHandler(Store(engine), BoardConfig(), limiter=RateLimiter(HANDHELD_RATES))


def send(handler: CommandHandler, text: str, at: datetime, *, sender: str = ALICE) -> list[Reply]:
    return handler.handle(Inbound(sender, 0, text, True, at)).replies


def test_a_flooding_handheld_gets_one_slow_down_and_others_are_served(
    limited: CommandHandler,
) -> None:
    flood = [send(limited, f"post meal Soup number {i}", T0 + i * SECOND / 10) for i in range(50)]
    texts = [reply.text for replies in flood for reply in replies]
    assert sum(t.startswith("ok #") for t in texts) == 5
    assert texts[5:] == [SLOW_DOWN.format(seconds=10)]
    [bob] = send(limited, "list", T0 + 3 * SECOND, sender=BOB)
    assert bob.text.count("Soup number") == 5  # what was refused was not carried out either


def test_chatter_on_a_shared_channel_does_not_count(limited: CommandHandler) -> None:
    for _ in range(50):
        limited.handle(Inbound(ALICE, 0, "anyone around?", False, T0))
        limited.handle(Inbound(ALICE, 0, "!weather", False, T0))  # another bot's command
    assert send(limited, "list", T0)[0].text == "no bulletins"


def test_the_slow_down_goes_to_the_sender_on_its_ring(limited: CommandHandler) -> None:
    for _ in range(5):
        limited.handle(Inbound(ALICE, 3, "!help", False, T0))
    [reply] = limited.handle(Inbound(ALICE, 3, "!help", False, T0)).replies
    assert (reply.to, reply.ring, reply.text) == (ALICE, 3, "slow down: try again in 10 s")


# -- on the board plane ---------------------------------------------------------------------------


def test_a_board_over_its_rate_is_dropped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    sync = SyncEngine(
        Store.open("sqlite://"), SyncConfig(), random.Random(0), limiter=RateLimiter(BOARD_RATES)
    )
    digest = encode(summarise(0, []))
    for _ in range(150):
        sync.receive(digest, 0, "!0b0a4d02", T0)
    sync.receive(digest, 0, "!0b0a4d03", T0)  # another board is heard as usual
    assert sync.stats.received == 151
    assert sync.stats.dropped_rate_limited == 50
    assert caplog.text.count("board !0b0a4d02 is sending too fast") == 1
    sync.receive(digest, 0, "!0b0a4d02", T0 + 4 * SECOND)  # one more allowed after 4 s
    assert sync.stats.dropped_rate_limited == 50
