"""Per-radio airtime bookkeeping, kept the way the firmware's `AirTime` keeps it.

The firmware refuses to transmit once its own airtime over the last hour exceeds the region's
duty cycle, and it reports two percentages to its client: `air_util_tx` (own airtime in the
last hour) and `channel_utilization` (the last minute's airtime heard or sent). Like the
firmware, a packet's whole airtime is booked when it starts (sent) or ends (heard).
"""

from __future__ import annotations

from collections import deque

HOUR = 3600.0
MINUTE = 60.0


class AirtimeLedger:
    """Airtime one radio sent and heard, in simulated seconds."""

    def __init__(self) -> None:
        self.total_tx = 0.0
        self.total_rx = 0.0
        self.bookings: list[tuple[float, float, int]] = []  # (booked at, seconds, port)
        self._tx: deque[tuple[float, float]] = deque()  # (booked at, seconds)
        self._busy: deque[tuple[float, float]] = deque()

    def sent(self, at: float, seconds: float, port: int = 0) -> None:
        self.total_tx += seconds
        self.bookings.append((at, seconds, port))
        self._tx.append((at, seconds))
        self._busy.append((at, seconds))

    def heard(self, at: float, seconds: float, port: int = 0) -> None:
        self.total_rx += seconds
        self.bookings.append((at, seconds, port))
        self._busy.append((at, seconds))

    def tx_seconds(self, now: float, window: float = HOUR) -> float:
        """Own airtime booked in the last `window` seconds."""
        self._forget(now)
        return sum(seconds for at, seconds in self._tx if at > now - window)

    def air_util_tx_percent(self, now: float) -> float:
        """Own airtime in the last hour, as the firmware's `utilizationTXPercent`."""
        return 100.0 * self.tx_seconds(now) / HOUR

    def channel_utilization_percent(self, now: float) -> float:
        """Airtime heard or sent in the last minute, as `channelUtilizationPercent`."""
        self._forget(now)
        busy = sum(seconds for at, seconds in self._busy if at > now - MINUTE)
        return min(100.0, 100.0 * busy / MINUTE)

    def _forget(self, now: float) -> None:
        while self._tx and self._tx[0][0] <= now - HOUR:
            self._tx.popleft()
        while self._busy and self._busy[0][0] <= now - MINUTE:
            self._busy.popleft()
