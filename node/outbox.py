"""The one queue every transmission of the board goes through.

Two kinds of packet leave a board: replies to people (text direct messages) and board-plane
packets (sync). Replies go first and are never dropped; they are paced at least 1.5 s apart
because firmware 2.7 silently drops texts sent faster. Board-plane packets are sent only while the
airtime budget allows and the channel is not busy; otherwise they are dropped with a log line,
since the sync protocol's anti-entropy repairs what was not sent. No packet follows the previous
one sooner than the previous one's airtime: the radio cannot send faster than the air carries.
While the radio is unreachable (LinkDown) nothing is dropped or counted as an attempt: the
packet waits at the head of its queue until the daemon says the link is up again.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from board.commands import Reply
from board.sync.engine import Outgoing
from node.clock import SYSTEM_CLOCK, Clock
from node.link import LinkDown, LinkError

logger = logging.getLogger(__name__)

MIN_TEXT_INTERVAL = 1.5  # seconds between texts (DESIGN.md, firmware 2.7 text rate)
MAX_ATTEMPTS = 3
BUDGET_RECHECK = 30.0  # seconds between looks at the budget while a reply waits for it

Packet = Reply | Outgoing


class Budget(Protocol):
    """The airtime accounting the outbox consults (board.airtime.AirtimeBudget)."""

    def can_send(self, now: datetime, seconds: float, *, essential: bool) -> bool: ...

    def record(self, now: datetime, seconds: float) -> None: ...


@dataclass
class _Queued:
    packet: Packet
    airtime: float
    attempts: int = 0


@dataclass
class OutboxStats:
    replies_sent: int = 0
    board_sent: int = 0
    board_dropped: int = 0
    given_up: int = 0


class Outbox:
    """Sends queued packets on its own thread, paced and within the airtime budget."""

    def __init__(
        self,
        send_reply: Callable[[Reply], object],
        send_board: Callable[[Outgoing], object],
        airtime: Callable[[Packet], float],
        budget: Budget,
        *,
        text_interval: float = MIN_TEXT_INTERVAL,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._send_reply = send_reply
        self._send_board = send_board
        self._airtime = airtime
        self._budget = budget
        self._text_interval = text_interval
        self._clock = clock
        self._replies: deque[_Queued] = deque()
        self._board: deque[_Queued] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._free_at = 0.0  # clock.monotonic() when the air is ours again
        self._next_text_at = 0.0
        self._link_epoch = 0  # counts link_up() calls
        self._link_down = False
        self._thread: threading.Thread | None = None
        self.stats = OutboxStats()

    def put(self, packet: Packet) -> None:
        queue = self._replies if isinstance(packet, Reply) else self._board
        with self._changed:
            queue.append(_Queued(packet, self._airtime(packet)))
            self._changed.notify_all()

    @property
    def depth(self) -> int:
        with self._changed:
            return len(self._replies) + len(self._board)

    def link_up(self) -> None:
        """The radio is reachable (again): what found it down goes out now."""
        with self._changed:
            self._link_epoch += 1
            self._link_down = False
            self._changed.notify_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop sending; with a drain timeout, first give queued replies that long to go out."""
        with self._changed:
            self._changed.wait_for(
                lambda: not self._replies or self._link_down, timeout=drain_timeout
            )
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._replies:
            logger.warning("outbox stopped with %d replies unsent", len(self._replies))

    def _run(self) -> None:
        while (item := self._next_due()) is not None:
            self._transmit(item)

    def _next_due(self) -> _Queued | None:
        """Block until a packet may go out; None once stopping."""
        with self._changed:
            while not self._stopping:
                if self._link_down:
                    self._changed.wait()
                    continue
                now = self._clock.monotonic()
                wait: float | None = self._free_at - now
                if wait is not None and wait <= 0:
                    wait, item = self._pick(now)
                    if item is not None:
                        return item
                self._changed.wait(self._clock.to_real(wait) if wait is not None else None)
            return None

    def _pick(self, now: float) -> tuple[float | None, _Queued | None]:
        """The packet to send now, or how long to wait (None: until something is queued)."""
        if self._replies:
            item = self._replies[0]
            if now < self._next_text_at:
                return self._next_text_at - now, None
            if not self._budget.can_send(self._clock.now(), item.airtime, essential=True):
                return BUDGET_RECHECK, None
            return 0.0, item
        while self._board:
            item = self._board.popleft()
            if self._budget.can_send(self._clock.now(), item.airtime, essential=False):
                return 0.0, item
            self.stats.board_dropped += 1
            logger.info("airtime budget or busy channel: dropped a board-plane packet")
        return None, None

    def _transmit(self, item: _Queued) -> None:
        packet = item.packet
        with self._changed:
            epoch = self._link_epoch
        try:
            if isinstance(packet, Reply):
                self._send_reply(packet)
            else:
                self._send_board(packet)
        except LinkDown as error:
            logger.warning("radio unreachable, the packet waits for it: %s", error)
            with self._changed:
                if not isinstance(packet, Reply):
                    self._board.appendleft(item)  # _pick took it off its queue
                # A link_up() during the send means the next try may already work.
                self._link_down = epoch == self._link_epoch
                self._changed.notify_all()
            return
        except LinkError as error:
            item.attempts += 1
            done = item.attempts >= MAX_ATTEMPTS or not isinstance(packet, Reply)
            logger.warning("send failed (attempt %d): %s", item.attempts, error)
            if done:
                self.stats.given_up += 1
                logger.error("gave up a packet: %r", packet)
        else:
            done = True
            self._budget.record(self._clock.now(), item.airtime)
            if isinstance(packet, Reply):
                self.stats.replies_sent += 1
            else:
                self.stats.board_sent += 1
        with self._changed:
            now = self._clock.monotonic()
            self._free_at = now + item.airtime
            if isinstance(packet, Reply):
                self._next_text_at = now + max(self._text_interval, item.airtime)
                if done:
                    self._replies.popleft()
            self._changed.notify_all()
