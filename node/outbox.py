"""The one queue every transmission of the board goes through.

Firmware 2.7 silently drops texts that follow each other faster than about 1.5 s, so the outbox
paces them; a failed send is retried a few times before it is given up with a log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from board.commands import Reply
from node.link import LinkError

logger = logging.getLogger(__name__)

MIN_TEXT_INTERVAL = 1.5  # seconds between texts (DESIGN.md, firmware 2.7 text rate)
MAX_ATTEMPTS = 3


@dataclass
class _Queued:
    reply: Reply
    attempts: int = 0


class Outbox:
    """Sends queued replies on its own thread, at least `min_interval` seconds apart."""

    def __init__(
        self,
        send: Callable[[Reply], object],
        *,
        min_interval: float = MIN_TEXT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._min_interval = min_interval
        self._clock = clock
        self._queue: deque[_Queued] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._last_sent: float | None = None
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.given_up = 0

    def put(self, reply: Reply) -> None:
        with self._changed:
            self._queue.append(_Queued(reply))
            self._changed.notify_all()

    @property
    def depth(self) -> int:
        with self._changed:
            return len(self._queue)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop sending; with a drain timeout, first give queued replies that long to go out."""
        deadline = self._clock() + drain_timeout
        with self._changed:
            self._changed.wait_for(
                lambda: not self._queue, timeout=max(0.0, deadline - self._clock())
            )
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._queue:
            logger.warning("outbox stopped with %d replies unsent", len(self._queue))

    def wait_empty(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue, timeout)

    def _run(self) -> None:
        while (item := self._next_due()) is not None:
            self._transmit(item)

    def _next_due(self) -> _Queued | None:
        """Block until the head of the queue may go out; None once stopping."""
        with self._changed:
            while not self._stopping:
                if not self._queue:
                    self._changed.wait()
                    continue
                pause = self._pause_left()
                if pause <= 0:
                    return self._queue[0]
                self._changed.wait(pause)
            return None

    def _pause_left(self) -> float:
        if self._last_sent is None:
            return 0.0
        return self._last_sent + self._min_interval - self._clock()

    def _transmit(self, item: _Queued) -> None:
        item.attempts += 1
        try:
            self._send(item.reply)
        except LinkError as error:
            done = item.attempts >= MAX_ATTEMPTS
            logger.warning(
                "sending to %s failed (attempt %d of %d): %s",
                item.reply.to,
                item.attempts,
                MAX_ATTEMPTS,
                error,
            )
            if done:
                self.given_up += 1
                logger.error("gave up a reply to %s: %r", item.reply.to, item.reply.text)
        else:
            done = True
            self.sent += 1
        with self._changed:
            self._last_sent = self._clock()
            if done:
                self._queue.popleft()
            self._changed.notify_all()
