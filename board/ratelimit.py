"""Fair share: per-sender token buckets, so that no one sender spends the board's airtime.

EU_868 allows a radio 360 s of air an hour and the board answers every command it serves, so a
handheld that sends a command a second, or a board that ignores its own budget, would take the air
that everyone else relies on. Each sender has buckets of tokens that refill at a steady rate; a
message finding any bucket empty is refused. The sender is told once per stretch of refusals
(the telling costs airtime too), and hears nothing more until a message is allowed again.

Pure: the caller passes the time in. A clock that steps back counts as no time passing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Rate:
    """`burst` messages at once, then one more every `every`."""

    burst: int
    every: timedelta

    def __post_init__(self) -> None:
        if self.burst < 1 or self.every <= timedelta(0):
            raise ValueError("a rate needs a burst of at least 1 and a positive interval")


#: Handhelds. A person browsing (help, list, more, more, read) never notices the first bucket;
#: after five quick commands it allows one per 10 s, slower than the 1.5 s reply pacing, so one
#: sender never has more than a few replies queued ahead of anyone else. The second bucket caps
#: what one handheld can cost in an hour: 60 commands in the first hour and 30 an hour after
#: that, so at most about 57 s of air an hour even if every reply is a full 200-byte packet
#: (1.9 s on LongFast), a sixth of the legal 360 s.
HANDHELD_RATES: tuple[Rate, ...] = (
    Rate(5, timedelta(seconds=10)),
    Rate(30, timedelta(minutes=2)),
)

#: Boards, generously. A board that keeps to its own 5 % board-plane budget (180 s an hour) sends
#: at most about 410 packets an hour even if all are the shortest (0.44 s on LongFast); 100 at
#: once and one every 4 s (900 an hour) is more than twice that, so only a board that ignores its
#: budget, or a flood of forged packets, is ever held back.
BOARD_RATES: tuple[Rate, ...] = (Rate(100, timedelta(seconds=4)),)

#: Senders remembered at most; the least recently heard are forgotten first (they start again
#: with full buckets, which is what a sender idle that long would have anyway).
MAX_SENDERS = 4096


@dataclass(frozen=True)
class Verdict:
    """What to do with one message."""

    allowed: bool
    #: The first refusal since the sender was last allowed: the one time to tell them.
    first_refusal: bool = False
    #: How long until a message would be allowed again (zero when allowed now).
    retry_after: timedelta = timedelta(0)

    @property
    def retry_seconds(self) -> int:
        """`retry_after` in whole seconds, rounded up, as a person is told it."""
        return max(1, math.ceil(self.retry_after.total_seconds()))


@dataclass
class _Sender:
    tokens: list[float]
    at: datetime
    refusing: bool = False


class RateLimiter:
    """Token buckets per sender; `check` spends a token from each when all have one."""

    def __init__(self, rates: tuple[Rate, ...], *, max_senders: int = MAX_SENDERS) -> None:
        if not rates:
            raise ValueError("a rate limiter needs at least one rate")
        self.rates = rates
        self._max_senders = max_senders
        self._senders: OrderedDict[str, _Sender] = OrderedDict()

    def check(self, sender: str, now: datetime) -> Verdict:
        """Whether `sender` may have a message served now; spends its tokens if so."""
        state = self._refilled(sender, now)
        if all(tokens >= 1 for tokens in state.tokens):
            state.tokens = [tokens - 1 for tokens in state.tokens]
            state.refusing = False
            return Verdict(allowed=True)
        first, state.refusing = not state.refusing, True
        return Verdict(allowed=False, first_refusal=first, retry_after=self._wait(state))

    def _refilled(self, sender: str, now: datetime) -> _Sender:
        state = self._senders.get(sender)
        if state is None:
            state = _Sender([float(rate.burst) for rate in self.rates], now)
            self._senders[sender] = state
            while len(self._senders) > self._max_senders:
                self._senders.popitem(last=False)
            return state
        self._senders.move_to_end(sender)
        elapsed = max(timedelta(0), now - state.at)
        state.tokens = [
            min(float(rate.burst), tokens + elapsed / rate.every)
            for rate, tokens in zip(self.rates, state.tokens, strict=True)
        ]
        state.at = now
        return state

    def _wait(self, state: _Sender) -> timedelta:
        """Until every bucket holds a whole token again."""
        return max(
            (1 - tokens) * rate.every
            for rate, tokens in zip(self.rates, state.tokens, strict=True)
            if tokens < 1
        )
