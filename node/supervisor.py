"""Keeps a board node connected to its radio for months, through unplugs and reboots.

A radio goes away in three ways: the USB device disappears (cable bumped, radio rebooted), the
meshtastic client reports the connection lost, or the port stays open but the radio passes
nothing on (its serial API dropped the client). The supervisor notices each, closes the old
client so that none of its threads linger, and connects a fresh one, backing off exponentially
with jitter while the radio stays away. It never gives up: a board that exits on a radio fault
serves nobody until someone comes by.

A quiet mesh is not a dead radio: after `watchdog` seconds of silence the supervisor sends a
heartbeat, which the firmware answers with a QueueStatus (`PhoneAPI::handleToRadio`), and
reconnects only when that goes unanswered.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from node.clock import SYSTEM_CLOCK, Clock
from node.link import LinkDown, LinkError, LinkFactory, RadioLink, ReceiveHandler

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The firmware passes the client its own device telemetry every 60 s (DeviceTelemetryModule,
# sendToPhoneIntervalMs) besides every packet it hears: five missed reports mean the radio has
# stopped passing packets on, although the port is still open.
WATCHDOG = 300.0


@dataclass(frozen=True)
class SupervisorConfig:
    """Reconnect timing, in real seconds: a serial port does not run on simulated time."""

    first_delay: float = 1.0
    max_delay: float = 60.0
    watchdog: float | None = WATCHDOG  # None: trust a silent radio forever
    # Seconds to wait for the QueueStatus a heartbeat asks for: the radio answers within its
    # next loop, well under a second, even with a full TX queue.
    probe_timeout: float = 10.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after `failures` failed attempts in a row.

        Doubling up to a cap, and jittered so that boards that lost power together do not
        retry in step.
        """
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** min(failures - 1, 32))
        return ceiling * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class LinkHealth:
    """How the radio connection has fared, for the status command."""

    connected_since: datetime | None = None  # None while the radio is away
    reconnects: int = 0  # connections after the first one
    last_error: str | None = None
    last_error_at: datetime | None = None


