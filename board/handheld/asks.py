"""Getting an `ask` about a tool to its owner's handheld, through whichever board hears them.

A board delivers an ask as a direct message only if it heard the owner itself lately
(HEARD_FOR): the owner's handheld is then most likely in its reach. Otherwise it passes the ask on
as a board-plane broadcast on the tool's ring, where each board relays a given ask at most once
(remembered for DEDUPE_FOR) and only while its hop count lasts, so an ask nobody can deliver dies
out after a few boards instead of circling. Asks are not stored or repaired: a lost one costs the
asker a second `ask`, which is cheaper than keeping every question on every board.

The asker's channel never leaves it: an ask travels only on the ring of the tool it names, and a
tool can only be asked about from that ring (the store finds bulletins per ring).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from board.bulletin import Bulletin
from board.errors import BoardError
from board.handheld.paging import MAX_PACKET_BYTES, truncate_utf8
from board.messages import Reply
from board.store.bulletins import Store
from board.store.tools import TOOL_TYPE
from board.wire.keys import bulletin_key, bytes_to_id
from board.wire.tools import MAX_ASK_HOPS, AskMsg

logger = logging.getLogger(__name__)

#: A board that heard the owner's handheld this recently delivers asks to it.
HEARD_FOR = timedelta(days=1)
#: The same ask (tool, asker, words) is delivered or passed on once in this time.
DEDUPE_FOR = timedelta(hours=1)
#: Bounded memories, so a flood of fake node ids cannot grow them without end.
MAX_HEARD = 4096
MAX_SEEN = 1024
#: How much of a tool's text names it in the owner's message ("ladder").
TOOL_NAME_BYTES = 24


@dataclass
class Routed:
    """What one ask caused here: direct messages to send, and an ask to pass on to boards."""

    deliver: list[Reply] = field(default_factory=list)
    forward: AskMsg | None = None


def owner_text(bulletin: Bulletin, asker: str, words: str) -> str:
    """`ask #a3f0 (ladder) from !1234abcd: free sat?`, within one packet."""
    name = truncate_utf8(bulletin.text.split("\n", 1)[0], TOOL_NAME_BYTES)
    text = f"ask #{bulletin.ref} ({name}) from {asker}"
    if words:
        text += f": {words}"
    return truncate_utf8(text, MAX_PACKET_BYTES)


class AskRouter:
    """Who this board heard lately, and which asks it already handled. Memory only."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._heard: OrderedDict[str, datetime] = OrderedDict()
        self._seen: OrderedDict[tuple[bytes, str, str], datetime] = OrderedDict()

    def heard(self, node: str, now: datetime) -> None:
        """A text from `node` reached this board's radio."""
        self._heard[node] = now
        self._heard.move_to_end(node)
        while len(self._heard) > MAX_HEARD:
            self._heard.popitem(last=False)

    def hears(self, node: str, now: datetime) -> bool:
        heard = self._heard.get(node)
        return heard is not None and now - heard < HEARD_FOR

    def from_handheld(self, bulletin: Bulletin, asker: str, words: str, now: datetime) -> Routed:
        """A person asked here: deliver if we hear the owner, else pass it to the boards."""
        msg = AskMsg(bulletin_key(bulletin.id), bulletin.ring, asker, MAX_ASK_HOPS, words)
        self._first_time(msg, now)
        if self.hears(bulletin.author, now):
            return Routed(deliver=[self._delivery(bulletin, msg)])
        return Routed(forward=msg)

    def from_board(self, msg: AskMsg, now: datetime) -> Routed:
        """An ask another board passed on: deliver, pass on once more, or let it die."""
        if not self._first_time(msg, now):
            return Routed()
        bulletin = self._tool(msg)
        if bulletin is not None and self.hears(bulletin.author, now):
            logger.info("delivering an ask about %s to its owner", bulletin.id)
            return Routed(deliver=[self._delivery(bulletin, msg)])
        if msg.hops == 0:
            return Routed()
        return Routed(forward=AskMsg(msg.target, msg.ring, msg.asker, msg.hops - 1, msg.text))

    def _first_time(self, msg: AskMsg, now: datetime) -> bool:
        while self._seen and now - next(iter(self._seen.values())) >= DEDUPE_FOR:
            self._seen.popitem(last=False)
        key = msg.dedupe_key()
        if key in self._seen:
            return False
        self._seen[key] = now
        while len(self._seen) > MAX_SEEN:
            self._seen.popitem(last=False)
        return True

    def _tool(self, msg: AskMsg) -> Bulletin | None:
        try:
            bulletin = self._store.get(bytes_to_id(msg.target), msg.ring)
        except BoardError:
            return None
        return bulletin if bulletin.type == TOOL_TYPE else None

    @staticmethod
    def _delivery(bulletin: Bulletin, msg: AskMsg) -> Reply:
        return Reply(bulletin.author, bulletin.ring, owner_text(bulletin, msg.asker, msg.text))
