"""The production link: a radio on a serial port, through the official meshtastic client.

`MeshtasticLink` implements `node.link.RadioLink` by wrapping
`meshtastic.serial_interface.SerialInterface`. Tests drive this same class against a simulated
radio on a pty, so nothing below is mocked away.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial
from google.protobuf.message import DecodeError
from meshtastic.mesh_interface import MeshInterface
from meshtastic.protobuf import channel_pb2, config_pb2, localonly_pb2, mesh_pb2, portnums_pb2
from meshtastic.serial_interface import SerialInterface
from pubsub import pub

from board.messages import BROADCAST
from node.link import (
    BOARD_HOP_LIMIT,
    BOARD_PORT,
    BROADCAST_NUM,
    HANDSHAKE_TIMEOUT,
    QUEUE_REFUSED,
    ChannelKey,
    Delivery,
    LinkDown,
    LinkError,
    LostHandler,
    RadioMetrics,
    Received,
    ReceivedBoardPacket,
    ReceivedNodeInfo,
    ReceivedText,
    ReceiveHandler,
    node_num,
)

logger = logging.getLogger(__name__)

# Errors that mean the port itself failed: opening it, or a read or write on it.
_PORT_ERRORS = (OSError, serial.SerialException, termios.error)
ROOM_POLL = 0.25  # seconds between looks at the radio's TX queue while it is full
READER_EXIT = 5.0  # seconds to wait for an old client's reader thread to end
HANDSHAKE_POLL = 0.1  # seconds between looks at close() while the handshake is under way
UNDECODABLE_WARN_INTERVAL = 60.0  # seconds between warnings about garbage from the radio


@dataclass(frozen=True)
class RadioState:
    """The radio's own description from the config handshake, as protobufs.

    `own_node` is the client's dict of the radio's own node info; its `lastHeard` is the
    radio's clock at the handshake when the radio trusts it (a GPS fix, a phone, the mesh or
    `--set-time`), else absent: the firmware sends 0 then.
    """

    node_num: int
    metadata: mesh_pb2.DeviceMetadata | None
    config: localonly_pb2.LocalConfig
    channels: tuple[channel_pb2.Channel, ...]
    own_node: dict[str, Any]


class MeshtasticLink:
    """A radio on a serial port, through the official meshtastic client.

    One link is one connection: after `close()` the supervisor makes a new one.
    """

    def __init__(self, port: str, *, handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.port = port
        self.handshake_timeout = handshake_timeout
        self._interface: SerialInterface | None = None
        self._closing: SerialInterface | None = None  # being shut down: still heard, not used
        self._on_receive: ReceiveHandler | None = None
        self._on_lost: LostHandler | None = None
        self._lock = threading.Lock()
        # Pinned at the handshake: a garbled frame that reads as "my_info" must not change who
        # the board is (the client would take it, and direct messages would stop being direct).
        self._my_num: int | None = None
        self._closed = threading.Event()
        self._subscribed = False
        self._lost = False  # the client said the connection is lost
        self._heard_at = time.monotonic()
        self._keys: dict[int, bytes] = {}  # node number -> the key the radio holds for it

    @property
    def node_id(self) -> str:
        interface = self._require_interface()
        num = interface.myInfo.my_node_num if self._my_num is None else self._my_num
        return f"!{num:08x}"

    @property
    def heard_at(self) -> float:
        return self._heard_at

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
        interface = _CancellableSerialInterface(
            self._closed,
            self.handshake_timeout,
            self._handle_queue_status,
            devPath=self.port,
            connectNow=False,
        )
        with self._lock:
            self._subscribed = True
            closed = self._closed.is_set()
            if not closed:
                self._interface = interface
        if closed:
            self.close()
            raise LinkDown(f"radio on {self.port}: closed before connecting")
        try:
            interface.connect()
            interface.waitForConfig()
        except (*_PORT_ERRORS, MeshInterface.MeshInterfaceError, LinkError) as error:
            self.close()
            raise LinkError(f"cannot open radio at {self.port}: {error}") from error
        if self._closed.is_set():
            raise LinkDown(f"radio on {self.port}: closed while connecting")
        self._my_num = interface.myInfo.my_node_num
        self._learn_keys(interface)
        self._heard_at = time.monotonic()
        logger.info("connected to radio %s on %s", self.node_id, self.port)

    def radio_state(self) -> RadioState:
        """What the radio reported about itself in the handshake (copies; safe to keep)."""
        interface = self._require_interface()
        my_num = self._my_num if self._my_num is not None else interface.myInfo.my_node_num
        metadata = None
        if interface.metadata is not None:
            metadata = mesh_pb2.DeviceMetadata()
            metadata.CopyFrom(interface.metadata)
        config = localonly_pb2.LocalConfig()
        config.CopyFrom(interface.localNode.localConfig)
        channels = []
        for channel in interface.localNode.channels or ():
            copy = channel_pb2.Channel()
            copy.CopyFrom(channel)
            channels.append(copy)
        own = (interface.nodesByNum or {}).get(my_num) or {}
        return RadioState(
            node_num=my_num,
            metadata=metadata,
            config=config,
            channels=tuple(channels),
            own_node=dict(own),
        )

    def send_text(self, text: str, destination: str, channel: int) -> int:
        """Send a direct text with want_ack on `channel`; returns the id its `Delivery` names.

        To BROADCAST it goes to everyone on the channel, without want_ack: nobody would ACK it.
        Every call gets a fresh packet id from the client (`sendText`): firmware 2.5.3 and later
        silently ignore an id among the last 20 the client handed over
        (`PhoneAPI::wasSeenRecently`), so a resend under the first attempt's id never leaves.
        """
        _check_size(len(text.encode("utf-8")))
        interface = self._ready_to_send()
        everyone = destination == BROADCAST
        try:
            sent = interface.sendText(
                text,
                destinationId=BROADCAST_NUM if everyone else node_num(destination),
                wantAck=not everyone,
                channelIndex=channel,
            )
        except (*_PORT_ERRORS, MeshInterface.MeshInterfaceError) as error:
            raise LinkDown(f"cannot send to {destination}: {error}") from error
        return int(sent.id)

    def send_board(self, payload: bytes, channel: int) -> int:
        """Broadcast a board-plane packet on `channel` to direct neighbours."""
        _check_size(len(payload))
        interface = self._ready_to_send()
        try:
            packet = interface.sendData(
                payload,
                portNum=BOARD_PORT,
                channelIndex=channel,
                hopLimit=BOARD_HOP_LIMIT,
                wantAck=False,
            )
        except (*_PORT_ERRORS, MeshInterface.MeshInterfaceError) as error:
            raise LinkDown(f"cannot send a board packet: {error}") from error
        return int(packet.id)

    def channels(self) -> tuple[ChannelKey, ...]:
        """The enabled channels, named as the firmware names them (`Channels::getName`)."""
        state = self.radio_state()
        lora = state.config.lora
        return tuple(
            ChannelKey(
                index=c.index,
                name=c.settings.name or channel_display_name(lora.modem_preset, lora.use_preset),
                psk=bytes(c.settings.psk),
                primary=c.role == channel_pb2.Channel.Role.PRIMARY,
            )
            for c in state.channels
            if c.role != channel_pb2.Channel.Role.DISABLED
        )

    def request_node_info(self, destination: str, channel: int) -> int:
        """Send our NodeInfo to `destination` with want_response, so its firmware answers with
        its own (`NodeInfoModule::allocReply`) and our radio learns its key. It travels on the
        channel key, never PKI (NODEINFO_APP is excluded in `Router.cpp` perhapsEncode). A node
        that heard such a request from us in the last 12 hours does not answer again."""
        interface = self._ready_to_send()
        user = _own_user(interface, self._my_num)
        try:
            packet = interface.sendData(
                user.SerializeToString(),
                destinationId=node_num(destination),
                portNum=portnums_pb2.PortNum.NODEINFO_APP,
                wantResponse=True,
                channelIndex=channel,
            )
        except (*_PORT_ERRORS, MeshInterface.MeshInterfaceError) as error:
            raise LinkDown(f"cannot ask {destination} for its node info: {error}") from error
        return int(packet.id)

    def known_keys(self) -> dict[str, bytes]:
        """The public key the radio's node database holds for each node, by node id."""
        self._require_interface()
        with self._lock:
            return {f"!{num:08x}": key for num, key in self._keys.items()}

    def _node_key(self, num: int) -> bytes | None:
        """The key the radio holds for `num`, as far as the link can tell."""
        with self._lock:
            return self._keys.get(num)

    def _learn_keys(self, interface: SerialInterface) -> None:
        """The radio's node database as the handshake reported it: its keys are the radio's."""
        keys = {}
        for num, node in dict(interface.nodesByNum or {}).items():
            key = _user_key(node.get("user") if isinstance(node, dict) else None)
            if isinstance(num, int) and key is not None:
                keys[num] = key
        with self._lock:
            self._keys = keys

    def _heard_key(self, received: ReceivedNodeInfo) -> bool:
        """Keep a key from a NodeInfo the radio passed on, by the radio's own rule: a node that
        has a key keeps it (`NodeDB::updateUser` drops a NodeInfo with another, "Public Key
        mismatch", yet still hands the packet to the client, whose `nodesByNum` then shows the
        other key). False for such a NodeInfo: it changes nothing."""
        num = node_num(received.sender)
        with self._lock:
            held = self._keys.get(num)
            if held is None:
                self._keys[num] = received.public_key
                return True
        if held != received.public_key:
            logger.warning(
                "a NodeInfo for %s with another key: the radio keeps the one it had",
                received.sender,
            )
        return False

    def probe(self) -> None:
        """A heartbeat: the firmware answers it with a QueueStatus (`PhoneAPI::handleToRadio`,
        heartbeat_tag), which moves `heard_at`, so a quiet mesh is not taken for a dead radio."""
        interface = self._require_interface()
        try:
            interface.sendHeartbeat()
        except (*_PORT_ERRORS, MeshInterface.MeshInterfaceError) as error:
            raise LinkDown(f"cannot send a heartbeat to {self.port}: {error}") from error

    def close(self) -> None:
        """Close the client fully: its reader and heartbeat threads end. Safe from any thread.

        The client is still heard until its reader has stopped: a packet the radio wrote
        before it read our `disconnect` has left its queue for good (firmware
        `PhoneAPI::getFromRadio`, STATE_SEND_PACKETS, takes it with `MeshService::getForPhone`),
        so the board must still take it rather than drop it here.
        """
        self._closed.set()
        with self._lock:
            interface, self._interface = self._interface, None
            self._closing = interface
            subscribed, self._subscribed = self._subscribed, False
        if interface is not None:
            _shut_down(interface, self.port, lost=self._lost)
        with self._lock:
            self._closing = None
        if subscribed:
            pub.unsubscribe(self._handle_packet, "meshtastic.receive")
            pub.unsubscribe(self._handle_lost, "meshtastic.connection.lost")

    def _require_interface(self) -> SerialInterface:
        with self._lock:
            if self._interface is None:
                raise LinkDown(f"radio on {self.port} is not connected")
            return self._interface

    def _ready_to_send(self) -> SerialInterface:
        """The connected interface once the radio's TX queue has room; LinkDown if lost meanwhile.

        The client would otherwise block for 30 s on a lost connection (`_waitConnected`) and
        forever on a full queue that a gone radio never reports as free (`_sendToRadio`).
        """
        waiting = False
        while True:
            interface = self._require_interface()
            if not interface.isConnected.is_set() or interface.stream is None:
                raise LinkDown(f"lost the radio on {self.port}")
            if _has_room(interface):
                return interface
            if not waiting:
                logger.info("the radio's TX queue is full; waiting for room")
                waiting = True
            if self._closed.wait(ROOM_POLL):
                raise LinkDown(f"radio on {self.port} closed while its TX queue was full")

    def _is_ours(self, interface: Any) -> bool:
        with self._lock:
            return interface is not None and interface in (self._interface, self._closing)

    def _handle_packet(self, packet: dict[str, Any], interface: Any) -> None:
        if not self._is_ours(interface):
            return
        self._heard_at = time.monotonic()
        if self._on_receive is None:
            return
        my_num = self._my_num
        if my_num is None:  # a packet that arrived during the handshake
            my_info = interface.myInfo
            if my_info is None:
                return
            my_num = my_info.my_node_num
        received = _to_received(packet, my_num, self._node_key)
        if isinstance(received, ReceivedNodeInfo) and not self._heard_key(received):
            return
        if isinstance(received, ReceivedText) and received.pki_encrypted and received.public_key:
            with self._lock:  # the radio decrypted it with this key, so it holds it
                self._keys.setdefault(node_num(received.sender), received.public_key)
        if received is not None:
            self._on_receive(received)

    def _handle_queue_status(self, status: mesh_pb2.QueueStatus) -> None:
        """Every QueueStatus is a sign of life; one with `res` set refuses our packet."""
        self._heard_at = time.monotonic()
        packet_id = _uint32(status.mesh_packet_id) or 0
        if status.res and packet_id and self._on_receive is not None:
            logger.info("the radio refused packet %#x (queue status res %d)", packet_id, status.res)
            self._on_receive(Delivery(packet_id=packet_id, error=_refusal(status.res)))

    def _handle_lost(self, interface: Any) -> None:
        if not self._is_ours(interface) or self._closed.is_set():
            return  # another client's, or ours ending because we close it
        self._lost = True
        logger.warning("lost the radio on %s", self.port)
        if self._on_lost is not None:
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