class Supervisor:
    """Owns the daemon's radio link on a thread of its own: connects, watches, reconnects."""

    def __init__(
        self,
        connect: LinkFactory,
        on_receive: ReceiveHandler,
        *,
        on_up: Callable[[str], None],
        on_down: Callable[[str | None], None],
        config: SupervisorConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self._connect = connect
        self._on_receive = on_receive
        self._on_up = on_up
        self._on_down = on_down
        self.config = config or SupervisorConfig()
        self._clock = clock
        self._rng = rng or random.Random()
        self._changed = threading.Condition()
        self._link: RadioLink | None = None  # connected and serving
        self._connecting: RadioLink | None = None
        self._trouble: str | None = None  # why the current link must go
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._crash: BaseException | None = None
        self.health = LinkHealth()  # replaced whole, so readers see one consistent snapshot

    @property
    def connected(self) -> bool:
        with self._changed:
            return self._link is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="radio-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the link and end the thread, even during a handshake or a backoff."""
        with self._changed:
            self._stopping = True
            connecting = self._connecting
            self._changed.notify_all()
        if connecting is not None:
            connecting.close()  # ends a handshake the client would wait 30 s for
        if self._thread is not None:
            self._thread.join()

    def check(self) -> None:
        """Raise if the supervisor thread died of a bug: better a restart than a deaf board."""
        if self._crash is not None:
            raise RuntimeError("the radio supervisor failed") from self._crash

    def send(self, action: Callable[[RadioLink], T]) -> T:
        """Run `action` on the connected link; LinkDown (and a reconnect) if the radio is away."""
        with self._changed:
            link = self._link
        if link is None:
            raise LinkDown("the radio is not connected")
        try:
            return action(link)
        except LinkDown as error:
            self._report(link, str(error))
            raise

    # -- the supervisor thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._supervise()
        except BaseException as error:  # a bug (or the client's sys.exit): check() re-raises it
            self._crash = error
            logger.exception("radio supervisor failed")

    def _supervise(self) -> None:
        failures = 0
        lost_at: float | None = None
        while not self._is_stopping():
            opened = self._open()
            if opened is None:
                return  # stopping
            if isinstance(opened, str):
                failures += 1
                delay = self.config.delay(failures, self._rng)
                logger.warning(
                    "cannot reach the radio (attempt %d): %s; next attempt in %.1f s",
                    failures,
                    opened,
                    delay,
                )
                self._pause(delay)
                continue
            link, node_id = opened
            self._connected(node_id, failures, lost_at)
            failures = 0
            reason = self._watch(link)
            self._drop(link, reason)
            if reason is not None:
                lost_at = time.monotonic()
                logger.warning("lost the radio: %s; reconnecting", reason)

    def _open(self) -> tuple[RadioLink, str] | str | None:
        """A started link and its node id, or why there is none; None when stopping."""
        link = self._connect()
        with self._changed:
            if self._stopping:
                return None
            self._connecting = link
            self._trouble = None
        try:
            link.start(self._on_receive, lambda: self._report(link, "connection lost"))
            node_id = link.node_id
        except LinkError as error:
            if self._is_stopping():
                return None
            self._note_error(str(error))
            return str(error)
        finally:
            with self._changed:
                self._connecting = None
        with self._changed:
            if not self._stopping:
                self._link = link
                return link, node_id
        link.close()
        return None

    def _connected(self, node_id: str, failures: int, lost_at: float | None) -> None:
        self.health = replace(
            self.health,
            connected_since=self._clock.now(),
            reconnects=self.health.reconnects + (lost_at is not None),
        )
        if lost_at is not None:
            logger.info(
                "reconnected to radio %s after %d failed attempts, %.1f s without it",
                node_id,
                failures,
                time.monotonic() - lost_at,
            )
        self._on_up(node_id)

    def _watch(self, link: RadioLink) -> str | None:
        """Block while the link is healthy; return why it is not, or None when stopping."""
        watchdog = self.config.watchdog
        probed_at: float | None = None  # when a heartbeat went out, unanswered so far
        with self._changed:
            while True:
                if self._stopping:
                    return None
                if self._trouble is not None:
                    return self._trouble
                timeout = None
                if watchdog is not None:
                    now = time.monotonic()
                    silent = now - link.heard_at
                    if probed_at is not None and link.heard_at >= probed_at:
                        probed_at = None  # it answered: only the mesh was quiet
                    if probed_at is not None and now - probed_at >= self.config.probe_timeout:
                        return (
                            f"nothing heard from the radio for {silent:.1f} s, "
                            "and no answer to a heartbeat"
                        )
                    if probed_at is None and silent >= watchdog:
                        probed_at = now
                        problem = self._probe(link)
                        if problem is not None:
                            return problem
                    timeout = (
                        watchdog - silent
                        if probed_at is None
                        else probed_at + self.config.probe_timeout - time.monotonic()
                    )
                self._changed.wait(max(timeout, 0.01) if timeout is not None else None)

    def _probe(self, link: RadioLink) -> str | None:
        """Send a heartbeat (called with the lock held; the client's write does not wait on
        anything the lock guards); why the link is broken if it cannot even be sent."""
        logger.info("nothing heard from the radio for a while; asking it for a sign of life")
        try:
            link.probe()
        except LinkError as error:
            return f"cannot send the radio a heartbeat: {error}"
        return None

    def _drop(self, link: RadioLink, reason: str | None) -> None:
        with self._changed:
            self._link = None
        if reason is not None:
            self._note_error(reason)
        self._on_down(reason)
        self.health = replace(self.health, connected_since=None)
        link.close()

    def _pause(self, seconds: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._stopping, timeout=seconds)

    def _report(self, link: RadioLink, reason: str) -> None:
        """`link` is broken: if it is the current one, reconnect."""
        with self._changed:
            if link is not self._link and link is not self._connecting:
                return  # an old link's news
            if self._trouble is None:
                self._trouble = reason
            self._changed.notify_all()
            connecting = link is self._connecting
        if connecting:
            link.close()  # the client would wait 30 s for a handshake on a vanished port

    def _note_error(self, error: str) -> None:
        self.health = replace(self.health, last_error=error, last_error_at=self._clock.now())

    def _is_stopping(self) -> bool:
        with self._changed:
            return self._stopping
