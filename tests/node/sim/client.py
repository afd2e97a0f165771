"""The unmodified meshtastic client on a simulated radio, recording what it reads.

The tests in this directory drive every firmware rule through `SerialInterface`, byte for byte
as a board node does; this subclass only keeps a copy of each QueueStatus the client handles and
of each packet it publishes, and waits on them with deadlines.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from meshtastic.protobuf import mesh_pb2, portnums_pb2
from meshtastic.serial_interface import SerialInterface
from pubsub import pub

from node.sim.framing import FrameDecoder, encode_frame
from node.sim.radio import SimulatedRadio

BOARD_PORT = 384
TEXT_PORT = portnums_pb2.PortNum.TEXT_MESSAGE_APP
RoutingError = mesh_pb2.Routing.Error
DEADLINE = 10.0  # real seconds for anything that should happen at once


class Client(SerialInterface):
    """`SerialInterface` that also keeps every QueueStatus and published packet it handled."""

    def __init__(self, port: str) -> None:
        self.statuses: list[mesh_pb2.QueueStatus] = []
        self.packets: list[dict[str, Any]] = []
        self._seen = threading.Condition()
        pub.subscribe(self._on_packet, "meshtastic.receive")
        super().__init__(devPath=port)

    def _handleQueueStatusFromRadio(self, queueStatus: mesh_pb2.QueueStatus) -> None:
        copy = mesh_pb2.QueueStatus()
        copy.CopyFrom(queueStatus)
        with self._seen:
            self.statuses.append(copy)
            self._seen.notify_all()
        super()._handleQueueStatusFromRadio(queueStatus)

    def _on_packet(self, packet: dict[str, Any], interface: Any) -> None:
        if interface is not self:
            return
        with self._seen:
            self.packets.append(packet)
            self._seen.notify_all()

    def wait(self, condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
        """Block until `condition()` holds, looked at whenever the client reads something."""
        with self._seen:
            if not self._seen.wait_for(condition, timeout):
                raise TimeoutError(
                    f"not within {timeout} s; statuses {[status_of(s) for s in self.statuses]}, "
                    f"packets {[p.get('decoded', {}).get('portnum') for p in self.packets]}"
                )

    def status_for(self, packet_id: int, timeout: float = DEADLINE) -> mesh_pb2.QueueStatus:
        """The QueueStatus that answered `packet_id`."""
        self.wait(lambda: any(s.mesh_packet_id == packet_id for s in self.statuses), timeout)
        return next(s for s in self.statuses if s.mesh_packet_id == packet_id)

    def routing_for(self, packet_id: int, timeout: float = DEADLINE) -> dict[str, Any]:
        """The first ROUTING_APP packet (ACK or NAK) the client got about `packet_id`."""
        self.wait(lambda: bool(self.routing_about(packet_id)), timeout)
        return self.routing_about(packet_id)[0]

    def routing_about(self, packet_id: int) -> list[dict[str, Any]]:
        return [
            p
            for p in self.packets
            if p["decoded"].get("portnum") == "ROUTING_APP"
            and p["decoded"].get("requestId") == packet_id
        ]

    def texts(self) -> list[dict[str, Any]]:
        return [p for p in self.packets if p["decoded"].get("portnum") == "TEXT_MESSAGE_APP"]

    def close(self) -> None:
        pub.unsubscribe(self._on_packet, "meshtastic.receive")
        super().close()


def status_of(status: mesh_pb2.QueueStatus) -> tuple[int, int, int]:
    """(res, free, mesh_packet_id): a QueueStatus in a form asserts show plainly."""
    return int(status.res), int(status.free), int(status.mesh_packet_id)


def error_of(routing: dict[str, Any]) -> str:
    return str(routing["decoded"]["routing"].get("errorReason", "NONE"))


@contextmanager
def connected(radio: SimulatedRadio) -> Iterator[Client]:
    """A client that has finished its handshake and had its first heartbeat answered."""
    client = Client(radio.port)
    try:
        client.wait(lambda: bool(client.statuses))  # the heartbeat it sends on connecting
        yield client
    finally:
        client.close()


def board_packet(packet_id: int, payload: bytes = b"\x10board") -> mesh_pb2.MeshPacket:
    """A board-plane packet with an id of the test's choosing (the client's `_sendPacket`
    keeps an id it is given, as a resend under the first attempt's id did)."""
    return mesh_pb2.MeshPacket(
        id=packet_id, decoded=mesh_pb2.Data(portnum=BOARD_PORT, payload=payload)
    )


def eventually(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll `condition` until it holds: for what changes with the passing of simulated time
    (the standalone radio's air), which nothing notifies."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(0.02)


def round_trip(client: Client) -> None:
    """A heartbeat and its answer: whatever the radio said before it, the client has read."""
    before = len(client.statuses)
    client.sendHeartbeat()
    client.wait(lambda: len(client.statuses) > before)


@contextmanager
def raw_line(radio: SimulatedRadio) -> Iterator[RawLine]:
    """The radio's port opened as a serial client opens it, without the meshtastic client."""
    fd = os.open(radio.port, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        yield RawLine(fd)
    finally:
        os.close(fd)


class RawLine:
    """ToRadio frames written by hand, FromRadio frames read back: a client that does what the
    Python client never would (it waits for room in the radio's queue before each packet)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._decoder = FrameDecoder()
        self.received: list[mesh_pb2.FromRadio] = []

    def send(self, message: mesh_pb2.ToRadio) -> None:
        os.write(self.fd, encode_frame(message.SerializeToString()))

    def statuses(self, count: int, timeout: float = DEADLINE) -> list[mesh_pb2.QueueStatus]:
        """The first `count` QueueStatus messages the radio wrote."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m.queueStatus for m in self.received if m.HasField("queueStatus")]
            if len(found) >= count:
                return found[:count]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(found)} of {count} queue statuses in {timeout} s")
            readable, _, _ = select.select([self.fd], [], [], left)
            if readable:
                for payload in self._decoder.feed(os.read(self.fd, 4096)):
                    self.received.append(mesh_pb2.FromRadio.FromString(payload))