class _CancellableSerialInterface(SerialInterface):  # type: ignore[misc]
    """The client, with a handshake wait that `MeshtasticLink.close()` can end at any moment.

    `connect()` waits up to 30 s for the handshake. A close() that lands while `connect()` is
    still opening the port cannot fail that wait from outside (the reader thread it then starts
    clears the flag close() set), so the wait itself looks at the link's `closed` event.
    """

    def __init__(
        self,
        closed: threading.Event,
        handshake_timeout: float,
        on_queue_status: Callable[[mesh_pb2.QueueStatus], None],
        **kwargs: Any,
    ) -> None:
        self._link_closed = closed
        self._on_queue_status = on_queue_status
        self._handshake_timeout = handshake_timeout
        self._undecodable = 0  # frames dropped since the last warning
        self._warned_at: float | None = None
        super().__init__(**kwargs)

    def _handleFromRadio(self, fromRadioBytes: bytes) -> None:
        """Drop a frame that is no FromRadio message, with one warning a minute at most.

        The client itself logs two errors and prints two tracebacks to stderr for each such
        frame, which on a noisy USB line floods the journal and says nothing new.
        """
        try:
            mesh_pb2.FromRadio().ParseFromString(fromRadioBytes)
            decodable = True
        except DecodeError:
            decodable = False  # noted below, where no exception is being handled any more
        if decodable:
            super()._handleFromRadio(fromRadioBytes)
        else:
            self._note_undecodable(len(fromRadioBytes))

    def _handleQueueStatusFromRadio(self, queueStatus: mesh_pb2.QueueStatus) -> None:
        """The client keeps its TX queue by these; the link learns of refusals from them."""
        super()._handleQueueStatusFromRadio(queueStatus)
        self._on_queue_status(queueStatus)

    def _note_undecodable(self, size: int) -> None:
        logger.debug("undecodable frame of %d bytes from the radio on %s", size, self.devPath)
        self._undecodable += 1
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < UNDECODABLE_WARN_INTERVAL:
            return
        logger.warning(
            "dropped %d undecodable frame(s) from the radio on %s (noise on the serial line?)",
            self._undecodable,
            self.devPath,
        )
        self._undecodable = 0
        self._warned_at = now

    def _waitConnected(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self._handshake_timeout if timeout is None else timeout)
        while not self.isConnected.wait(HANDSHAKE_POLL):
            if self._link_closed.is_set():
                raise LinkDown(f"radio on {self.devPath} closed while connecting")
            if time.monotonic() >= deadline:
                break
        super()._waitConnected(timeout=0.0)  # the client's own timeout error, or its failure


