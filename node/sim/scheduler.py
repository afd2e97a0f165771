"""One thread that runs timed callbacks in a `Clock`'s simulated time.

The simulated mesh is a discrete-event simulation fed by real clients: packets arrive from pty
radios whenever their clients write, and everything after that (airtime, contention delays,
retransmission timers) is a timer on this scheduler. Callbacks run one at a time while holding
`lock`, and so does every public call into the mesh, so the mesh state needs no other locking.

On a `VirtualClock` there is no thread: the caller runs the timers with `run_until`, and the
clock jumps from one to the next. Everything then happens on the caller's thread, in time
order, so a run replays exactly from its seed (benches of many in-process boards use this).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from node.clock import Clock, VirtualClock

logger = logging.getLogger(__name__)


@dataclass(order=True)
class Timer:
    """A scheduled callback; `cancel()` it any time before it runs."""

    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    background: bool = field(default=False, compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """A heap of timers in simulated seconds, run by one daemon thread."""

    def __init__(self, clock: Clock, name: str = "mesh-scheduler") -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._now = 0.0
        self._busy = False
        self._stopped = False
        self.errors: list[BaseException] = []
        self._thread: threading.Thread | None = None
        if not isinstance(clock, VirtualClock):
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def now(self) -> float:
        """Simulated seconds; never runs backwards. Inside a callback it is the callback's own
        scheduled time, so a late-running thread does not shift what the callback computes."""
        with self.lock:
            if not self._busy:
                self._now = max(self._now, self.clock.monotonic())
            return self._now

    def at(self, when: float, callback: Callable[[], None], *, background: bool = False) -> Timer:
        """Run `callback` at simulated time `when`. Background timers (periodic reports) do
        not keep `wait_idle` waiting."""
        timer = Timer(when, next(self._seq), callback, background)
        with self.lock:
            heapq.heappush(self._heap, timer)
            self._changed.notify_all()
        return timer

    def after(
        self, delay: float, callback: Callable[[], None], *, background: bool = False
    ) -> Timer:
        return self.at(self.now() + max(0.0, delay), callback, background=background)

    def idle(self) -> bool:
        """No callback running and none waiting, apart from background ones."""
        with self.lock:
            return not self._busy and all(t.cancelled or t.background for t in self._heap)

    def wait_idle(self, timeout: float) -> bool:
        """Block (real seconds) until `idle()`; False on timeout."""
        with self._changed:
            return self._changed.wait_for(self.idle, timeout)

    def run_until(self, until: float) -> None:
        """On a virtual clock: run every timer due by `until` in time order, moving the clock
        to each, then move it to `until`. A callback's error is raised here, at once."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise RuntimeError("run_until drives a virtual clock; this scheduler has a thread")
        with self.lock:
            while self._heap and self._heap[0].when <= until and not self._stopped:
                timer = heapq.heappop(self._heap)
                if timer.cancelled:
                    continue
                clock.advance_to(timer.when)
                self._now = max(self._now, timer.when)
                self._busy = True
                try:
                    timer.callback()
                finally:
                    self._busy = False
            clock.advance_to(until)
            self._now = max(self._now, until)

    def stop(self) -> None:
        with self.lock:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with self.lock:
            while not self._stopped:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                    self._changed.notify_all()
                if not self._heap:
                    self._changed.wait()
                    continue
                due = self._heap[0].when
                wait = due - self.clock.monotonic()
                if wait > 0:
                    self._changed.wait(self.clock.to_real(wait))
                    continue
                timer = heapq.heappop(self._heap)
                self._now = max(self._now, timer.when)
                self._busy = True
                try:
                    timer.callback()
                except Exception as error:  # a thread boundary: keep it for close() to raise
                    logger.exception("mesh callback failed")
                    self.errors.append(error)
                finally:
                    self._busy = False
                    self._changed.notify_all()
