"""The one queue every transmission of the board goes through, kept in the board's database.

Two kinds of packet leave a board: replies to people (text direct messages) and board-plane
packets (sync broadcasts). Each is written to the database (`board.store.outbox`) before it is
sent, so what a person waits for survives kill -9, a restart and a lost radio.

Replies go first, at least `text_interval` apart (firmware 2.7 silently drops faster texts), with
want_ack. The radio answers each with a `Delivery`: an ACK, an implicit ACK (a relay repeated it,
so the firmware stopped retrying; counted as delivered, since a resend would reach most people
twice) or a NAK. A NAK, or no word within `ack_timeout`, is a failed attempt: the reply is tried
again after a backoff and given up, with a warning, after the last attempt. An ACK for any attempt
of a reply, however late, settles it. Every attempt waits for the text pacing and asks the airtime
budget, exactly as the first does.

Board-plane packets need no ACK: they are deleted once handed to the radio, and dropped when the
budget denies them or they are older than `board_max_age`, since sync repairs what was not sent
and a stale announcement is worse than none. No packet follows the previous one sooner than the
previous one's airtime: the radio cannot send faster than the air carries.

While the radio cannot be reached (`LinkDown`) nothing is dropped and nothing counts as an
attempt: packets stay queued and the outbox tries again when the daemon calls `link_up()`, or
every `link_retry` seconds. A packet the link refuses outright (`LinkError`: it can never fit)
is dropped with a warning, so it cannot hold up the queue.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from board.messages import BROADCAST, Outgoing, Packet, Reply
from board.store.outbox import OutboxStore, Queued
from node.clock import SYSTEM_CLOCK, Clock
from node.link import Delivery, LinkDown, LinkError

logger = logging.getLogger(__name__)

MIN_TEXT_INTERVAL = 1.5  # seconds between texts (docs/design.md, firmware 2.7 text rate)
BUDGET_RECHECK = 30.0  # seconds between looks at the budget while a reply waits for it
STEP_RETRY = 1.0  # real seconds before a step that failed (say, a locked database) is retried
MAX_STEP_FAILURES = 30  # in a row: longer than any lock a healthy board holds

__all__ = ["MIN_TEXT_INTERVAL", "Outbox", "OutboxStats", "OutboxTiming", "Packet"]


@dataclass(frozen=True)
class OutboxTiming:
    """How patient the outbox is, in the clock's seconds."""

    attempts: int = 3  # times a reply is handed to the radio before it is given up
    # The firmware's own three tries of a LongFast text end in an ACK or NAK within about 40 s
    # on a quiet mesh; a full TX queue ahead of it adds half a minute. No word by then: lost.
    ack_timeout: float = 120.0
    backoff: tuple[float, ...] = (30.0, 90.0)  # waits after the first, second, … failure
    board_max_age: float = 180.0  # an older sync packet describes a state that has moved on
    reply_max_age: float = 3600.0  # an answer this late misleads more than it helps
    link_retry: float = 2.0  # between tries while the radio cannot be reached

    def backoff_after(self, attempts: int) -> float:
        return self.backoff[min(attempts, len(self.backoff)) - 1] if self.backoff else 0.0


class Budget(Protocol):
    """The airtime accounting the outbox consults (board.airtime.AirtimeBudget)."""

    def can_send(self, now: datetime, seconds: float, *, essential: bool) -> bool: ...

    def record(self, now: datetime, seconds: float) -> None: ...


@dataclass(eq=False)
class _Item:
    id: int
    packet: Packet
    airtime: float
    queued_at: float  # clock.monotonic() when queued (estimated for an earlier run's packets)
    attempts: int = 0
    packet_ids: list[int] = field(default_factory=list)
    due: float = 0.0  # a reply's next attempt, after a backoff
    waiting_until: float | None = None  # an attempt is out; its ACK or NAK is awaited until then

    @property
    def to(self) -> str:
        return self.packet.to if isinstance(self.packet, Reply) else "everyone"

    @property
    def text(self) -> str:
        return self.packet.text if isinstance(self.packet, Reply) else self.packet.payload.hex()


@dataclass(frozen=True)
class _Step:
    kind: Literal["report", "expire", "send", "drop"]
    item: _Item | None = None
    delivery: Delivery | None = None
    why: str = ""