#: QueueStatus `res` values that are the firmware's own error codes, not Routing.Error names
#: (ERRNO_UNKNOWN for a full queue, NO_INTERFACES, DISABLED, SHOULD_RELEASE: src/mesh/
#: MeshTypes.h); they overlap Routing.Error numbers, so they are read first.
_ERRNO_CODES = frozenset({32, 33, 34, 35})


def _refusal(res: int) -> str:
    """What a QueueStatus `res` says: a Routing.Error name where the firmware passes one on
    (`MeshService::sendToMesh` reports what `Router::sendLocal` returned: DUTY_CYCLE_LIMIT,
    PKI_SEND_FAIL_PUBLIC_KEY, ...), else QUEUE_REFUSED. A missing key must stay that person's
    problem, not hold every reply back as a full queue does."""
    if res in _ERRNO_CODES:
        return QUEUE_REFUSED
    try:
        return str(mesh_pb2.Routing.Error.Name(res))
    except ValueError:
        return QUEUE_REFUSED


def _check_size(size: int) -> None:
    if size > mesh_pb2.Constants.DATA_PAYLOAD_LEN:
        raise LinkError(f"a {size}-byte payload does not fit in a Meshtastic packet")


def _has_room(interface: SerialInterface) -> bool:
    """Whether the client would send now rather than wait for the radio's queue status.

    The client's own test (`_queueHasFreeSpace`): it counts the free slots the radio last
    reported down by one per packet and, with none left, sleeps until the radio reports more,
    which a radio that has gone away never does. Packets the radio refused stay in the client's
    queue and go out with the next send, so they must not count against the room here, or no
    next send would ever come.
    """
    status = interface.queueStatus
    return status is None or int(status.free) > 0


