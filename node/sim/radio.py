"""A simulated Meshtastic radio on the far side of a real pseudo-terminal.

The unmodified `meshtastic.serial_interface.SerialInterface` opens the radio's port as if it
were /dev/ttyACM0; this class plays the firmware's part on the pty's master side: it answers the
`want_config_id` handshake, acknowledges every packet the client queues with a `QueueStatus`,
records what the client transmits, and delivers packets from virtual handhelds.

The port is a symlink to the current pty, so that it stays the same path when the radio is
unplugged and plugged in again, as /dev/ttyACM0 or a /dev/serial/by-id name does. The faults a
board node meets in months of service can be played: `unplug()`, `replug()`, `reboot()`, a
radio that stops talking to its client (`go_silent()`) and one that stops answering (`hang()`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from meshtastic.protobuf import (
    channel_pb2,
    config_pb2,
    mesh_pb2,
    module_config_pb2,
    portnums_pb2,
    telemetry_pb2,
)

from node.sim.framing import FrameDecoder, encode_frame

logger = logging.getLogger(__name__)

BROADCAST_NUM = 0xFFFFFFFF
MAX_CHANNELS = 8
TX_QUEUE_LEN = 16  # the firmware's MAX_TX_QUEUE on most boards
REBOOT_PAUSE = 0.5  # seconds a rebooting radio is gone from USB (real boards: a few seconds)
_POLL = 0.1  # seconds between the radio thread's looks at its stop flag and its timers
PUBLIC_PSK = b"\x01"  # "AQ==": the well-known default key of the public channel
Region = config_pb2.Config.LoRaConfig.RegionCode
Preset = config_pb2.Config.LoRaConfig.ModemPreset
Role = config_pb2.Config.DeviceConfig.Role
GpsMode = config_pb2.Config.PositionConfig.GpsMode


def node_id(num: int) -> str:
    """The `!a1b2c3d4` form people and the client use for a node number."""
    return f"!{num:08x}"


@dataclass(frozen=True)
class ChannelSpec:
    """One configured channel; index 0 is the primary one."""

    name: str = ""
    psk: bytes = PUBLIC_PSK


@dataclass(frozen=True)
class RadioProfile:
    """What the radio reports about itself during the handshake."""

    long_name: str = "Meshboard sim"
    short_name: str = "MBsm"
    firmware_version: str = "2.7.15.sim"
    region: int = Region.EU_868
    modem_preset: int = Preset.LONG_FAST
    use_preset: bool = True  # False: custom bandwidth, spreading factor and coding rate
    role: int = Role.CLIENT
    hop_limit: int = 3
    channels: tuple[ChannelSpec, ...] = (ChannelSpec(),)
    public_key: bytes = b""
    gps_mode: int = GpsMode.DISABLED
    # The radio's clock against the host's, in seconds; None: it does not know the time (no
    # GPS fix, no phone, no --set-time), and its own node info then says last_heard 0.
    clock_offset: float | None = 0.0


@dataclass(frozen=True)
class Transmission:
    """A packet the client handed to the radio, with the monotonic time it arrived."""

    packet: mesh_pb2.MeshPacket
    at: float

    @property
    def text(self) -> str | None:
        decoded = self.packet.decoded
        if decoded.portnum != portnums_pb2.PortNum.TEXT_MESSAGE_APP:
            return None
        return str(decoded.payload.decode("utf-8", errors="replace"))


@dataclass
class _Handheld:
    num: int
    long_name: str
    short_name: str
    public_key: bytes = b""


@dataclass
class _Line:
    """One plug-in of the USB cable: a fresh pty behind the radio's stable port path."""

    master_fd: int
    slave_fd: int
    decoder: FrameDecoder = field(default_factory=FrameDecoder)


