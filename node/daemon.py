"""The board node daemon: radio in, `board/` decides, outbox out.

The link calls back on the meshtastic client's threads; the daemon only queues what it hears
there and does all the work on the thread that calls `run()`, so the store and the command
handler are never used from two threads at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from board.commands import CommandHandler, Inbound, Reply
from board.store import Store
from node.link import LinkError, RadioLink, ReceivedText
from node.outbox import MIN_TEXT_INTERVAL, Outbox

logger = logging.getLogger(__name__)

PURGE_EVERY = timedelta(minutes=10)
_POLL_SECONDS = 0.5  # how often run() looks at the stop event while idle


def utc_now() -> datetime:
    return datetime.now(UTC)


class Daemon:
    """Serves handheld commands on one radio link until stopped."""

    def __init__(
        self,
        link: RadioLink,
        store: Store,
        handler: CommandHandler,
        *,
        text_interval: float = MIN_TEXT_INTERVAL,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._link = link
        self._store = store
        self._handler = handler
        self._clock = clock
        self._inbound: queue.Queue[ReceivedText] = queue.Queue()
        self.outbox_interval = text_interval
        self.outbox = Outbox(self._transmit, min_interval=text_interval)
        self.connected = threading.Event()
        self._lost = threading.Event()
        self.handled = 0

    def run(self, stop: threading.Event) -> None:
        """Connect, serve until `stop` is set, then close the link.

        Raises LinkError when the radio cannot be opened or goes away: until the connection
        supervisor exists, exiting lets systemd restart the daemon (Restart=on-failure).
        """
        started = time.monotonic()
        self._link.start(self._inbound.put, self._on_lost)
        self.connected.set()
        logger.info(
            "board %s serving (connected in %.2f s)", self._link.node_id, time.monotonic() - started
        )
        self.outbox.start()
        next_purge = self._clock()
        try:
            while not stop.is_set():
                if self._lost.is_set():
                    raise LinkError("lost the radio; exiting so the service manager restarts us")
                if self._clock() >= next_purge:
                    self._purge()
                    next_purge = self._clock() + PURGE_EVERY
                try:
                    received = self._inbound.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                self._serve(received)
        finally:
            self.outbox.stop(drain_timeout=5.0)
            self._link.close()
            self.connected.clear()
            logger.info("board stopped")

    def _serve(self, received: ReceivedText) -> None:
        inbound = Inbound(
            sender=received.sender,
            ring=received.channel,
            text=received.text,
            direct=received.direct,
            now=self._clock(),
        )
        outcome = self._handler.handle(inbound)
        replies = outcome.replies
        self.handled += 1
        logger.debug(
            "%s on ring %d: %r → %d replies",
            received.sender,
            received.channel,
            received.text,
            len(replies),
        )
        for reply in replies:
            self.outbox.put(reply)

    def _transmit(self, reply: Reply) -> None:
        self._link.send_text(reply.text, reply.to, reply.ring)

    def _purge(self) -> None:
        removed = self._store.purge_expired(self._clock())
        if removed:
            logger.info("purged %d expired bulletins", removed)

    def _on_lost(self) -> None:
        self.connected.clear()
        self._lost.set()
