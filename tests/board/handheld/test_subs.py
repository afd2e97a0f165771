"""Subscriptions in the core: commands, batching, rate limit and rings, with explicit times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from board.bulletin import Bulletin
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.paging import MAX_PACKET_BYTES, utf8_len
from board.handheld.subs import BATCH_DELAY, MAX_PER_HOUR, Subscriptions, news_text
from board.messages import Inbound
from board.store.bulletins import Store
from tests.board.conftest import MONDAY_10H

ANA, BEN = "!a1b2c3d4", "!0badcafe"
Make = Callable[..., Bulletin]


@pytest.fixture
def subs(store: Store) -> Subscriptions:
    return Subscriptions(store)


@pytest.fixture
def handler(store: Store, subs: Subscriptions) -> CommandHandler:
    return CommandHandler(store, BoardConfig(), extensions=(subs,))


def say(handler: CommandHandler, text: str, sender: str = BEN, ring: int = 0) -> str:
    return handler.handle(Inbound(sender, ring, text, direct=True, now=MONDAY_10H)).replies[0].text


def test_sub_unsub_subs(handler: CommandHandler) -> None:
    assert say(handler, "subs") == "no subscriptions; sub <type>"
    assert say(handler, "sub Meal") == "subscribed to meal: new ones come by DM; unsub meal stops"
    assert say(handler, "sub meal") == "already subscribed to meal"
    assert say(handler, "sub tool").startswith("subscribed to tool")
    assert say(handler, "subs") == "subscribed: meal tool"
    assert say(handler, "subs", ring=1) == "no subscriptions; sub <type>"
    assert say(handler, "sub soup").startswith("unknown type 'soup'")
    assert say(handler, "unsub meal") == "unsubscribed from meal"
    assert say(handler, "unsub meal") == "not subscribed to meal"
    assert say(handler, "subs") == "subscribed: tool"


def test_news_is_batched_per_ring_and_never_of_ones_own_posts(
    handler: CommandHandler, subs: Subscriptions, make: Make
) -> None:
    say(handler, "sub meal")
    say(handler, "sub meal", sender=ANA, ring=1)
    soup, stew = make(text="Soup at the hall"), make(text="Stew", author="!00c0ffee")
    mine, inner = (
        make(text="My own pie", author=BEN),
        make(text="Inner", ring=1, author="!00c0ffee"),
    )
    for bulletin in (soup, stew, mine, inner):
        subs.notice(bulletin, MONDAY_10H)
    assert subs.due(MONDAY_10H + BATCH_DELAY - timedelta(seconds=1)) == []
    news = subs.due(MONDAY_10H + BATCH_DELAY)
    assert [(r.to, r.ring, r.text) for r in news] == [
        (BEN, 0, f"new meal: #{soup.ref} Soup at the hall; #{stew.ref} Stew"),
        (ANA, 1, f"new meal: #{inner.ref} Inner"),
    ]
    assert subs.due(MONDAY_10H + 2 * BATCH_DELAY) == []


def test_unsub_stops_pending_news(handler: CommandHandler, subs: Subscriptions, make: Make) -> None:
    say(handler, "sub meal")
    subs.notice(make(), MONDAY_10H)
    say(handler, "unsub meal")
    assert subs.due(MONDAY_10H + BATCH_DELAY) == []
    subs.notice(make(text="Later"), MONDAY_10H)
    assert subs.due(MONDAY_10H + BATCH_DELAY) == []


def test_rate_limit_holds_and_nothing_is_lost(
    handler: CommandHandler, subs: Subscriptions, make: Make
) -> None:
    say(handler, "sub meal")
    now, sent = MONDAY_10H, []
    for n in range(MAX_PER_HOUR + 2):  # a new meal every batch, all within the hour
        subs.notice(make(text=f"Meal {n}"), now)
        now += BATCH_DELAY
        sent += subs.due(now)
    assert len(sent) == MAX_PER_HOUR
    waiting = subs.next_due()
    assert waiting == MONDAY_10H + BATCH_DELAY + timedelta(hours=1)
    later = subs.due(waiting)
    assert len(later) == 1 and "Meal 4" in later[0].text and "Meal 5" in later[0].text


def test_a_long_batch_fits_one_packet(make: Make) -> None:
    meals = [make(text=f"Meal number {n} with a long description") for n in range(12)]
    tools = [make(type="tool", text=f"Tool {n}") for n in range(2)]
    text = news_text(meals + tools)
    assert utf8_len(text) <= MAX_PACKET_BYTES
    assert text.startswith(f"new meal: #{meals[0].ref} Meal number 0 with a long")
    shown = text.count("#")
    assert text.endswith(f" +{14 - shown} more: list")
    assert news_text(meals[:7]).endswith("more: list meal")