@dataclass
class OutboxStats:
    replies_sent: int = 0  # attempts handed to the radio
    replies_delivered: int = 0
    board_sent: int = 0
    board_dropped: int = 0
    given_up: int = 0


class Outbox:
    """Sends queued packets on its own thread, paced, within the airtime budget, until ACKed."""

    def __init__(
        self,
        queue: OutboxStore,
        send_reply: Callable[[Reply, int], int],
        send_board: Callable[[Outgoing], object],
        airtime: Callable[[Packet], float],
        budget: Budget,
        *,
        text_interval: float = MIN_TEXT_INTERVAL,
        timing: OutboxTiming | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._queue = queue
        self._send_reply = send_reply
        self._send_board = send_board
        self._airtime = airtime
        self._budget = budget
        self._text_interval = text_interval
        self._timing = timing or OutboxTiming()
        self._clock = clock
        self._replies: list[_Item] = []
        self._board: deque[_Item] = deque()
        self._by_packet: dict[int, _Item] = {}  # every attempt's packet id → its reply
        self._reports: deque[Delivery] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._free_at = 0.0  # clock.monotonic() when the air is ours again
        self._next_text_at = 0.0
        self._link_down = False
        self._link_retry_at = 0.0
        self._thread: threading.Thread | None = None
        self._crash: BaseException | None = None
        self.stats = OutboxStats()
        self._load()

    def put(self, packet: Packet) -> None:
        """Queue a packet; it is in the database before this returns."""
        queued = self._queue.add(packet, self._clock.now())
        item = _Item(queued.id, packet, self._airtime(packet), self._clock.monotonic())
        with self._changed:
            if isinstance(packet, Reply):
                self._replies.append(item)
            else:
                self._board.append(item)
            self._changed.notify_all()

    def report(self, delivery: Delivery) -> None:
        """The radio's ACK or NAK for a packet id (from any thread; handled on the outbox's)."""
        with self._changed:
            self._reports.append(delivery)
            self._changed.notify_all()

    def link_up(self) -> None:
        """The radio is connected (again): try what waits now, not at the next `link_retry`."""
        with self._changed:
            self._link_retry_at = 0.0
            self._changed.notify_all()

    @property
    def depth(self) -> int:
        with self._changed:
            return len(self._replies) + len(self._board)

    @property
    def replies_waiting(self) -> int:
        """Replies not yet settled: unsent, or sent and waiting for their ACK."""
        with self._changed:
            return len(self._replies)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop sending; with a drain timeout, first give unsent replies that long to go out.

        Nothing is lost either way: what is still queued is sent after the next start.
        """
        with self._changed:
            if self._thread is not None:
                self._changed.wait_for(
                    lambda: self._link_down or not any(r.attempts == 0 for r in self._replies),
                    timeout=drain_timeout,
                )
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._replies:
            logger.info("outbox stopped; %d replies wait for the next start", len(self._replies))

    # -- loading what an earlier run left ------------------------------------------------

    def _load(self) -> None:
        """Queue what the database holds: replies to send or to hear about, fresh sync packets.

        A reply handed to the radio before the restart waits `ack_timeout` for the ACK the
        radio may still deliver, rather than going out twice.
        """
        now, wall = self._clock.monotonic(), self._clock.now()
        for queued in self._queue.pending():
            age = (wall - queued.queued_at).total_seconds()
            if queued.kind == "board" and not 0 <= age <= self._timing.board_max_age:
                self._queue.remove(queued.id)  # a clock set back makes the age unknown: stale
                continue
            item = self._item(queued, now - max(0.0, age))
            if item.attempts:
                item.waiting_until = now + self._timing.ack_timeout
            for packet_id in item.packet_ids:
                self._by_packet[packet_id] = item
            (self._replies if queued.kind == "reply" else self._board).append(item)
        if self._replies or self._board:
            logger.info(
                "outbox: %d replies and %d board packets from before the start",
                len(self._replies),
                len(self._board),
            )

    def _item(self, queued: Queued, queued_at: float) -> _Item:
        return _Item(
            queued.id,
            queued.packet,
            self._airtime(queued.packet),
            queued_at,
            attempts=queued.attempts,
            packet_ids=list(queued.packet_ids),
        )

    # -- the outbox thread ---------------------------------------------------------------

    def check(self) -> None:
        """Raise if the outbox thread gave up: a board that cannot send must not look alive."""
        if self._crash is not None:
            raise RuntimeError("the outbox stopped sending") from self._crash

    def _run(self) -> None:
        """Do each step; survive a database that stays locked for a while, not a lasting fault.

        A step that fails leaves its packet queued, so it is tried again; at worst a packet
        that was sent before its row could be updated goes out twice. After MAX_STEP_FAILURES
        in a row the thread ends and `check()` tells the daemon, which exits for systemd to
        restart it, rather than serve on with replies piling up unseen.
        """
        failures = 0
        while (step := self._next_step()) is not None:
            try:
                self._do(step)
            except Exception as error:  # a locked or failing database, or a bug
                failures += 1
                if failures >= MAX_STEP_FAILURES:
                    logger.exception("outbox: %d failures in a row; it stops", failures)
                    self._crash = error
                    return
                logger.warning("outbox: %s; trying again in %.0f s", error, STEP_RETRY)
                with self._changed:
                    self._changed.wait_for(lambda: self._stopping, STEP_RETRY)
            else:
                failures = 0

    def _do(self, step: _Step) -> None:
        if step.kind == "report":
            assert step.delivery is not None
            self._on_delivery(step.delivery)
            return
        assert step.item is not None
        if step.kind == "expire":
            self._failed(step.item, "no answer")
        elif step.kind == "drop":
            self._drop(step.item, step.why)
        elif isinstance(step.item.packet, Reply):
            self._transmit_reply(step.item, step.item.packet)
        else:
            self._transmit_board(step.item, step.item.packet)

    def _next_step(self) -> _Step | None:
        """Block until there is something to do; None once stopping."""
        with self._changed:
            while not self._stopping:
                step, wait = self._pick(self._clock.monotonic())
                if step is not None:
                    return step
                self._changed.wait(self._clock.to_real(wait) if wait is not None else None)
            return None

    def _pick(self, now: float) -> tuple[_Step | None, float | None]:
        """What to do now, or how long to wait before looking again (None: until woken)."""
        if self._reports:
            return _Step("report", delivery=self._reports.popleft()), None
        timers: list[float] = []
        for item in self._replies:
            if item.waiting_until is not None:
                if item.waiting_until <= now:
                    return _Step("expire", item), None
                timers.append(item.waiting_until)
        gate = max(self._free_at, self._link_retry_at)
        # In the order they became ready: a retry (after its backoff) goes before replies that
        # came after it. Putting every first send first starved retries under steady load
        # until they were too old (bench/soak.py). An unreachable person still costs one
        # attempt per backoff, not a place at the head of the queue.
        ready = sorted(
            (r for r in self._replies if r.waiting_until is None and r.due <= now),
            key=lambda r: max(r.due, r.queued_at),
        )
        timers += [r.due for r in self._replies if r.waiting_until is None and r.due > now]
        if ready or self._board:
            timers.append(gate)
        if now >= gate and ready:
            item = ready[0]
            if now - item.queued_at > self._timing.reply_max_age:
                return _Step("drop", item, why="too old"), None
            if now < self._next_text_at:
                timers.append(self._next_text_at)
            elif self._budget.can_send(self._clock.now(), item.airtime, essential=True):
                return _Step("send", item), None
            else:
                timers.append(now + BUDGET_RECHECK)
        elif now >= gate and self._board:
            item = self._board[0]
            if now - item.queued_at > self._timing.board_max_age:
                return _Step("drop", item, why="stale"), None
            if not self._budget.can_send(self._clock.now(), item.airtime, essential=False):
                return _Step("drop", item, why="airtime budget or busy channel"), None
            return _Step("send", item), None
        future = [t for t in timers if t > now]
        return None, (min(future) - now) if future else None

    def _transmit_reply(self, item: _Item, reply: Reply) -> None:
        try:
            # Every attempt reuses the first one's packet id (0: let the client draw one).
            packet_id = self._send_reply(reply, item.packet_ids[0] if item.packet_ids else 0)
        except LinkDown as error:
            self._link_failed(error)
            return
        except LinkError as error:
            self._drop(item, str(error))
            return
        self._queue.sent(item.id, packet_id, self._clock.now())
        self._budget.record(self._clock.now(), item.airtime)
        self.stats.replies_sent += 1
        if reply.to == BROADCAST:  # no ACK will come: handed to the radio is done
            with self._changed:
                now = self._clock.monotonic()
                self._free_at = now + item.airtime
                self._next_text_at = now + max(self._text_interval, item.airtime)
            self._forget(item)
            return
        with self._changed:
            now = self._clock.monotonic()
            item.attempts += 1
            if packet_id not in item.packet_ids:
                item.packet_ids.append(packet_id)
            self._by_packet[packet_id] = item
            item.waiting_until = now + self._timing.ack_timeout
            self._free_at = now + item.airtime
            self._next_text_at = now + max(self._text_interval, item.airtime)
            self._link_up()
        logger.debug("reply to %s: attempt %d is packet %#x", item.to, item.attempts, packet_id)

    def _transmit_board(self, item: _Item, outgoing: Outgoing) -> None:
        try:
            self._send_board(outgoing)
        except LinkDown as error:
            self._link_failed(error)
            return
        except LinkError as error:
            self._drop(item, str(error))
            return
        self._queue.remove(item.id)
        self._budget.record(self._clock.now(), item.airtime)
        self.stats.board_sent += 1
        with self._changed:
            self._board.remove(item)
            self._free_at = self._clock.monotonic() + item.airtime
            self._link_up()

    def _on_delivery(self, delivery: Delivery) -> None:
        item = self._by_packet.get(delivery.packet_id)
        if item is None:
            logger.debug("report for packet %#x, not ours or settled", delivery.packet_id)
            return
        if delivery.acked:
            how = "relayed (recipient has not confirmed)" if delivery.implicit else "delivered"
            logger.info("reply to %s %s, attempt %d", item.to, how, item.attempts)
            self.stats.replies_delivered += 1
            self._forget(item)
        elif item.waiting_until is not None and delivery.packet_id == item.packet_ids[-1]:
            # Attempts share one id, so a NAK that outlived its attempt's ACK timeout ends the
            # current attempt early: a sooner retry, never a lost reply.
            self._failed(item, delivery.error)
        # else: a NAK for an earlier attempt (under another id), counted when it timed out

    def _failed(self, item: _Item, why: str) -> None:
        """An attempt ended without an ACK: try again after a backoff, or give up."""
        if item.attempts >= self._timing.attempts:
            logger.warning(
                "gave up a reply to %s after %d attempts (%s): %.60r",
                item.to,
                item.attempts,
                why,
                item.text,
            )
            self.stats.given_up += 1
            self._forget(item)
            return
        wait = self._timing.backoff_after(item.attempts)
        logger.info(
            "reply to %s not delivered (%s); attempt %d of %d in %.0f s",
            item.to,
            why,
            item.attempts + 1,
            self._timing.attempts,
            wait,
        )
        with self._changed:
            item.waiting_until = None
            item.due = self._clock.monotonic() + wait

    def _drop(self, item: _Item, why: str) -> None:
        if isinstance(item.packet, Reply):
            logger.warning("dropped a reply to %s (%s): %.60r", item.to, why, item.text)
            self.stats.given_up += 1
            self._forget(item)
            return
        logger.info("%s: dropped a board-plane packet", why)
        self.stats.board_dropped += 1
        self._queue.remove(item.id)
        with self._changed:
            self._board.remove(item)

    def _forget(self, item: _Item) -> None:
        """A reply is settled: out of the database, then out of memory."""
        self._queue.remove(item.id)
        with self._changed:
            self._replies.remove(item)
            for packet_id in item.packet_ids:
                self._by_packet.pop(packet_id, None)
            self._changed.notify_all()

    def _link_failed(self, error: LinkError) -> None:
        with self._changed:
            if not self._link_down:
                logger.warning(
                    "radio unreachable; %d packets stay queued: %s",
                    len(self._replies) + len(self._board),
                    error,
                )
            self._link_down = True
            self._link_retry_at = self._clock.monotonic() + self._timing.link_retry
            self._changed.notify_all()

    def _link_up(self) -> None:
        """Called with the lock held, after a packet went out."""
        if self._link_down:
            logger.info("radio reachable again")
        self._link_down = False
        self._changed.notify_all()