def _shut_down(interface: SerialInterface, port: str, *, lost: bool) -> None:
    """Close a client so that none of its threads outlive it, whatever state the port is in."""
    reader = interface._rxThread
    if lost:
        # The reader reported the loss and is closing the port itself; close() flushing the
        # port at the same moment fails with a TypeError in pyserial. Let it finish first.
        _join(reader, port)
    # If the handshake is still under way, `connect()` waits up to 30 s for it with no way to
    # cancel; failing it the way the client fails a handshake itself ends that wait now.
    if not interface.isConnected.is_set():
        interface.failure = LinkDown(f"radio on {port} closed while connecting")
        interface.isConnected.set()
    # A send stuck inside the client, waiting for TX-queue room that a gone radio will never
    # report, leaves its packet in `queue`; close() would wait behind it for the same room.
    # This client is finished: forget both (the outbox still has what matters).
    interface.queue.clear()
    interface.queueStatus = None
    try:
        interface.close()
    except (*_PORT_ERRORS, TypeError) as error:
        # The port failed under close() (TypeError: pyserial after the reader closed it): the
        # disconnect message or the flush failed before close() stopped the reader thread.
        logger.info("closing the client on %s: %r", port, error)
        interface._wantExit = True  # what close() would have done next
        _join(reader, port)


