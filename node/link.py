"""The seam between the daemon and a radio.

The daemon is handed a `RadioLink` and never builds one. `MeshtasticLink` is the production
link: it wraps the official `meshtastic.serial_interface.SerialInterface`. Tests drive this same
class against a simulated radio on a pty, so nothing below is mocked away.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import serial
from meshtastic.mesh_interface import MeshInterface
from meshtastic.serial_interface import SerialInterface
from pubsub import pub

logger = logging.getLogger(__name__)

BROADCAST_NUM = 0xFFFFFFFF
BOARD_PORT = 384  # the board plane's private app port (256-511); payloads carry a magic byte
# Board-plane packets reach direct neighbours only: boards relay what they store themselves,
# so the firmware's flooding would only send every packet again.
BOARD_HOP_LIMIT = 0


class LinkError(Exception):
    """The radio cannot be reached or refused what we asked of it."""


@dataclass(frozen=True)
class ReceivedText:
    """A text message heard by the radio, reduced to what the board needs."""

    sender: str  # "!a1b2c3d4"
    channel: int  # channel index it arrived on: the ring
    text: str
    direct: bool  # addressed to this board rather than broadcast on the channel
    packet_id: int
    rx_time: int | None  # the radio's receive time (unix seconds), when it knows the time
    pki_encrypted: bool  # the firmware verified the sender's public key


@dataclass(frozen=True)
class ReceivedBoardPacket:
    """A board-plane packet (private port) heard from another board."""

    sender: str
    channel: int
    payload: bytes
    packet_id: int


@dataclass(frozen=True)
class Delivery:
    """The radio's word on a want_ack packet this board sent: an ACK or a NAK.

    Firmware answers every want_ack packet with a ROUTING_APP packet whose `request_id` is the
    packet's id: a real ACK from the destination, an implicit ACK from our own radio (it heard a
    relay repeat the packet and stopped retrying; the destination has not confirmed), or a NAK
    from our own radio (MAX_RETRANSMIT, NO_ROUTE, DUTY_CYCLE_LIMIT, …).
    """

    packet_id: int  # what send_text returned
    error: str  # "NONE" for an ACK, else the firmware's Routing.Error name
    implicit: bool = False

    @property
    def acked(self) -> bool:
        return self.error == "NONE"


@dataclass(frozen=True)
class RadioMetrics:
    """What the radio reports about the air (firmware device metrics, percentages)."""

    channel_utilization: float
    air_util_tx: float


Received = ReceivedText | ReceivedBoardPacket | RadioMetrics | Delivery
ReceiveHandler = Callable[[Received], None]
LostHandler = Callable[[], None]


class RadioLink(Protocol):
    """What the daemon needs from a radio.

    `on_receive` also gets a `Delivery` for every packet `send_text` sent, naming the id it
    returned, when the radio reports one; a lost report is the caller's timeout to handle.
    """

    @property
    def node_id(self) -> str: ...

    def start(self, on_receive: ReceiveHandler, on_lost: LostHandler) -> None: ...

    def send_text(self, text: str, destination: str, channel: int) -> int: ...

    def send_board(self, payload: bytes, channel: int) -> int: ...

    def close(self) -> None: ...


def node_num(node_id: str) -> int:
    """`!a1b2c3d4` → 0xa1b2c3d4."""
    return int(node_id.removeprefix("!"), 16)


class MeshtasticLink:
    """A radio on a serial port, through the official meshtastic client."""

    def __init__(self, port: str) -> None:
        self.port = port
        self._interface: SerialInterface | None = None
        self._on_receive: ReceiveHandler | None = None
        self._on_lost: LostHandler | None = None
        self._lock = threading.Lock()
        # Pinned at the handshake: a garbled frame that reads as "my_info" must not change who
        # the board is (the client would take it, and direct messages would stop being direct).
        self._my_num: int | None = None

    @property
    def node_id(self) -> str:
        interface = self._require_interface()
        num = interface.myInfo.my_node_num if self._my_num is None else self._my_num
        return f"!{num:08x}"

    def start(self, on_receive: ReceiveHandler, on_lost: LostHandler) -> None:
        """Open the port and finish the config handshake; raise LinkError if that fails."""
        self._on_receive, self._on_lost = on_receive, on_lost
        self._my_num = None
        # pypubsub keeps weak references: the bound methods live as long as this link does.
        # The root topic receives every packet; _handle_packet picks what the board uses.
        pub.subscribe(self._handle_packet, "meshtastic.receive")
        pub.subscribe(self._handle_lost, "meshtastic.connection.lost")
        # Build the interface without connecting, so that packets arriving right after the
        # handshake can already be matched to it.
        interface = SerialInterface(devPath=self.port, connectNow=False)
        with self._lock:
            self._interface = interface
        try:
            interface.connect()
            interface.waitForConfig()
        except (OSError, serial.SerialException, MeshInterface.MeshInterfaceError) as error:
            self.close()
            raise LinkError(f"cannot open radio at {self.port}: {error}") from error
        self._my_num = interface.myInfo.my_node_num
        logger.info("connected to radio %s on %s", self.node_id, self.port)

    def send_text(self, text: str, destination: str, channel: int) -> int:
        """Send a direct text with want_ack on `channel`; returns the id its `Delivery` names."""
        interface = self._require_interface()
        try:
            packet = interface.sendText(
                text, destinationId=node_num(destination), wantAck=True, channelIndex=channel
            )
        except (OSError, serial.SerialException, MeshInterface.MeshInterfaceError) as error:
            raise LinkError(f"cannot send to {destination}: {error}") from error
        return int(packet.id)

    def send_board(self, payload: bytes, channel: int) -> int:
        """Broadcast a board-plane packet on `channel` to direct neighbours."""
        interface = self._require_interface()
        try:
            packet = interface.sendData(
                payload,
                portNum=BOARD_PORT,
                channelIndex=channel,
                hopLimit=BOARD_HOP_LIMIT,
                wantAck=False,
            )
        except (OSError, serial.SerialException, MeshInterface.MeshInterfaceError) as error:
            raise LinkError(f"cannot send a board packet: {error}") from error
        return int(packet.id)

    def close(self) -> None:
        pub.unsubscribe(self._handle_packet, "meshtastic.receive")
        pub.unsubscribe(self._handle_lost, "meshtastic.connection.lost")
        with self._lock:
            interface, self._interface = self._interface, None
        if interface is not None:
            try:
                interface.close()
            except (OSError, serial.SerialException) as error:
                logger.warning("closing %s: %s", self.port, error)

    def _require_interface(self) -> SerialInterface:
        with self._lock:
            if self._interface is None:
                raise LinkError(f"radio on {self.port} is not connected")
            return self._interface

    def _is_ours(self, interface: Any) -> bool:
        with self._lock:
            return interface is not None and interface is self._interface

    def _handle_packet(self, packet: dict[str, Any], interface: Any) -> None:
        if not self._is_ours(interface) or self._on_receive is None:
            return
        my_num = self._my_num
        if my_num is None:  # a packet that arrived during the handshake
            my_info = interface.myInfo
            if my_info is None:
                return
            my_num = my_info.my_node_num
        received = _to_received(packet, my_num)
        if received is not None:
            self._on_receive(received)

    def _handle_lost(self, interface: Any) -> None:
        if self._is_ours(interface) and self._on_lost is not None:
            logger.warning("lost the radio on %s", self.port)
            self._on_lost()


#: Meshtastic radios have eight channels; a packet naming another index is corrupt.
MAX_CHANNEL_INDEX = 7


def _uint32(value: object) -> int | None:
    """A protobuf uint32 as the client's dict holds it; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFFFF:
        return value
    return None


