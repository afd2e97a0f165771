"""The LoRa side of a simulated radio that is in no mesh: its TX queue and its airtime.

A radio outside a `Mesh` still has the firmware's TX queue (`MeshPacketQueue`, MAX_TX_QUEUE
slots): what the client sends waits there for a contention delay and for the packets before it,
then occupies the air for its LoRa airtime, one packet at a time. That is what the QueueStatus
the client reads counts (`RadioLibInterface::getQueueStatus`: free = maxlen - queued), so the
free slots fall while packets queue and rise as they go on air. Time is the radio's `Clock`.
In a mesh the mesh's own TX queues, with carrier sense and collisions, take this part.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from meshtastic.protobuf import mesh_pb2

from node.clock import Clock
from node.sim import firmware, lora, router
from node.sim.router import QUEUE_FULL, SENT, Outcome

#: A radio's `Router::send` → `perhapsEncode` on a copy of a packet it originates: the packet as
#: it goes on the air, and RoutingError.NONE or why it cannot go.
Encode = Callable[[mesh_pb2.MeshPacket], tuple[mesh_pb2.MeshPacket, int]]


@dataclass(frozen=True)
class OnAir:
    """One packet as the radio put it on the air (encoded: bitfield, PKI), and when."""

    packet: mesh_pb2.MeshPacket
    start: float  # seconds of the radio's clock
    airtime: float

    @property
    def end(self) -> float:
        return self.start + self.airtime


class StandaloneAir:
    """A TX queue drained at LoRa speed into empty air."""

    def __init__(self, clock: Clock, preset: lora.Preset, maxlen: int, rng: random.Random) -> None:
        self.clock = clock
        self.preset = preset
        self.maxlen = maxlen
        self._rng = rng
        self._lock = threading.Lock()
        self._sent: list[OnAir] = []  # in the order they go on air
        self._busy_until = 0.0

    def enqueue(self, packet: mesh_pb2.MeshPacket) -> Outcome:
        """`RadioLibInterface::send`: queue `packet` (already encoded), unless the queue is full.

        It waits a random contention delay (`getTxDelayMsec` on a quiet channel: 0 to
        2^CW_MIN slots), then for the packet before it to finish.
        """
        now = self.clock.monotonic()
        with self._lock:
            if self._queued(now) >= self.maxlen:
                return QUEUE_FULL
            delay = self._rng.randrange(2**firmware.CW_MIN) * self.preset.slot_time
            start = max(now + delay, self._busy_until)
            airtime = lora.packet_airtime(packet, self.preset)
            self._busy_until = start + airtime
            self._sent.append(OnAir(packet, start, airtime))
            return SENT

    def queue_status(self) -> tuple[int, int]:
        """(free, maxlen) of the TX queue now."""
        now = self.clock.monotonic()
        with self._lock:
            return self.maxlen - self._queued(now), self.maxlen

    @property
    def log(self) -> list[OnAir]:
        """Every packet that has gone on the air so far (started by the radio's clock)."""
        now = self.clock.monotonic()
        with self._lock:
            return self._sent[: len(self._sent) - self._queued(now)]

    def clear(self) -> None:
        """A reboot: the queue is RAM."""
        now = self.clock.monotonic()
        with self._lock:
            del self._sent[len(self._sent) - self._queued(now) :]
            self._busy_until = min(self._busy_until, now)

    def _queued(self, now: float) -> int:
        """Packets not yet on the air: the last ones, as each starts after the one before."""
        count = 0
        for sent in reversed(self._sent):
            if sent.start <= now:
                break
            count += 1
        return count


class StandaloneRouter:
    """The Router of a radio in no mesh: its packets go into its own TX queue and empty air."""

    def __init__(self, own_num: int, encode: Encode, air: StandaloneAir) -> None:
        self.own_num = own_num
        self.encode = encode
        self.air = air

    def send_local(self, packet: mesh_pb2.MeshPacket) -> Outcome:
        if packet.to == self.own_num:
            return SENT  # for the radio itself (admin and the like): never on the air
        air, error = self.encode(packet)
        if error != mesh_pb2.Routing.Error.NONE:
            return router.refused(error)
        return self.air.enqueue(air)

    def queue_status(self) -> tuple[int, int]:
        return self.air.queue_status()
