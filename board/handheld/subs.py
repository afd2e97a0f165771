"""Subscriptions: `sub meal` and the board tells you of new meals on your ring, in few packets.

A subscription is kept only on the board where the person subscribed (it is not synced), so one
board, and only one, sends each subscriber their news: nobody gets duplicates. News is batched
(collected for BATCH_DELAY, then one packet) and rate-limited per subscriber (MAX_PER_HOUR
packets; what does not fit waits for the next one and is summarised as `+3 more: list meal`).
A subscriber hears only of bulletins of the ring they subscribed on, on that ring, and never of
their own posts. Pending batches live in memory: a restart forgets at most a few minutes of news.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from board.bulletin import Bulletin
from board.handheld.paging import MAX_PACKET_BYTES, truncate_utf8, utf8_len
from board.messages import ExtensionCommand, Inbound, Outcome, Reply
from board.store.bulletins import Store
from board.store.tables import SubscriptionRow
from board.types import TypeRegistry

logger = logging.getLogger(__name__)

BATCH_DELAY = timedelta(minutes=3)
MAX_PER_HOUR = 4
RATE_WINDOW = timedelta(hours=1)
#: A subscriber's pending news is capped, so a busy ring cannot grow it without end.
MAX_PENDING = 64
#: How much of each bulletin's text a news packet shows (`read` shows the rest).
ENTRY_TEXT_BYTES = 28
MAX_SUBS_PER_PERSON = 16
HELP_LINES = ["sub <type> · unsub <type> · subs: news of new bulletins by DM"]


@dataclass
class _Batch:
    bulletins: list[Bulletin]
    due: datetime


@dataclass
class Subscriptions:
    """The subscription commands (a `board.handheld.commands.Extension`) and the news they cause."""

    store: Store
    types: TypeRegistry = field(default_factory=TypeRegistry)
    batch_delay: timedelta = BATCH_DELAY
    max_per_hour: int = MAX_PER_HOUR

    def __post_init__(self) -> None:
        self._batches: dict[tuple[str, int], _Batch] = {}
        self._sent: dict[tuple[str, int], deque[datetime]] = {}

    # -- commands -------------------------------------------------------------------------------

    def commands(self) -> Mapping[str, ExtensionCommand]:
        return {"sub": self.sub, "unsub": self.unsub, "subs": self.subs}

    def help_lines(self) -> list[str]:
        return list(HELP_LINES)

    def status(self, bulletin: Bulletin, now: datetime) -> str | None:
        return None

    def sub(self, msg: Inbound, rest: str, _outcome: Outcome) -> list[str]:
        words = rest.split()
        if not words:
            return ["sub needs a type: sub meal; types: " + " ".join(self.types.names)]
        name = self.types.get(words[0]).name
        mine = self.subscribed(msg.sender, msg.ring)
        if name in mine:
            return [f"already subscribed to {name}"]
        if len(mine) >= MAX_SUBS_PER_PERSON:
            return [f"at most {MAX_SUBS_PER_PERSON} subscriptions; unsub one first"]
        row = SubscriptionRow(
            node=msg.sender, ring=msg.ring, type=name, since=int(msg.now.timestamp())
        )
        with Session(self.store.engine) as session, session.begin():
            session.add(row)
        logger.info("%s subscribed to %s on ring %d", msg.sender, name, msg.ring)
        return [f"subscribed to {name}: new ones come by DM; unsub {name} stops"]

    def unsub(self, msg: Inbound, rest: str, _outcome: Outcome) -> list[str]:
        words = rest.split()
        if not words:
            return ["unsub needs a type: unsub meal"]
        name = self.types.get(words[0]).name
        statement = delete(SubscriptionRow).where(
            col(SubscriptionRow.node) == msg.sender,
            col(SubscriptionRow.ring) == msg.ring,
            col(SubscriptionRow.type) == name,
        )
        with Session(self.store.engine) as session, session.begin():
            removed = session.exec(statement).rowcount
        if not removed:
            return [f"not subscribed to {name}"]
        batch = self._batches.get((msg.sender, msg.ring))
        if batch is not None:
            batch.bulletins = [b for b in batch.bulletins if b.type != name]
        return [f"unsubscribed from {name}"]

    def subs(self, msg: Inbound, _rest: str, _outcome: Outcome) -> list[str]:
        mine = self.subscribed(msg.sender, msg.ring)
        return ["subscribed: " + " ".join(mine) if mine else "no subscriptions; sub <type>"]

    def subscribed(self, node: str, ring: int) -> list[str]:
        statement = (
            select(SubscriptionRow.type)
            .where(SubscriptionRow.node == node, SubscriptionRow.ring == ring)
            .order_by(col(SubscriptionRow.type))
        )
        with Session(self.store.engine) as session, session.begin():
            return list(session.exec(statement))

    # -- news -----------------------------------------------------------------------------------

    def notice(self, bulletin: Bulletin, now: datetime) -> None:
        """A bulletin became active here (posted or synced): queue it for its subscribers."""
        statement = select(SubscriptionRow.node).where(
            SubscriptionRow.ring == bulletin.ring, SubscriptionRow.type == bulletin.type
        )
        with Session(self.store.engine) as session, session.begin():
            nodes = [n for n in session.exec(statement) if n != bulletin.author]
        for node in nodes:
            key = (node, bulletin.ring)
            batch = self._batches.setdefault(key, _Batch([], now + self.batch_delay))
            if len(batch.bulletins) < MAX_PENDING:
                batch.bulletins.append(bulletin)

    def due(self, now: datetime) -> list[Reply]:
        """The news packets to send now: one per subscriber whose batch is ripe and who has not
        had MAX_PER_HOUR packets in the last hour.
        """
        replies = []
        for key, batch in list(self._batches.items()):
            fresh = [b for b in batch.bulletins if b.expires_at > now]
            if not fresh:
                del self._batches[key]
                continue
            if batch.due > now:
                continue
            sent = self._sent.setdefault(key, deque())
            while sent and now - sent[0] >= RATE_WINDOW:
                sent.popleft()
            if len(sent) >= self.max_per_hour:
                batch.due = sent[0] + RATE_WINDOW  # the next packet this person may have
                continue
            del self._batches[key]
            sent.append(now)
            replies.append(Reply(key[0], key[1], news_text(fresh)))
        return replies

    def next_due(self) -> datetime | None:
        return min((b.due for b in self._batches.values()), default=None)


def _entry(bulletin: Bulletin) -> str:
    text = truncate_utf8(" ".join(bulletin.text.split()), ENTRY_TEXT_BYTES)
    return f"#{bulletin.ref} {text}"


def news_text(bulletins: list[Bulletin]) -> str:
    """`new meal: #a3f0 Soup at the hall; #b7c1 Stew; new tool: #c2d3 ladder +2 more: list meal`

    Within one packet; what does not fit is counted, with the `list` that shows it.
    """
    order: dict[str, list[Bulletin]] = {}
    for bulletin in bulletins:
        order.setdefault(bulletin.type, []).append(bulletin)
    entries = [(t, b) for t, group in order.items() for b in group]
    text, shown = "", 0
    for index, (type_name, bulletin) in enumerate(entries):
        head = f"new {type_name}: " if index == 0 or entries[index - 1][0] != type_name else ""
        piece = ("; " if text else "") + head + _entry(bulletin)
        left = entries[index + 1 :]
        tail = _more(left) if left else ""
        if utf8_len(text + piece + tail) > MAX_PACKET_BYTES:
            break
        text += piece
        shown += 1
    rest = entries[shown:]
    if rest:
        text += _more(rest)
    return truncate_utf8(text.strip(), MAX_PACKET_BYTES)


def _more(rest: list[tuple[str, Bulletin]]) -> str:
    types = {t for t, _ in rest}
    listing = f"list {next(iter(types))}" if len(types) == 1 else "list"
    return f" +{len(rest)} more: {listing}"
