"""The one queue every transmission of the board goes through, kept in the board's database.

Two kinds of packet leave a board: replies to people (text direct messages) and board-plane
packets (sync broadcasts). Each is written to the database (`board.store.outbox`) before it is
sent, so what a person waits for survives kill -9, a restart and a lost radio.

Replies go first, with want_ack, at least `text_interval` apart as the radio sees them: firmware
2.7 drops a text that comes less than 2 s after the last one it accepted
(`PhoneAPI::handleToRadioPacket`), so the pacing counts from the moment the client's write
returned, plus a margin. The radio answers each with a `Delivery`:

* an ACK, or an implicit ACK (a relay repeated it, so the firmware stopped retrying; counted as
  delivered, since a resend would reach most people twice): settled, whichever attempt it names;
* a refusal that means nothing went on air (`Delivery.on_air` is False: the text rate, the duty
  cycle, a full TX queue, no key for a PKI direct message): not an attempt; the same reply goes
  again after the pause the refusal calls for, ahead of the replies queued after it, so nothing
  is lost or reordered and nobody can be shown it twice;
* a NAK from the radio's own retries (MAX_RETRANSMIT, NO_RESPONSE, …), or no word within
  `ack_timeout` (well beyond the firmware's own three tries): a failed attempt, tried again after
  a backoff and given up, with a warning, after the last one.

Every attempt gets a fresh packet id: the firmware silently ignores an id among the last 20 the
client handed over (`PhoneAPI::wasSeenRecently`). The handheld's firmware therefore cannot tell
a resend from a new text, so a resend after an attempt that may have reached the person (its
ACK lost) could show it twice: such resends are counted in `OutboxStats.possible_duplicates`.
Every attempt waits for the text pacing and asks the airtime budget, exactly as the first does.

Board-plane packets need no ACK: they are deleted once handed to the radio, and dropped when the
budget denies them or they are older than `board_max_age`, since sync repairs what was not sent
and a stale announcement is worse than none. No packet follows the previous one sooner than the
previous one's airtime: the radio cannot send faster than the air carries.

While the radio cannot be reached (`LinkDown`) nothing is dropped and nothing counts as an
attempt: packets stay queued and the outbox tries again when the daemon calls `link_up()`, or
every `link_retry` seconds. A packet the link refuses outright (`LinkError`: it can never fit)
is dropped with a warning, so it cannot hold up the queue.

While the database cannot store (a full disk, a read-only file system), the outbox goes on from
memory: a new reply is kept in memory only, a new sync packet is dropped (digests repair it), and
what happened to a packet is not written down, with one warning. Nothing is sent twice for want
of a row update, and the outbox never stops for it; only a restart in that state may send a
reply again.

Whose reply goes next. Limits per sender (`board.ratelimit`) cannot stop a crowd of ids that each
send one command, and with one reply per 2.25 s a first-in-first-out queue made a neighbour wait
behind all of them (sixty spoofed ids: over two minutes). So replies are taken in turns:

* Round robin across destinations. Each sender with replies queued has a place in the rotation;
  the first sender in it with a reply ready sends one attempt and moves to the back. A sender's
  own replies keep their order (the oldest ready first: a retry, once its backoff is over, before
  the sender's replies that came after it; one in backoff lets those pass, as ever); a reply the
  radio refused takes its sender back to the front, as nothing went on air. A newcomer joins at
  the back, so it waits at most one reply from each sender already in the rotation.
* A cap on new senders: one the board has not answered (an ACK or a relay's) within
  `KNOWN_FOR` is new. New senders join the rotation at most NEW_SENDERS_BURST at once and then
  NEW_SENDERS_PER_MINUTE; the rest wait in the overflow, first come first let in as the cap
  allows. The overflow is never dropped and never waits on idle air: whenever no reply in the
  rotation is ready, the overflow's senders take turns in the same way. A known neighbour who
  writes after a crowd of first-time ids therefore waits behind the reply on air and one reply
  of each sender in the rotation (the people the board knows, and the few new ones the cap let
  in), not behind the crowd. Nobody is known after a restart (the record is in memory):
  reloaded replies queue as new senders, in their old order. The rule is about priority, not
  refusal: the per-sender limits (`board.ratelimit`) and the airtime budget still bound what
  anyone costs.
* The board plane's share: while replies wait, one board-plane packet may go after each reply
  attempt, and any that ends on air before the text pacing lets the next reply go. The 2 s rule
  binds TEXT_MESSAGE_APP packets only (`PhoneAPI::handleToRadioPacket`), so a board-plane packet
  fits in the gap the pacing leaves: replies lose at most the part of one packet's airtime that
  overruns it, and a crowd of replies cannot hold sync packets back until they are stale
  (`board_max_age`); a burst of sync packets delays a reply by at most one packet.

`Outbox.fifo` brings back the old order (oldest ready reply first, no cap) for the benchmark
that measures the difference (bench/crowd.py).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from board.messages import BROADCAST, Outgoing, Packet, Reply
from board.store.outbox import OutboxStore, Queued
from board.store.storage import STORAGE_ERRORS
from node.clock import SYSTEM_CLOCK, Clock
from node.link import NEVER_SENDABLE, Delivery, LinkDown, LinkError

logger = logging.getLogger(__name__)

#: The firmware's client text rate: a TEXT_MESSAGE_APP packet handed over less than 2 s after the
#: last accepted one is not sent (`PhoneAPI::handleToRadioPacket`, TWO_SECONDS_MS; v2.7.0+).
FIRMWARE_TEXT_INTERVAL = 2.0
#: Paced from the return of the client's write, which comes after the radio took the packet; the
#: margin covers a radio whose loop takes the next packet sooner after its arrival than this one.
TEXT_MARGIN = 0.25
MIN_TEXT_INTERVAL = FIRMWARE_TEXT_INTERVAL + TEXT_MARGIN
#: How long texts wait after the radio refused one for the duty cycle: its hourly budget frees
#: up slowly (`Router::send` gives "silent minutes"), and retrying sooner is refused again.
DUTY_CYCLE_PAUSE = 60.0
#: How long one person's reply waits when the radio holds no public key for them (a PKI direct
#: message cannot be made, and it is never sent in the clear instead). The daemon asks their
#: node for its NodeInfo, and `key_known` sends the reply as soon as the key arrives.
MISSING_KEY_WAIT = 60.0
BUDGET_RECHECK = 30.0  # seconds between looks at the budget while a reply waits for it
STEP_RETRY = 1.0  # real seconds before a step that failed (say, a locked database) is retried
MAX_STEP_FAILURES = 30  # in a row: longer than any lock a healthy board holds
#: A sender answered (an ACK, or a relay's implicit one) this recently is known: it joins the
#: rotation at once. An hour covers a person's session at the board, and the per-sender limits'
#: long bucket (`board.ratelimit.HANDHELD_RATES`).
KNOWN_FOR = 3600.0
#: New senders let into the rotation: a few at once, then one every 10 s. Texts leave at most
#: every 2.25 s, about 26 a minute, so while a crowd of first-time ids lasts three quarters of the
#: turns stay with the people the board knows, and a known sender waits behind at most three or
#: four of the crowd: about 10 s, where the target is 20 s.
NEW_SENDERS_BURST = 3
NEW_SENDERS_PER_MINUTE = 6.0

__all__ = [
    "KNOWN_FOR",
    "MIN_TEXT_INTERVAL",
    "NEW_SENDERS_BURST",
    "NEW_SENDERS_PER_MINUTE",
    "Outbox",
    "OutboxStats",
    "OutboxTiming",
    "Packet",
]


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


@dataclass
class _Admissions:
    """A token bucket in the clock's monotonic seconds: new senders let into the rotation."""

    burst: int = NEW_SENDERS_BURST
    every: float = 60.0 / NEW_SENDERS_PER_MINUTE
    tokens: float = float(NEW_SENDERS_BURST)
    at: float = 0.0

    def take(self, now: float) -> bool:
        """Spend a token if there is one; a clock that steps back counts as no time passing."""
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.at) / self.every)
        self.at = max(self.at, now)
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


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
    maybe_shown: bool = False  # an attempt may have reached the person (on air, not confirmed)
    needs_key: bool = False  # refused for want of the person's key: goes when it is learned

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
    refused_by_radio: int = 0  # attempts the radio did not send (rate, duty cycle, queue, key)
    possible_duplicates: int = 0  # resends after an attempt that may have reached the person
    board_sent: int = 0
    board_dropped: int = 0
    given_up: int = 0


