"""How long packets stay on the air, and how much of the air this board may take.

Airtime is the scarce resource of a LoRa mesh: on LongFast one 200-byte packet holds the channel
for about 1.9 s, and EU_868 allows a radio 10 % of each hour. The budget is pure accounting (the
outbox asks before sending and records after), persisted through an `AirtimeLog` (the `Store`)
so that a board that restarts in a loop cannot exceed it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

logger = logging.getLogger(__name__)

#: Meshtastic's over-the-air header (dest, sender, id, flags, channel hash, next hop, relay node).
MESHTASTIC_HEADER_BYTES = 16
#: Every packet a node originates carries `Data.bitfield`, a tag and a one-byte varint
#: (firmware `Router.cpp` perhapsEncode, `isFromUs`; v2.7.26).
BITFIELD_BYTES = 2
#: What PKI encryption adds to a direct message: tag and nonce (`MESHTASTIC_PKC_OVERHEAD`,
#: `src/mesh/RadioInterface.h`). Every text DM is PKI since firmware 2.7.14.
PKI_OVERHEAD_BYTES = 12
PREAMBLE_SYMBOLS = 16
TEXT_MESSAGE_PORT = 1  # Meshtastic's TEXT_MESSAGE_APP


class AirtimeLog(Protocol):
    """Where transmissions are kept across restarts: `board.store.bulletins.Store` is one."""

    def airtime_since(self, since: datetime) -> list[tuple[datetime, float]]: ...

    def record_airtime(self, at: datetime, seconds: float, forget_before: datetime) -> None: ...


@dataclass(frozen=True)
class LoraPreset:
    spreading_factor: int
    bandwidth_hz: float
    coding_rate: int  # the denominator of 4/5 … 4/8


#: Meshtastic's modem presets.
PRESETS: dict[str, LoraPreset] = {
    "SHORT_TURBO": LoraPreset(7, 500_000, 5),
    "SHORT_FAST": LoraPreset(7, 250_000, 5),
    "SHORT_SLOW": LoraPreset(8, 250_000, 5),
    "MEDIUM_FAST": LoraPreset(9, 250_000, 5),
    "MEDIUM_SLOW": LoraPreset(10, 250_000, 5),
    "LONG_FAST": LoraPreset(11, 250_000, 5),
    "LONG_MODERATE": LoraPreset(11, 125_000, 8),
    "LONG_SLOW": LoraPreset(12, 125_000, 8),
    "VERY_LONG_SLOW": LoraPreset(12, 62_500, 8),
}


def _varint_bytes(value: int) -> int:
    return max(1, math.ceil(value.bit_length() / 7))


def data_bytes(payload_bytes: int, port: int = TEXT_MESSAGE_PORT) -> int:
    """The serialized `Data` protobuf around a payload the board originates: a tag and a varint
    for the port, a tag, a varint length and the payload, and the bitfield (channel encryption
    keeps the length)."""
    return (
        1 + _varint_bytes(port) + 1 + _varint_bytes(payload_bytes) + payload_bytes + BITFIELD_BYTES
    )


def estimate_airtime(
    payload_bytes: int,
    preset: str = "LONG_FAST",
    *,
    port: int = TEXT_MESSAGE_PORT,
    pki: bool = False,
) -> float:
    """Seconds on air for a payload of this size to `port`, `pki` for a PKI direct message
    (Semtech's time-on-air formula).

    Explicit header, CRC on, low-data-rate optimisation when a symbol lasts over 16 ms.
    """
    lora = PRESETS[preset]
    symbol = 2**lora.spreading_factor / lora.bandwidth_hz
    low_rate = 1 if symbol > 0.016 else 0
    size = MESHTASTIC_HEADER_BYTES + data_bytes(payload_bytes, port)
    size += PKI_OVERHEAD_BYTES if pki else 0
    sf = lora.spreading_factor
    bits = 8 * size - 4 * sf + 28 + 16
    payload_symbols = 8 + max(math.ceil(bits / (4 * (sf - 2 * low_rate))) * lora.coding_rate, 0)
    return float((PREAMBLE_SYMBOLS + 4.25 + payload_symbols) * symbol)


class AirtimeBudget:
    """This board's own transmissions in a sliding window, and the channel's reported load.

    Board-plane (sync) traffic may use `limit_fraction` of the window: 5 % of an hour is 180 s,
    half of EU_868's 10 % duty cycle, so people's replies always have the other half. Replies to
    people (`essential=True`) may use up to `hard_fraction`, the legal limit, and ignore the
    channel back-off: a person waiting for an answer should get one.

    Channel utilisation: above BUSY_ABOVE percent (where the firmware itself turns polite; it
    stops at 40 %) sync waits until a report below CLEAR_BELOW (hysteresis, so it does not flap);
    a report older than UTILISATION_STALE is ignored, because a radio that stopped reporting must
    not silence the board for ever.
    """

    BUSY_ABOVE = 25.0
    CLEAR_BELOW = 20.0
    UTILISATION_STALE = timedelta(hours=1)

    def __init__(
        self,
        limit_fraction: float = 0.05,
        window: timedelta = timedelta(hours=1),
        *,
        hard_fraction: float = 0.10,
        store: AirtimeLog | None = None,
        history: tuple[tuple[datetime, float], ...] = (),
    ) -> None:
        if not 0 < limit_fraction <= hard_fraction <= 1:
            raise ValueError("need 0 < limit_fraction <= hard_fraction <= 1")
        self.limit_fraction = limit_fraction
        self.hard_fraction = hard_fraction
        self.window = window
        self._store = store
        self._sent: deque[tuple[datetime, float]] = deque(sorted(history))
        self._busy = False
        self._reported_at: datetime | None = None

    @classmethod
    def load(cls, store: AirtimeLog, now: datetime, **options: Any) -> AirtimeBudget:
        """The budget as it stood before a restart: the window's transmissions come from `store`."""
        window = options.get("window", timedelta(hours=1))
        history = tuple(store.airtime_since(now - window))
        return cls(store=store, history=history, **options)

    def record(self, now: datetime, seconds: float) -> None:
        """Count one transmission (and persist it, when the budget has a store)."""
        self._sent.append((now, seconds))
        if self._store is not None:
            self._store.record_airtime(now, seconds, forget_before=now - self.window)

    def used(self, now: datetime) -> float:
        """Seconds on air in the window ending at `now`.

        Records more than one window in the future mean the clock was set back (a Pi without
        a real-time clock): they are ignored rather than silencing the board until it catches up.
        """
        while self._sent and self._sent[0][0] <= now - self.window:
            self._sent.popleft()
        horizon = now + self.window
        return sum(seconds for at, seconds in self._sent if at < horizon)

    def remaining(self, now: datetime) -> float:
        """Seconds of board-plane airtime left in the window."""
        return max(0.0, self.limit - self.used(now))

    @property
    def limit(self) -> float:
        """Seconds of board-plane airtime per window."""
        return self.limit_fraction * self.window.total_seconds()

    def note_channel_utilisation(self, now: datetime, percent: float) -> None:
        """What the radio reports (device metrics' channel_utilization, 0 to 100)."""
        was_busy = self._busy
        if percent > self.BUSY_ABOVE:
            self._busy = True
        elif percent < self.CLEAR_BELOW:
            self._busy = False
        self._reported_at = now
        if self._busy != was_busy:
            state = "paused" if self._busy else "resumed"
            logger.info("channel utilisation %.1f %%: sync %s", percent, state)

    def channel_busy(self, now: datetime) -> bool:
        if self._reported_at is None or now - self._reported_at > self.UTILISATION_STALE:
            return False
        return self._busy

    def can_send(self, now: datetime, seconds: float, *, essential: bool = False) -> bool:
        """Whether `seconds` more airtime fits now; sync traffic also yields to a busy channel."""
        used = self.used(now) + seconds
        if essential:
            return used <= self.hard_fraction * self.window.total_seconds()
        return used <= self.limit and not self.channel_busy(now)