def _metrics(decoded: dict[str, Any]) -> RadioMetrics | None:
    telemetry = decoded.get("telemetry")
    metrics = telemetry.get("deviceMetrics") if isinstance(telemetry, dict) else None
    if not isinstance(metrics, dict) or not metrics:
        return None
    values = (metrics.get("channelUtilization", 0.0), metrics.get("airUtilTx", 0.0))
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        return None
    return RadioMetrics(channel_utilization=float(values[0]), air_util_tx=float(values[1]))


def _to_received(packet: dict[str, Any], my_num: int) -> Received | None:
    """Reduce the client's packet dict to what the board uses; None for everything else.

    The dict comes from a protobuf that crossed a serial line without a checksum, so nothing in
    it is trusted: whatever is not shaped as the client makes it is None, never an exception.
    """
    decoded = packet.get("decoded")
    sender = _uint32(packet.get("from"))
    if not isinstance(decoded, dict) or sender is None:
        return None
    payload = decoded.get("payload")
    if not isinstance(payload, bytes):
        return None
    portnum = decoded.get("portnum")
    if portnum == "ROUTING_APP":
        return _delivery(packet, decoded, my_num)
    if sender == my_num:
        return _metrics(decoded) if portnum == "TELEMETRY_APP" else None
    channel = _uint32(packet.get("channel", 0))
    if channel is None or channel > MAX_CHANNEL_INDEX:
        return None
    packet_id = _uint32(packet.get("id")) or 0
    if portnum == BOARD_PORT:
        return ReceivedBoardPacket(
            sender=f"!{sender:08x}", channel=channel, payload=payload, packet_id=packet_id
        )
    if portnum != "TEXT_MESSAGE_APP":
        return None
    return ReceivedText(
        sender=f"!{sender:08x}",
        channel=channel,
        # Invalid UTF-8 still deserves an answer, so decode leniently here (the core refuses to
        # store the replacement character, so nothing garbled is posted).
        text=payload.decode("utf-8", errors="replace"),
        direct=packet.get("to") == my_num,
        packet_id=packet_id,
        rx_time=_uint32(packet.get("rxTime")),
        pki_encrypted=packet.get("pkiEncrypted") is True,
    )


def _delivery(packet: dict[str, Any], decoded: dict[str, Any], my_num: int) -> Delivery | None:
    """An ACK or NAK addressed to us; the client leaves `errorReason` out when it is NONE."""
    request_id = decoded.get("requestId")
    if packet.get("to") != my_num or not isinstance(request_id, int) or not request_id:
        return None
    error = str((decoded.get("routing") or {}).get("errorReason", "NONE"))
    return Delivery(
        packet_id=request_id,
        error=error,
        implicit=error == "NONE" and packet.get("from") == my_num,
    )
