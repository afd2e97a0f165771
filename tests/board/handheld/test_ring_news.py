"""The opt-in ring digest: one broadcast per interval, only with news, only for its ring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from board.bulletin import Bulletin, new_bulletin
from board.config import MeshboardConfig, RingSpec
from board.handheld.ring_news import RingNews
from board.messages import BROADCAST, Reply
from board.types import TypeRegistry

START = datetime(2026, 11, 24, 9, tzinfo=UTC)
CONFIG = MeshboardConfig(
    rings=(
        RingSpec("public", 0, digest=timedelta(hours=6)),
        RingSpec("garden", 1),  # no digest: never broadcast
    )
)


def bulletin(kind: str, ring: int, at: datetime, text: str = "Soup") -> Bulletin:
    return new_bulletin(TypeRegistry(), type=kind, text=text, author="!00000001", ring=ring, now=at)


def test_a_digest_says_what_is_new_once_per_interval() -> None:
    news = RingNews(CONFIG, START)
    assert news.due(START) == []  # nothing new: nothing said
    at = START + timedelta(hours=1)
    news.notice(bulletin("meal", 0, at), at)
    news.notice(bulletin("meal", 0, at, "Stew"), at)
    news.notice(bulletin("tool", 0, at, "Ladder"), at)
    assert news.due(at) == []  # the first digest also waits an interval from the start
    assert news.next_due() == START + timedelta(hours=6)
    due = START + timedelta(hours=6)
    assert news.due(due) == [Reply(BROADCAST, 0, "new: 2 meal, 1 tool (send list)")]
    assert news.due(due) == []
    later = due + timedelta(hours=1)
    news.notice(bulletin("skill", 0, later, "Knots"), later)
    assert news.due(later) == []
    assert news.due(due + timedelta(hours=6)) == [Reply(BROADCAST, 0, "new: 1 skill (send list)")]


def test_a_ring_without_a_digest_is_never_broadcast() -> None:
    news = RingNews(CONFIG, START)
    at = START + timedelta(hours=7)
    news.notice(bulletin("meal", 1, at), at)
    assert news.due(at) == []
    assert news.next_due() is None
