"""Time for the shell, optionally running faster than real time.

A simulated neighbourhood counts LoRa airtime and Trickle intervals in simulated seconds while
the test waits only a fraction of that: every component of one simulation shares one `Clock`
with the same `speed`. In production `speed` is 1 and the clock is the system's.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall time and monotonic seconds, `speed` times faster than real time."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        # (real origin, speed) change together, so readers on other threads see one or the other.
        self._rate = (time.monotonic(), speed)
        self._wall_origin = start or datetime.now(UTC)
        # At real speed with no fixed start, follow the system clock (NTP, GPS fixes).
        self._follows_system = speed == 1.0 and start is None

    @property
    def speed(self) -> float:
        return self._rate[1]

    def set_speed(self, speed: float) -> None:
        """Run faster or slower from now on, without a jump in this clock's time.

        Only slowing down is safe while others wait on this clock: a wait computed at the old
        speed then ends early and is recomputed, where speeding up would make it end late.
        """
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        if self._follows_system:
            raise ValueError("a clock that follows the system's cannot change speed")
        elapsed = self.monotonic()
        self._rate = (time.monotonic() - elapsed / speed, speed)

    def monotonic(self) -> float:
        """Seconds of this clock's time since it was made."""
        origin, speed = self._rate
        return (time.monotonic() - origin) * speed

    def now(self) -> datetime:
        """The current UTC time as this clock sees it."""
        if self._follows_system:
            return datetime.now(UTC)
        return self._wall_origin + timedelta(seconds=self.monotonic())

    def seconds_at(self, moment: datetime) -> float:
        """This clock's `monotonic()` reading when `now()` showed `moment`.

        Turns a time someone stored (a database's received_at) back into the simulated
        seconds the mesh counts in. Exact for a simulated clock; a clock that follows the
        system's wall time has no fixed relation between the two.
        """
        if self._follows_system:
            raise ValueError("a clock that follows the system's has no fixed wall origin")
        return (moment - self._wall_origin).total_seconds()

    def to_real(self, seconds: float) -> float:
        """How many real seconds `seconds` of this clock's time take."""
        return max(0.0, seconds) / self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(self.to_real(seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait for `event` at most `seconds` of this clock's time."""
        return event.wait(self.to_real(seconds))


SYSTEM_CLOCK = Clock()


class VirtualClock(Clock):
    """Time that moves only when a discrete-event loop moves it (`advance_to`).

    Nothing waits in real time, so hours of a simulated town run in minutes. Only for code
    driven from one thread by a scheduler (`node.sim.scheduler.Scheduler.run_until`): anything
    that would sleep or wait on it is a mistake, and raises rather than spinning.
    """

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__(1.0, start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
        self._at = 0.0

    def advance_to(self, seconds: float) -> None:
        """Move to `seconds` (this clock's time); never backwards."""
        self._at = max(self._at, seconds)

    def set_speed(self, speed: float) -> None:
        raise ValueError("a virtual clock has no speed: it moves when its scheduler moves it")

    def monotonic(self) -> float:
        return self._at

    def to_real(self, seconds: float) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("nothing may sleep on a virtual clock; schedule a timer instead")

    def wait(self, event: threading.Event, seconds: float) -> bool:
        raise RuntimeError("nothing may wait on a virtual clock; schedule a timer instead")