def _join(reader: threading.Thread, port: str) -> None:
    """Wait for the client's reader thread to end (it looks at its exit flag every 0.5 s)."""
    if reader.is_alive() and reader is not threading.current_thread():
        reader.join(READER_EXIT)
        if reader.is_alive():
            logger.warning("the client's reader thread on %s did not end; leaving it", port)


def _own_user(interface: SerialInterface, my_num: int | None) -> mesh_pb2.User:
    """This radio's own User, as its NodeInfo carries it (`NodeInfoModule::allocReply`)."""
    num = interface.myInfo.my_node_num if my_num is None else my_num
    node = (interface.nodesByNum or {}).get(num) or {}
    own = node.get("user") if isinstance(node, dict) else None
    own = own if isinstance(own, dict) else {}
    user = mesh_pb2.User(
        id=f"!{num:08x}",
        long_name=str(own.get("longName", ""))[:39],
        short_name=str(own.get("shortName", ""))[:4],
    )
    key = _user_key(own)
    if key is not None:
        user.public_key = key
    return user


def _user_key(user: object) -> bytes | None:
    """A User dict's 32-byte public key (base64 in the client's dicts); None if it has none."""
    text = user.get("publicKey") if isinstance(user, dict) else None
    return _key_bytes(text)


def _key_bytes(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == PUBLIC_KEY_BYTES else None


#: A node's Curve25519 public key (`User.public_key`).
PUBLIC_KEY_BYTES = 32


def _no_keys(_num: int) -> bytes | None:
    return None


def _to_received(
    packet: dict[str, Any], my_num: int, node_key: Callable[[int], bytes | None] = _no_keys
) -> Received | None:
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
    if portnum == "NODEINFO_APP":
        key = _user_key(decoded.get("user"))
        return None if key is None else ReceivedNodeInfo(f"!{sender:08x}", key)
    if portnum != "TEXT_MESSAGE_APP":
        return None
    pki = packet.get("pkiEncrypted") is True
    return ReceivedText(
        sender=f"!{sender:08x}",
        # A PKI direct message has no channel: the firmware delivers it as channel 0 whatever
        # the sender had selected (Router.cpp, perhapsDecode), so it is the public ring's.
        channel=0 if pki else channel,
        # Invalid UTF-8 still deserves an answer, so decode leniently here (the core refuses to
        # store the replacement character, so nothing garbled is posted).
        text=payload.decode("utf-8", errors="replace"),
        direct=packet.get("to") == my_num,
        packet_id=packet_id,
        rx_time=_uint32(packet.get("rxTime")),
        pki_encrypted=pki,
        # The firmware sets the key it decrypted with (Router.cpp perhapsDecode); a channel
        # message carries none, and the radio's node database says whose it is.
        public_key=_key_bytes(packet.get("publicKey")) if pki else node_key(sender),
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


#: What the firmware calls a channel whose settings leave the name empty: its modem preset's
#: long name (firmware src/DisplayFormatters.cpp `getModemPresetDisplayName`, called from
#: src/mesh/Channels.cpp `Channels::getName`), "Custom" without a preset, and "Invalid" for a
#: preset it has no name for.
_PRESET_NAMES = {
    "SHORT_TURBO": "ShortTurbo",
    "SHORT_SLOW": "ShortSlow",
    "SHORT_FAST": "ShortFast",
    "MEDIUM_SLOW": "MediumSlow",
    "MEDIUM_FAST": "MediumFast",
    "LONG_SLOW": "LongSlow",
    "LONG_FAST": "LongFast",
    "LONG_TURBO": "LongTurbo",
    "LONG_MODERATE": "LongMod",
}


def channel_display_name(preset: int, use_preset: bool) -> str:
    """The name an unnamed channel goes by, so two radios on it derive the same bridge ring."""
    if not use_preset:
        return "Custom"
    name = config_pb2.Config.LoRaConfig.ModemPreset.Name(preset) if preset in _PRESETS else ""
    return _PRESET_NAMES.get(name, "Invalid")


_PRESETS = frozenset(config_pb2.Config.LoRaConfig.ModemPreset.values())
