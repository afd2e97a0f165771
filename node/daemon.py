"""The board node daemon: radio in, `board/` decides, outbox out.

The link calls back on the meshtastic client's threads; the daemon only queues what it hears
there and does all the work on the thread that calls `run()`, so the store, the command handler
and the sync engine are never used from two threads at once.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from datetime import datetime, timedelta

from board.airtime import AirtimeBudget, estimate_airtime
from board.commands import BoardConfig, CommandHandler, Inbound, Reply
from board.outbox_store import OutboxStore
from board.ratelimit import BOARD_RATES, HANDHELD_RATES, RateLimiter
from board.store import Store
from board.sync.engine import Outgoing, SyncConfig, SyncEngine, SyncStats
from node.clock import SYSTEM_CLOCK, Clock
from node.health import Health
from node.link import (
    Delivery,
    LinkError,
    RadioLink,
    RadioMetrics,
    Received,
    ReceivedBoardPacket,
    ReceivedText,
)
from node.outbox import MIN_TEXT_INTERVAL, Outbox, OutboxTiming, Packet

logger = logging.getLogger(__name__)

PURGE_EVERY = timedelta(minutes=10)
_MAX_REAL_WAIT = 0.5  # real seconds between looks at the stop event while idle


def packet_airtime(packet: Packet) -> float:
    """Estimated seconds on air for what the outbox is about to send."""
    size = len(packet.text.encode("utf-8")) if isinstance(packet, Reply) else len(packet.payload)
    return estimate_airtime(size)


class Daemon:
    """Serves handheld commands and keeps the board in sync with its neighbours until stopped."""

    def __init__(
        self,
        link: RadioLink,
        store: Store,
        handler: CommandHandler,
        sync: SyncEngine,
        budget: AirtimeBudget,
        *,
        text_interval: float = MIN_TEXT_INTERVAL,
        outbox_timing: OutboxTiming | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._link = link
        self._store = store
        self._handler = handler
        self._sync = sync
        self._budget = budget
        self._clock = clock
        self._inbound: queue.Queue[Received] = queue.Queue()
        self.outbox_interval = text_interval
        self.outbox = Outbox(
            OutboxStore(store),
            self._send_reply,
            self._send_board,
            packet_airtime,
            budget,
            text_interval=text_interval,
            timing=outbox_timing,
            clock=clock,
        )
        self.connected = threading.Event()
        self._lost = threading.Event()
        # Health: what `meshboard status` shows; the CLI decides where it is written.
        self.health = Health(clock=clock)
        self.health.probe("outbox_depth", lambda: self.outbox.depth)

    @classmethod
    def assemble(
        cls,
        link: RadioLink,
        store: Store,
        *,
        board: BoardConfig | None = None,
        sync: SyncConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        seed: int | None = None,
        text_interval: float = MIN_TEXT_INTERVAL,
        outbox_timing: OutboxTiming | None = None,
    ) -> Daemon:
        """A daemon with the standard parts, as `meshboard run`, the demo and the tests use.

        Every sender gets a fair share: handhelds and neighbouring boards are rate-limited.
        """
        return cls(
            link,
            store,
            CommandHandler(store, board or BoardConfig(), limiter=RateLimiter(HANDHELD_RATES)),
            SyncEngine(
                store, sync or SyncConfig(), random.Random(seed), limiter=RateLimiter(BOARD_RATES)
            ),
            AirtimeBudget.load(store, clock.now()),
            text_interval=text_interval,
            outbox_timing=outbox_timing,
            clock=clock,
        )

    @property
    def sync_stats(self) -> SyncStats:
        """What the board plane has heard, stored and dropped (hostile input is counted here)."""
        return self._sync.stats

    def run(self, stop: threading.Event) -> None:
        """Connect, serve until `stop` is set, then close the link.

        Raises LinkError when the radio cannot be opened or goes away: until the connection
        supervisor exists, exiting lets systemd restart the daemon (Restart=on-failure).
        """
        started = time.monotonic()
        self._link.start(self._inbound.put, self._on_lost)
        self.node_id = self._link.node_id
        self.connected.set()
        self.health.connected(self.node_id)
        logger.info(
            "board %s serving (connected in %.2f s)", self.node_id, time.monotonic() - started
        )
        self.outbox.start()
        self._sync.start(self._clock.now(), self.node_id)
        next_purge = self._clock.now()
        try:
            while not stop.is_set():
                if self._lost.is_set():
                    raise LinkError("lost the radio; exiting so the service manager restarts us")
                now = self._clock.now()
                if now >= next_purge:
                    self._purge(now)
                    next_purge = now + PURGE_EVERY
                for outgoing in self._sync.poll(now):
                    self.outbox.put(outgoing)
                try:
                    received = self._inbound.get(timeout=self._idle_wait(now, next_purge))
                except queue.Empty:
                    continue
                self._dispatch(received)
        finally:
            self.outbox.stop(drain_timeout=5.0)
            self._link.close()
            self.connected.clear()
            logger.info("board stopped")

    def _idle_wait(self, now: datetime, next_purge: datetime) -> float:
        wake = min(filter(None, (self._sync.next_wakeup(), next_purge)))
        return min(_MAX_REAL_WAIT, self._clock.to_real((wake - now).total_seconds()))

    def _dispatch(self, received: Received) -> None:
        now = self._clock.now()
        if not isinstance(received, RadioMetrics):  # metrics come from our own radio
            self.health.heard()
        if isinstance(received, ReceivedText):
            self._serve(received, now)
        elif isinstance(received, ReceivedBoardPacket):
            self._sync.receive(received.payload, received.channel, received.sender, now)
        elif isinstance(received, Delivery):
            self.outbox.report(received)
        elif isinstance(received, RadioMetrics):
            self._budget.note_channel_utilisation(now, received.channel_utilization)

    def _serve(self, received: ReceivedText, now: datetime) -> None:
        outcome = self._handler.handle(
            Inbound(
                sender=received.sender,
                ring=received.channel,
                text=received.text,
                direct=received.direct,
                now=now,
            )
        )
        for reply in outcome.replies:
            self.outbox.put(reply)
        for bulletin in outcome.posted:
            self._sync.local_bulletin(bulletin, now)
        for bulletin_id in outcome.deleted:
            self._sync.local_tombstone(bulletin_id, now)

    def _send_reply(self, reply: Reply) -> int:
        return self._link.send_text(reply.text, reply.to, reply.ring)

    def _send_board(self, outgoing: Outgoing) -> None:
        self._link.send_board(outgoing.payload, outgoing.ring)

    def _purge(self, now: datetime) -> None:
        removed = self._store.purge_expired(now)
        if removed:
            logger.info("purged %d expired bulletins", removed)

    def _on_lost(self) -> None:
        self.connected.clear()
        self.health.disconnected("lost the radio")
        self._lost.set()
