"""The Trickle timer of RFC 6206: talk fast when neighbours disagree, almost never when they agree.

One timer per ring paces that ring's digests. Pure: times are float seconds passed in, randomness
comes from an injected `random.Random`, so a simulation replays exactly.
"""

from __future__ import annotations

import math
import random


class Trickle:
    """RFC 6206 section 4, with `imax` in seconds rather than as a number of doublings.

    Each interval of length I picks t uniformly in [I/2, I) (the second half, which fixes the
    short-listen problem); at t it transmits unless it heard `k` consistent messages since the
    interval began. When an interval ends, I doubles up to `imax`. Hearing an inconsistency
    shrinks I back to `imin` (unless it already is imin) and starts a new interval.
    """

    def __init__(self, imin: float, imax: float, k: int, rng: random.Random) -> None:
        if not 0 < imin <= imax or k < 1:
            raise ValueError("Trickle needs 0 < imin <= imax and k >= 1")
        self.imin = imin
        self.imax = imax
        self.k = k
        self._rng = rng
        self.interval = imin
        self._begin = 0.0
        self._t = 0.0
        self._c = 0
        self._fired = True
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def counter(self) -> int:
        return self._c

    def start(self, now: float) -> None:
        """Begin at imin: a board that just (re)started asks its neighbours soon."""
        self.interval = self.imin
        self._running = True
        self._new_interval(now)

    def heard_consistent(self) -> None:
        self._c += 1

    def heard_inconsistent(self, now: float) -> None:
        """Reset to imin, unless already there (RFC 6206 section 4.2, rule 6)."""
        if not self._running:
            return
        if self.interval > self.imin:
            self.interval = self.imin
            self._new_interval(now)

    def hurry(self, now: float, within: float) -> None:
        """Compare notes within `within` seconds: news passed through, and a neighbour that
        lost its packet cannot know it (nothing it hears disagrees). If this interval's
        transmission is later than that, a fresh interval of length `within` starts now and
        doubles from there as usual; a shorter one is left alone. Not in RFC 6206, whose only
        reset is to imin; this one costs a digest per neighbourhood, not a burst of them.
        """
        if not self._running or within >= self.interval:
            return
        if self._fired or self._t > now + within:
            self.interval = max(self.imin, within)
            self._new_interval(now)

    def should_transmit(self, now: float, *, force: bool = False) -> bool:
        """True once per interval, at or after t, if fewer than k consistent messages were heard
        (or, with `force`, regardless of them).

        A poll that comes late (after the interval ended) still decides for that interval once;
        intervals slept through entirely are skipped, never sent in a burst.
        """
        if not self._running:
            return False
        if now < self._begin:  # the clock went back: start this interval again from now
            self._new_interval(now)
        transmit = False
        if not self._fired and now >= self._t:
            self._fired = True
            transmit = force or self._c < self.k
        if now >= self._begin + self.interval:
            self._advance(now)
            if self._t <= now:
                self._fired = True
        return transmit

    def next_event(self) -> float | None:
        """When `should_transmit` next has something to decide (t, or the interval's end)."""
        if not self._running:
            return None
        return self._begin + self.interval if self._fired else self._t

    def _new_interval(self, begin: float) -> None:
        self._begin = begin
        self._t = begin + self._rng.uniform(self.interval / 2, self.interval)
        self._c = 0
        self._fired = False

    def _advance(self, now: float) -> None:
        while now >= self._begin + self.interval:
            end = self._begin + self.interval
            self.interval = min(self.interval * 2, self.imax)
            if self.interval == self.imax and now >= end + self.imax:
                # Slept through whole intervals (a long gap): skip them arithmetically.
                end += math.floor((now - end) / self.imax) * self.imax
            self._new_interval(end)