@dataclass
class _Counters:
    frames_in: int = 0
    undecodable_frames: int = 0
    packets_from_client: int = 0
    packets_to_client: int = 0
    handshakes: int = 0
    telemetry_reports: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class SimulatedRadio:
    """One simulated radio behind a pty. Use as a context manager or call `close()`."""

    def __init__(
        self,
        node_num: int = 0x5B0A4D01,
        profile: RadioProfile | None = None,
        *,
        auto_ack: bool = True,
        telemetry_interval: float | None = None,
        tx_queue_len: int = TX_QUEUE_LEN,
    ) -> None:
        self.node_num = node_num
        self.profile = profile or RadioProfile()
        # Standalone, the radio plays its handhelds' firmware and ACKs what is sent to them;
        # in a simulated mesh the destination's radio does that, so the mesh turns this off.
        self.auto_ack = auto_ack
        # Firmware sends its own device metrics to the client every 60 s; off by default
        # because a simulated mesh reports telemetry for its radios itself.
        self.telemetry_interval = telemetry_interval
        self.tx_queue_len = tx_queue_len
        self.counters = _Counters()
        self._dir = tempfile.mkdtemp(prefix="meshboard-radio-")
        self.port = os.path.join(self._dir, "ttyACM0")
        self._write_lock = threading.Lock()  # whole frames, and the line they go to
        self._read_lock = threading.Lock()  # the radio thread reads; unplug() drains
        self._line: _Line | None = None
        self._state = threading.Condition()
        self._transmissions: list[Transmission] = []
        self._pending_to_client: deque[mesh_pb2.FromRadio] = deque(maxlen=64)
        self._client_ready = False
        self._silent = False  # the firmware dropped its client: nothing until a new handshake
        self._hung = False  # reads nothing useful, answers nothing, until a reboot
        self._replug_at: float | None = None
        self._next_telemetry = time.monotonic() + (telemetry_interval or 0.0)
        self._reboots = 1
        self._handhelds: dict[int, _Handheld] = {}
        self._transmit_listeners: list[Callable[[Transmission], None]] = []
        self._next_from_radio_id = 1
        self._rng = random.Random(node_num)
        self._stop = threading.Event()
        self._plug()
        self._thread = threading.Thread(
            target=self._serve, name=f"simradio-{node_id(node_num)}", daemon=True
        )
        self._thread.start()
        logger.info("simulated radio %s listening on %s", node_id(node_num), self.port)

    # -- the far side: virtual handhelds -------------------------------------------------

    def add_handheld(self, num: int, long_name: str, short_name: str = "") -> str:
        """Make a virtual handheld known to this radio's node database; returns its node id."""
        self._handhelds[num] = _Handheld(num, long_name, short_name or long_name[:4])
        return node_id(num)

    def receive_text(
        self,
        sender: int,
        text: str,
        *,
        channel: int = 0,
        direct: bool = True,
        pki_encrypted: bool = False,
    ) -> int:
        """Deliver a text from a handheld to the client, as if heard over the air.

        Returns the packet id. Before the client has finished its handshake the packet waits,
        as the firmware queues packets for a phone that is not connected yet.
        """
        packet = self._text_packet(sender, text, channel, direct, pki_encrypted)
        self.deliver(packet)
        return int(packet.id)

    def deliver(self, packet: mesh_pb2.MeshPacket) -> None:
        """Hand a packet heard over the air to the connected client."""
        message = mesh_pb2.FromRadio(packet=packet)
        with self._state:
            if not self._client_ready:
                self._pending_to_client.append(message)
                return
        self._send_to_client(message)
        self.counters.packets_to_client += 1

    def acknowledge(self, packet: mesh_pb2.MeshPacket) -> None:
        """Deliver the destination's ACK for `packet`, as held back with `auto_ack=False`."""
        self.deliver(self._ack_packet(packet))

    def give_up(self, packet: mesh_pb2.MeshPacket) -> None:
        """Deliver this radio's own MAX_RETRANSMIT NAK for `packet`: no ACK came back."""
        nak = self._ack_packet(packet, mesh_pb2.Routing.Error.MAX_RETRANSMIT)
        setattr(nak, "from", self.node_num)
        self.deliver(nak)

    def on_transmit(self, listener: Callable[[Transmission], None]) -> None:
        """Call `listener` (on the radio's thread) for every packet the client transmits."""
        self._transmit_listeners.append(listener)

    # -- what the client did --------------------------------------------------------------

    @property
    def transmissions(self) -> list[Transmission]:
        with self._state:
            return list(self._transmissions)

    def texts_to(self, destination: int) -> list[str]:
        """Every text the client sent to `destination`, in order."""
        return [
            t.text for t in self.transmissions if t.packet.to == destination and t.text is not None
        ]

    def wait_for(
        self, predicate: Callable[[list[Transmission]], bool], timeout: float = 10.0
    ) -> list[Transmission]:
        """Block until `predicate(transmissions)` holds; raise TimeoutError after `timeout`."""
        with self._state:
            if not self._state.wait_for(lambda: predicate(self._transmissions), timeout):
                raise TimeoutError(
                    f"radio {node_id(self.node_num)}: condition not met in {timeout} s; "
                    f"transmissions so far: {[t.text for t in self._transmissions]}"
                )
            return list(self._transmissions)

    def wait_for_texts(self, destination: int, count: int, timeout: float = 10.0) -> list[str]:
        """Block until the client has sent `count` texts to `destination`; return them all."""
        self.wait_for(
            lambda sent: (
                sum(1 for t in sent if t.packet.to == destination and t.text is not None) >= count
            ),
            timeout,
        )
        return self.texts_to(destination)

    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._state:
            if not self._state.wait_for(lambda: self._client_ready, timeout):
                raise TimeoutError(f"no client finished the handshake within {timeout} s")

    def wait_handshakes(self, count: int, timeout: float = 10.0) -> None:
        """Block until clients have finished `count` handshakes in all: a reconnect is one more."""
        with self._state:
            if not self._state.wait_for(
                lambda: self._client_ready and self.counters.handshakes >= count, timeout
            ):
                raise TimeoutError(
                    f"radio {node_id(self.node_num)}: {self.counters.handshakes} handshakes, "
                    f"not {count}, within {timeout} s"
                )

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Block until `predicate()` holds; it is looked at whenever a counter changes."""
        with self._state:
            if not self._state.wait_for(predicate, timeout):
                raise TimeoutError(f"radio {node_id(self.node_num)}: {self.counters}")

    @property
    def client_ready(self) -> bool:
        with self._state:
            return self._client_ready

    def write_raw(self, data: bytes) -> None:
        """Put arbitrary bytes on the serial line (boot logs, noise, broken frames)."""
        with self._write_lock:
            if self._line is not None:
                os.write(self._line.master_fd, data)

    # -- faults ---------------------------------------------------------------------------

    @property
    def plugged_in(self) -> bool:
        with self._write_lock:
            return self._line is not None

    def unplug(self) -> None:
        """The USB device disappears: the port path is gone and the client's reads and writes fail.

        What the client wrote before the cable came out still reaches the radio (the USB
        transfer had completed); packets heard meanwhile wait for the next client, as the
        firmware keeps them for a phone that is not connected.
        """
        with self._state:
            self._client_ready = False
        with self._read_lock:
            line = self._line
            if line is None:
                return
            self._drain(line)
            with self._write_lock:
                self._line = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.port)
            for fd in (line.master_fd, line.slave_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
        with self._state:
            self._client_ready = False
        logger.info("simulated radio %s unplugged", node_id(self.node_num))

    def replug(self) -> None:
        """A fresh pty behind the same port path; node number, node DB and channels are kept."""
        with self._state:
            self._replug_at = None
        if not self.plugged_in:
            self._plug()
            logger.info("simulated radio %s plugged in again", node_id(self.node_num))

    def reboot(self, pause: float = REBOOT_PAUSE) -> None:
        """A firmware reboot: gone from USB for `pause` seconds, then back by itself.

        Packets that waited for the client are lost with the radio's RAM.
        """
        self.unplug()
        with self._state:
            self._pending_to_client.clear()
            self._silent = self._hung = False
            self._reboots += 1
            self._replug_at = time.monotonic() + pause

    def go_silent(self) -> None:
        """Stop sending the client anything (packets, queue status) until it asks for config again.

        This is the firmware's serial API after it dropped its client (after 15 minutes without
        contact, or a fault) while the USB port stays open: it still transmits what it is given,
        and a new `want_config_id` handshake brings the client back.
        """
        with self._state:
            self._silent = True
            self._client_ready = False

    def hang(self) -> None:
        """The port stays open but the radio ignores everything, handshakes too, until a reboot."""
        with self._state:
            self._hung = True
            self._client_ready = False

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._write_lock:
            line, self._line = self._line, None
        if line is not None:
            for fd in (line.master_fd, line.slave_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SimulatedRadio:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the radio's side of the stream ---------------------------------------------------

    def _plug(self) -> None:
        master_fd, slave_fd = os.openpty()
        tty.setraw(slave_fd)
        # Point the stable path at the new pty in one step, as udev does for /dev/serial/by-id.
        staging = f"{self.port}.new"
        os.symlink(os.ttyname(slave_fd), staging)
        os.replace(staging, self.port)
        with self._write_lock:
            self._line = _Line(master_fd, slave_fd)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._run_timers()
            with self._read_lock:
                line = self._line
                if line is None:
                    data = None
                else:
                    try:
                        readable, _, _ = select.select([line.master_fd], [], [], _POLL)
                        data = os.read(line.master_fd, 4096) if readable else b""
                    except OSError as error:
                        logger.info("simulated radio %s: line closed (%s)", self.port, error)
                        return
                    self._handle_bytes(line, data)
            if data is None:
                self._stop.wait(_POLL)

    def _run_timers(self) -> None:
        now = time.monotonic()
        with self._state:
            replug = self._replug_at is not None and now >= self._replug_at
            telemetry = bool(self.telemetry_interval) and now >= self._next_telemetry
            if telemetry and self.telemetry_interval:
                self._next_telemetry = now + self.telemetry_interval
        if replug:
            self.replug()
        if telemetry and self.client_ready:
            self.deliver(self._telemetry_packet())
            with self._state:
                self.counters.telemetry_reports += 1
                self._state.notify_all()

    def _drain(self, line: _Line) -> None:
        """Handle every byte the client has already written to this line."""
        while True:
            readable, _, _ = select.select([line.master_fd], [], [], 0)
            if not readable:
                return
            try:
                data = os.read(line.master_fd, 4096)
            except OSError:
                return
            if not data:
                return
            self._handle_bytes(line, data)

    def _handle_bytes(self, line: _Line, data: bytes) -> None:
        with self._state:
            hung = self._hung
        for payload in line.decoder.feed(data):
            if hung:
                self.counters.frames_in += 1
            else:
                self._handle_frame(payload)
        with self._state:
            self._state.notify_all()

    def _handle_frame(self, payload: bytes) -> None:
        self.counters.frames_in += 1
        message = mesh_pb2.ToRadio()
        try:
            message.ParseFromString(payload)
        except Exception:  # protobuf raises DecodeError, a plain Exception subclass
            self.counters.undecodable_frames += 1
            logger.debug("simulated radio: undecodable ToRadio frame of %d bytes", len(payload))
            return
        kind = message.WhichOneof("payload_variant")
        if kind == "want_config_id":
            self._send_config(message.want_config_id)
        elif kind == "packet":
            self._accept_packet(message.packet)
        elif kind == "disconnect":
            with self._state:
                self._client_ready = False
        # heartbeats and the rest need no answer from a simulated radio

    def _accept_packet(self, packet: mesh_pb2.MeshPacket) -> None:
        self.counters.packets_from_client += 1
        setattr(packet, "from", self.node_num)  # the firmware stamps its own number
        transmission = Transmission(packet=packet, at=time.monotonic())
        self._send_to_client(
            mesh_pb2.FromRadio(
                queueStatus=mesh_pb2.QueueStatus(
                    res=0,
                    free=self.tx_queue_len,
                    maxlen=self.tx_queue_len,
                    mesh_packet_id=packet.id,
                )
            )
        )
        # Listeners first, so whoever waits on a transmission sees its effects already.
        for listener in self._transmit_listeners:
            listener(transmission)
        with self._state:
            self._transmissions.append(transmission)
            self._state.notify_all()
        if self.auto_ack and packet.want_ack and packet.to in self._handhelds:
            self.deliver(self._ack_packet(packet))

    def _send_config(self, config_id: int) -> None:
        """Answer the handshake in the firmware's order, then flush packets that waited."""
        with self._state:
            self._client_ready = False
            self._silent = False
        for message in self._config_messages():
            self._send_to_client(message)
        self._send_to_client(mesh_pb2.FromRadio(config_complete_id=config_id))
        with self._state:
            self.counters.handshakes += 1
            self._client_ready = True
            waiting = list(self._pending_to_client)
            self._pending_to_client.clear()
            self._state.notify_all()
        for message in waiting:
            self._send_to_client(message)
            self.counters.packets_to_client += 1

    def _config_messages(self) -> list[mesh_pb2.FromRadio]:
        profile = self.profile
        messages = [
            mesh_pb2.FromRadio(
                my_info=mesh_pb2.MyNodeInfo(
                    my_node_num=self.node_num, reboot_count=self._reboots, min_app_version=30200
                )
            ),
            mesh_pb2.FromRadio(
                metadata=mesh_pb2.DeviceMetadata(
                    firmware_version=profile.firmware_version,
                    device_state_version=24,
                    canShutdown=True,
                    hasBluetooth=True,
                    role=profile.role,
                    hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
                    hasPKC=True,
                )
            ),
            self._node_info(
                _Handheld(self.node_num, profile.long_name, profile.short_name, profile.public_key),
                last_heard=self._own_time(),
            ),
        ]
        messages += [self._node_info(h) for h in self._handhelds.values()]
        for index in range(MAX_CHANNELS):
            messages.append(mesh_pb2.FromRadio(channel=self._channel(index)))
        lora = config_pb2.Config.LoRaConfig(
            use_preset=profile.use_preset,
            modem_preset=profile.modem_preset,
            region=profile.region,
            hop_limit=profile.hop_limit,
            tx_enabled=True,
        )
        for config in (
            config_pb2.Config(device=config_pb2.Config.DeviceConfig(role=profile.role)),
            config_pb2.Config(position=config_pb2.Config.PositionConfig(gps_mode=profile.gps_mode)),
            config_pb2.Config(power=config_pb2.Config.PowerConfig()),
            config_pb2.Config(network=config_pb2.Config.NetworkConfig()),
            config_pb2.Config(display=config_pb2.Config.DisplayConfig()),
            config_pb2.Config(lora=lora),
            config_pb2.Config(bluetooth=config_pb2.Config.BluetoothConfig(enabled=True)),
            config_pb2.Config(
                security=config_pb2.Config.SecurityConfig(public_key=profile.public_key)
            ),
        ):
            messages.append(mesh_pb2.FromRadio(config=config))
        for module in (
            module_config_pb2.ModuleConfig(mqtt=module_config_pb2.ModuleConfig.MQTTConfig()),
            module_config_pb2.ModuleConfig(serial=module_config_pb2.ModuleConfig.SerialConfig()),
            module_config_pb2.ModuleConfig(
                telemetry=module_config_pb2.ModuleConfig.TelemetryConfig()
            ),
        ):
            messages.append(mesh_pb2.FromRadio(moduleConfig=module))
        return messages

    def _channel(self, index: int) -> channel_pb2.Channel:
        specs = self.profile.channels
        if index >= len(specs):
            return channel_pb2.Channel(index=index, role=channel_pb2.Channel.Role.DISABLED)
        spec = specs[index]
        roles = channel_pb2.Channel.Role
        role = roles.PRIMARY if index == 0 else roles.SECONDARY
        return channel_pb2.Channel(
            index=index,
            role=role,
            settings=channel_pb2.ChannelSettings(name=spec.name, psk=spec.psk),
        )

    def _own_time(self) -> int:
        """What the firmware puts in its own node info: its clock if it trusts it, else 0."""
        offset = self.profile.clock_offset
        return 0 if offset is None else int(time.time() + offset)

    @staticmethod
    def _node_info(node: _Handheld, last_heard: int | None = None) -> mesh_pb2.FromRadio:
        user = mesh_pb2.User(
            id=node_id(node.num),
            long_name=node.long_name,
            short_name=node.short_name,
            hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
            public_key=node.public_key,
        )
        heard = int(time.time()) if last_heard is None else last_heard
        return mesh_pb2.FromRadio(
            node_info=mesh_pb2.NodeInfo(num=node.num, user=user, last_heard=heard)
        )

    def _text_packet(
        self, sender: int, text: str, channel: int, direct: bool, pki_encrypted: bool
    ) -> mesh_pb2.MeshPacket:
        packet = mesh_pb2.MeshPacket(
            to=self.node_num if direct else BROADCAST_NUM,
            channel=channel,
            id=self._rng.getrandbits(32) or 1,
            decoded=mesh_pb2.Data(
                portnum=portnums_pb2.PortNum.TEXT_MESSAGE_APP, payload=text.encode("utf-8")
            ),
            rx_time=int(time.time()),
            rx_snr=6.0,
            rx_rssi=-80,
            hop_limit=self.profile.hop_limit,
            hop_start=self.profile.hop_limit,
            pki_encrypted=pki_encrypted,
        )
        setattr(packet, "from", sender)
        return packet

    def _ack_packet(
        self, acked: mesh_pb2.MeshPacket, error: int = mesh_pb2.Routing.Error.NONE
    ) -> mesh_pb2.MeshPacket:
        """The routing ACK a handheld's firmware sends for a want_ack direct message."""
        packet = mesh_pb2.MeshPacket(
            to=self.node_num,
            channel=acked.channel,
            id=self._rng.getrandbits(32) or 1,
            decoded=mesh_pb2.Data(
                portnum=portnums_pb2.PortNum.ROUTING_APP,
                payload=mesh_pb2.Routing(error_reason=error).SerializeToString(),
                request_id=acked.id,
            ),
            rx_time=int(time.time()),
        )
        setattr(packet, "from", acked.to)
        return packet

    def _telemetry_packet(self) -> mesh_pb2.MeshPacket:
        """DeviceTelemetryModule's report to the client: this radio's own device metrics."""
        report = telemetry_pb2.Telemetry(
            time=int(time.time()),
            device_metrics=telemetry_pb2.DeviceMetrics(channel_utilization=0.0, air_util_tx=0.0),
        )
        packet = mesh_pb2.MeshPacket(
            to=BROADCAST_NUM,
            id=self._rng.getrandbits(32) or 1,
            decoded=mesh_pb2.Data(
                portnum=portnums_pb2.PortNum.TELEMETRY_APP, payload=report.SerializeToString()
            ),
            rx_time=int(time.time()),
        )
        setattr(packet, "from", self.node_num)
        return packet

    def _send_to_client(self, message: mesh_pb2.FromRadio) -> None:
        with self._state:
            if self._silent or self._hung:
                return
        with self._write_lock:
            if self._line is None:
                return  # unplugged: nobody to tell
            message.id = self._next_from_radio_id
            self._next_from_radio_id += 1
            frame = encode_frame(message.SerializeToString())
            try:
                os.write(self._line.master_fd, frame)
            except OSError as error:
                logger.info("simulated radio %s: cannot write (%s)", self.port, error)