class Outbox:
    """Sends queued packets on its own thread, paced, within the airtime budget, until ACKed."""

    def __init__(
        self,
        queue: OutboxStore,
        send_reply: Callable[[Reply], int],
        send_board: Callable[[Outgoing], object],
        airtime: Callable[[Packet], float],
        budget: Budget,
        *,
        text_interval: float = MIN_TEXT_INTERVAL,
        timing: OutboxTiming | None = None,
        clock: Clock = SYSTEM_CLOCK,
        on_missing_key: Callable[[Reply], None] | None = None,
    ) -> None:
        self._queue = queue
        self._on_missing_key = on_missing_key
        self._send_reply = send_reply
        self._send_board = send_board
        self._airtime = airtime
        self._budget = budget
        self._text_interval = text_interval
        self._timing = timing or OutboxTiming()
        self._clock = clock
        self._replies: list[_Item] = []
        self._board: deque[_Item] = deque()
        #: Whether replies are taken first-in-first-out, as before the rotation (for benchmarks).
        self.fifo = False
        self._rotation: deque[str] = deque()  # senders with replies queued, next turn first
        self._overflow: deque[str] = deque()  # new senders waiting to join it, first come first
        self._admissions = _Admissions(at=clock.monotonic())
        self._answered: OrderedDict[str, float] = OrderedDict()  # node id → last delivery
        self._board_turn = False  # a reply went last: a board-plane packet may go next
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
        self._memory_ids = 0  # items the database could not take have ids below 0
        self._unrecorded = False  # the database refused a record: warned once until it takes one
        self.stats = OutboxStats()
        self._load()

    def put(self, packet: Packet) -> None:
        """Queue a packet; it is in the database before this returns, or, while the database
        cannot store (a full disk), a reply is kept in memory only and a sync packet dropped
        (its neighbours' digests repair that)."""
        try:
            item_id = self._queue.add(packet, self._clock.now()).id
        except STORAGE_ERRORS as error:
            if not isinstance(packet, Reply):
                logger.info("dropped a board-plane packet: the database cannot store (%s)", error)
                self.stats.board_dropped += 1
                return
            logger.warning("a reply to %s is kept in memory only: %s", packet.to, error)
            with self._changed:
                self._memory_ids -= 1
                item_id = self._memory_ids
        item = _Item(item_id, packet, self._airtime(packet), self._clock.monotonic())
        with self._changed:
            if isinstance(packet, Reply):
                self._replies.append(item)
                self._enter(item.to, item.queued_at)
            else:
                self._board.append(item)
            self._changed.notify_all()

    def report(self, delivery: Delivery) -> None:
        """The radio's ACK or NAK for a packet id (from any thread; handled on the outbox's)."""
        with self._changed:
            self._reports.append(delivery)
            self._changed.notify_all()

    def key_known(self, node: str) -> None:
        """The radio learned `node`'s key: the replies that waited for it go now."""
        with self._changed:
            now = self._clock.monotonic()
            for item in self._replies:
                if item.needs_key and item.to == node:
                    item.needs_key = False
                    item.due = min(item.due, now)
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
                item.maybe_shown = True
            for packet_id in item.packet_ids:
                self._by_packet[packet_id] = item
            if queued.kind == "reply":
                self._replies.append(item)  # in the order they were queued
                self._enter(item.to, now)
            else:
                self._board.append(item)
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

    def run_due(self) -> float | None:
        """Do every step due now, on the caller's thread, for a caller that drives the outbox
        on a virtual clock instead of starting its thread (`node.demo.inprocess`). Returns the
        clock time to call again, or None when only a new packet or report can make work."""
        while True:
            with self._changed:
                now = self._clock.monotonic()
                step, wait = self._pick(now)
            if step is None:
                return None if wait is None else now + wait
            self._do(step)

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
        ready = [r for r in self._replies if r.waiting_until is None and r.due <= now]
        timers += [r.due for r in self._replies if r.waiting_until is None and r.due > now]
        if ready or self._board:
            timers.append(gate)
        board_now = bool(self._board) and (
            not ready
            or self._board_turn
            or now + self._board[0].airtime <= self._next_text_at  # fits in the pacing gap
        )
        if now >= gate and ready and not board_now:
            item = self._next_reply(ready, now)
            if now - item.queued_at > self._timing.reply_max_age:
                return _Step("drop", item, why="too old"), None
            if now < self._next_text_at:
                timers.append(self._next_text_at)
            elif self._budget.can_send(self._clock.now(), item.airtime, essential=True):
                return _Step("send", item), None
            else:
                timers.append(now + BUDGET_RECHECK)
        elif now >= gate and board_now:
            item = self._board[0]
            if now - item.queued_at > self._timing.board_max_age:
                return _Step("drop", item, why="stale"), None
            if not self._budget.can_send(self._clock.now(), item.airtime, essential=False):
                return _Step("drop", item, why="airtime budget or busy channel"), None
            return _Step("send", item), None
        future = [t for t in timers if t > now]
        return None, (min(future) - now) if future else None

    def _next_reply(self, ready: list[_Item], now: float) -> _Item:
        """The ready reply whose turn it is (the module docstring has the rules)."""

        def oldest(items: list[_Item]) -> _Item:
            # In the order they became ready: a retry (after its backoff) goes before replies
            # that came after it. Putting every first send first starved retries under steady
            # load until they were too old (bench/soak.py). An unreachable person still costs
            # one attempt per backoff, not a place at the head of the queue.
            return min(items, key=lambda r: (max(r.due, r.queued_at), r.id))

        if self.fifo:
            return oldest(ready)
        while self._overflow and self._admissions.take(now):
            self._rotation.append(self._overflow.popleft())
        by_sender: dict[str, list[_Item]] = {}
        for item in ready:
            by_sender.setdefault(item.to, []).append(item)
        for sender in itertools.chain(self._rotation, self._overflow):
            if sender in by_sender:  # the rotation's first; when none is ready, the overflow's
                return oldest(by_sender[sender])
        return oldest(ready)  # not reached: every sender with replies is in one or the other

    def _enter(self, sender: str, now: float) -> None:
        """A reply to `sender` was queued: give the sender a place, if it has none yet.

        Called with the lock held.
        """
        if sender in self._rotation or sender in self._overflow:
            return
        answered = self._answered.get(sender)
        known = sender == BROADCAST or (answered is not None and now - answered <= KNOWN_FOR)
        if self.fifo or known or (not self._overflow and self._admissions.take(now)):
            self._rotation.append(sender)
            return
        if not self._overflow:
            logger.info(
                "outbox: new senders beyond the cap (%d at once, %g a minute): %s and later ones "
                "are answered when the people the board knows have had their turns",
                NEW_SENDERS_BURST,
                NEW_SENDERS_PER_MINUTE,
                sender,
            )
        self._overflow.append(sender)

    def _took_turn(self, sender: str) -> None:
        """An attempt of a reply to `sender` was handed over: to the back of its line.

        A sender served from the overflow stays there: only the cap lets new senders into the
        rotation, or ids that each send several commands would all be in it soon.
        """
        line = self._overflow if sender in self._overflow else self._rotation
        if sender in line:
            line.remove(sender)
        line.append(sender)
        self._board_turn = True

    def _leave_if_done(self, sender: str) -> None:
        """Called with the lock held, after a reply to `sender` was settled."""
        if not any(r.to == sender for r in self._replies):
            for line in (self._rotation, self._overflow):
                if sender in line:
                    line.remove(sender)

    def _transmit_reply(self, item: _Item, reply: Reply) -> None:
        try:
            packet_id = self._send_reply(reply)  # a fresh id every attempt
        except LinkDown as error:
            self._link_failed(error)
            return
        except LinkError as error:
            self._drop(item, str(error))
            return
        self._record(self._queue.sent, item.id, packet_id, self._clock.now())
        self._record_airtime(item.airtime)
        self.stats.replies_sent += 1
        if reply.to == BROADCAST:  # no ACK will come: handed to the radio is done
            with self._changed:
                self._took_turn(reply.to)
                now = self._clock.monotonic()
                self._free_at = now + item.airtime
                self._next_text_at = now + max(self._text_interval, item.airtime)
            self._forget(item)
            return
        if item.maybe_shown:
            self.stats.possible_duplicates += 1
            logger.info("reply to %s sent again; it may be shown twice: %.60r", item.to, item.text)
        with self._changed:
            self._took_turn(reply.to)
            now = self._clock.monotonic()
            item.attempts += 1
            item.maybe_shown = True
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
        self._record(self._queue.remove, item.id)
        self._record_airtime(item.airtime)
        self.stats.board_sent += 1
        with self._changed:
            self._board.remove(item)
            self._free_at = self._clock.monotonic() + item.airtime
            self._board_turn = False
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
            with self._changed:
                self._answered[item.to] = self._clock.monotonic()
                self._answered.move_to_end(item.to)
                while next(iter(self._answered.values())) < self._answered[item.to] - KNOWN_FOR:
                    self._answered.popitem(last=False)
            self._forget(item)
        elif delivery.packet_id != item.packet_ids[-1] or item.waiting_until is None:
            pass  # a NAK for an earlier attempt, counted when it timed out
        elif not delivery.on_air:
            self._refused(item, delivery)
        else:
            self._failed(item, delivery.error)

    def _refused(self, item: _Item, delivery: Delivery) -> None:
        """The radio did not send the current attempt: it does not count, and goes again.

        A refusal about the radio (its text rate, duty cycle or queue) holds every text back,
        and this one goes first after the pause; a missing key holds back only this person's.
        """
        error = delivery.error
        if error in NEVER_SENDABLE:
            self._drop(item, f"the radio cannot send it: {error}")
            return
        self._record(self._queue.refused, item.id, delivery.packet_id)
        self.stats.refused_by_radio += 1
        now = self._clock.monotonic()
        hold = {
            "RATE_LIMIT_EXCEEDED": self._text_interval,
            "DUTY_CYCLE_LIMIT": DUTY_CYCLE_PAUSE,
        }.get(error, self._text_interval)
        own_wait = MISSING_KEY_WAIT if error.startswith("PKI_") else 0.0
        needs_key = error == "PKI_SEND_FAIL_PUBLIC_KEY" and isinstance(item.packet, Reply)
        logger.info(
            "the radio refused a reply to %s (%s); it goes again in %.0f s",
            item.to,
            error,
            own_wait or hold,
        )
        with self._changed:
            item.attempts -= 1
            item.maybe_shown = item.attempts > 0
            item.waiting_until = None
            item.needs_key = needs_key  # never sent in the clear instead: it waits for the key
            if own_wait:
                item.due = now + own_wait
            else:  # `due` as it was, its sender first: the reply keeps its place in the order
                self._next_text_at = max(self._next_text_at, now + hold)
                for line in (self._rotation, self._overflow):
                    if item.to in line:
                        line.remove(item.to)
                        line.appendleft(item.to)
        if needs_key and self._on_missing_key is not None and isinstance(item.packet, Reply):
            self._on_missing_key(item.packet)  # ask the person's node for its key

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
        self._record(self._queue.remove, item.id)
        with self._changed:
            self._board.remove(item)

    def _forget(self, item: _Item) -> None:
        """A reply is settled: out of the database, then out of memory."""
        self._record(self._queue.remove, item.id)
        with self._changed:
            self._replies.remove(item)
            self._leave_if_done(item.to)
            for packet_id in item.packet_ids:
                self._by_packet.pop(packet_id, None)
            self._changed.notify_all()

    def _record(self, change: Callable[..., object], item_id: int, *args: object) -> None:
        """Write what happened to a queued packet. A database that cannot store must not make
        the outbox send a reply twice or stop: memory goes on, and a restart in that state may
        send a reply again (counted as a possible duplicate then)."""
        if item_id < 0:
            return  # kept in memory only
        try:
            change(item_id, *args)
        except STORAGE_ERRORS as error:
            if not self._unrecorded:
                logger.warning("outbox: cannot record in the database (%s); going on", error)
            self._unrecorded = True
        else:
            self._unrecorded = False

    def _record_airtime(self, seconds: float) -> None:
        try:
            self._budget.record(self._clock.now(), seconds)
        except STORAGE_ERRORS as error:
            logger.info("airtime of %.1f s not recorded: %s", seconds, error)

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
