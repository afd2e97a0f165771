"""A simulated Meshtastic radio on the far side of a real pseudo-terminal.

The unmodified `meshtastic.serial_interface.SerialInterface` opens the radio's port as if it
were /dev/ttyACM0; this class plays the firmware's part on the pty's master side: it answers the
`want_config_id` handshake, applies the firmware's rules for clients to every packet the client
hands over (`node/sim/phone_api.py`: recently seen ids, rate limits, QueueStatus, heartbeats)
and its Router's rules to what it sends and hears (`node/sim/router.py`: PKI, legacy DMs, the
bitfield, ACKs), records what the client transmits, and delivers packets from virtual
handhelds. Its node database (`node/sim/nodedb.py`) holds the nodes whose public keys it
knows; in a `Mesh` it learns more from the NodeInfo it hears (`node/sim/nodeinfo.py`). Outside
a mesh its TX queue drains into empty air at LoRa speed (`node/sim/air.py`); in a `Mesh` the
mesh is its air.

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
    mesh_pb2,
    portnums_pb2,
)

from node.clock import SYSTEM_CLOCK, Clock
from node.sim import firmware, handshake, lora, router
from node.sim.air import OnAir, StandaloneAir, StandaloneRouter
from node.sim.framing import FrameDecoder, encode_frame
from node.sim.handshake import NodeEntry
from node.sim.nodedb import NodeDB
from node.sim.phone_api import Decision, PhoneAPI, Verdict
from node.sim.profile import (
    MAX_CHANNELS,
    PUBLIC_PSK,
    ChannelSpec,
    GpsMode,
    Preset,
    RadioCounters,
    RadioProfile,
    RadioRouter,
    Refusal,
    Region,
    Role,
    Transmission,
    node_id,
)
from node.sim.router import BROADCAST_NUM, PKI_KEY, stand_in_key
from node.sim.rules import FirmwareRules

# The radio's description lives in node.sim.profile; these names are imported from here too.
__all__ = [
    "BROADCAST_NUM",
    "MAX_CHANNELS",
    "PUBLIC_PSK",
    "REBOOT_PAUSE",
    "TX_QUEUE_LEN",
    "ChannelSpec",
    "FirmwareRules",
    "GpsMode",
    "Preset",
    "RadioCounters",
    "RadioProfile",
    "RadioRouter",
    "Refusal",
    "Region",
    "Role",
    "SimulatedRadio",
    "Transmission",
    "node_id",
]

logger = logging.getLogger(__name__)

TX_QUEUE_LEN = firmware.MAX_TX_QUEUE
REBOOT_PAUSE = 0.5  # seconds a rebooting radio is gone from USB (real boards: a few seconds)
_POLL = 0.1  # seconds between the radio thread's looks at its stop flag and its timers
RoutingError = mesh_pb2.Routing.Error


@dataclass
class _Line:
    """One plug-in of the USB cable: a fresh pty behind the radio's stable port path."""

    master_fd: int
    slave_fd: int
    decoder: FrameDecoder = field(default_factory=FrameDecoder)


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
        clock: Clock | None = None,
    ) -> None:
        self.node_num = node_num
        self.profile = profile or RadioProfile()
        self.rules = self.profile.active_rules()
        self.public_key = self.profile.key_of(node_num)
        # The firmware's millis(): what the rate limits and the airtime are measured in. A
        # mesh makes it the mesh's clock; a test can run the rules faster than real time.
        self.clock = clock or SYSTEM_CLOCK
        # Standalone, the radio plays its handhelds' firmware and ACKs what is sent to them;
        # in a simulated mesh the destination's radio does that, so the mesh turns this off.
        self.auto_ack = auto_ack
        # Firmware sends its own device metrics to the client every 60 s; off by default
        # because a simulated mesh reports telemetry for its radios itself.
        self.telemetry_interval = telemetry_interval
        self.tx_queue_len = tx_queue_len
        self.counters = RadioCounters()
        self._dir = tempfile.mkdtemp(prefix="meshboard-radio-")
        self.port = os.path.join(self._dir, "ttyACM0")
        self._write_lock = threading.Lock()  # whole frames, and the line they go to
        self._read_lock = threading.Lock()  # the radio thread reads; unplug() drains
        self._line: _Line | None = None
        self._state = threading.Condition()
        self._transmissions: list[Transmission] = []
        self._refused: list[Refusal] = []
        self._pending_to_client: deque[mesh_pb2.FromRadio] = deque(maxlen=64)
        self._client_ready = False
        self._silent = False  # the firmware dropped its client: nothing until a new handshake
        self._hung = False  # reads nothing useful, answers nothing, until a reboot
        self._replug_at: float | None = None
        self._pull_after: Callable[[Transmission], bool] | None = None  # see `unplug_after`
        self._pull_now = False  # that packet came: pull once its frame is handled
        self._next_telemetry = time.monotonic() + (telemetry_interval or 0.0)
        self._reboots = 1
        self.nodedb = NodeDB(node_num, self.public_key)  # NodeDB.cpp: learns from NodeInfo
        self._transmit_listeners: list[Callable[[Transmission], None]] = []
        self._next_from_radio_id = 1
        self._rng = random.Random(node_num)
        self._phone = PhoneAPI(self.rules)
        preset = lora.preset_for(self.profile.modem_preset)
        self.air = StandaloneAir(self.clock, preset, tx_queue_len, random.Random(~node_num))
        self._router: RadioRouter = StandaloneRouter(node_num, self._encoded, self.air)
        self._stop = threading.Event()
        self._plug()
        self._thread = threading.Thread(
            target=self._serve, name=f"simradio-{node_id(node_num)}", daemon=True
        )
        self._thread.start()
        logger.info("simulated radio %s listening on %s", node_id(node_num), self.port)

    # -- the far side: virtual handhelds -------------------------------------------------

    def add_handheld(
        self, num: int, long_name: str, short_name: str = "", public_key: bytes | None = None
    ) -> str:
        """Make a virtual handheld known to this radio's node database (`self.nodedb`), as its
        NodeInfo would, whatever it held; returns its node id. Its public key is made up from
        its number unless given; b"" is a node without one, to which a direct message is
        refused (2.7.19+) or, by older firmware, sent on the channel key."""
        key = stand_in_key(num) if public_key is None else public_key
        self.nodedb.add(NodeEntry(num, long_name, short_name or long_name[:4], key))
        return node_id(num)

    def node_key(self, num: int) -> bytes | None:
        """The public key this radio's node database holds for `num`; None: unknown node."""
        return self.nodedb.key_of(num)

    def receive_text(
        self,
        sender: int,
        text: str,
        *,
        channel: int = 0,
        direct: bool = True,
        pki_encrypted: bool | None = None,
    ) -> int:
        """Deliver a text from a handheld to the client, as if heard over the air.

        As a 2.7.14+ handheld sends it: a direct message PKI-encrypted, so it reaches the
        client on channel 0 with `pki_encrypted` and the sender's public key whatever `channel`
        the sender had selected; a broadcast (`direct=False`) on its channel. `pki_encrypted`
        False injects a legacy direct message on the channel key, which this radio drops
        (`counters.legacy_dms_dropped`) unless its owner is licensed. A sender the radio does
        not know yet is added to its node database first (its NodeInfo was heard).

        Returns the packet id. Before the client has finished its handshake the packet waits,
        as the firmware queues packets for a phone that is not connected yet.
        """
        if self.node_key(sender) is None:
            self.add_handheld(sender, node_id(sender))
        pki = direct if pki_encrypted is None else pki_encrypted
        packet = self._text_packet(sender, text, channel, direct)
        specs = self.profile.channels
        index = channel if 0 <= channel < len(specs) else None
        spec = specs[index] if index is not None else ChannelSpec("", b"not this radio's")
        decoded = router.decode(
            packet,
            PKI_KEY if pki else (spec.name, spec.psk),
            self.rules,
            own_num=self.node_num,
            own_key=self.public_key,
            sender_key=self.node_key(sender),
            channel_index=index,
        )
        with self._state:
            if decoded.legacy_dm:
                self.counters.legacy_dms_dropped += 1
            elif decoded.index is None:
                self.counters.undecodable += 1
            self._state.notify_all()
        if decoded.index is None:
            logger.info("%s dropped text %#x from %s", node_id(self.node_num), packet.id, sender)
            return int(packet.id)
        packet.channel = decoded.index
        if decoded.pki:
            packet.pki_encrypted = True
            packet.public_key = self.node_key(sender) or b""
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
        """Deliver the destination's ACK for `packet`, as held back with `auto_ack=False`.

        A text direct message's ACK asks for an ACK itself (2.7.12+); this radio answers it
        with a 0-hop ACK on its air (ReliableRouter::sniffReceived)."""
        ack = self._ack_packet(packet)
        self.deliver(ack)
        plan = router.ack_for(ack, self.rules, self.profile.hop_limit)
        if plan is not None:
            self._router.send_local(self._own_ack(ack, plan))

    def give_up(self, packet: mesh_pb2.MeshPacket) -> None:
        """Deliver this radio's own MAX_RETRANSMIT NAK for `packet`: no ACK came back."""
        self.deliver(self._local_nak(RoutingError.MAX_RETRANSMIT, packet))

    def report_queued(self, packet_id: int, res: int) -> None:
        """`MeshService::sendToMesh` for a packet the firmware made itself (its NodeInfo): the
        client reads a QueueStatus for an id it never sent."""
        if self.client_ready:
            self._queue_status(res, packet_id)

    def on_transmit(self, listener: Callable[[Transmission], None]) -> None:
        """Call `listener` (on the radio's thread) for every packet the client transmits."""
        self._transmit_listeners.append(listener)

    def use_clock(self, clock: Clock) -> None:
        """Keep the firmware's time (rate limits, the TX queue's airtime) by `clock`."""
        self.clock = self.air.clock = clock

    def attach(self, mesh_router: RadioRouter, clock: Clock) -> None:
        """Put this radio into a mesh: what it sends goes there, timed by the mesh's clock."""
        self.clock = clock
        self._router = mesh_router

    # -- what the client did --------------------------------------------------------------

    @property
    def transmissions(self) -> list[Transmission]:
        with self._state:
            return list(self._transmissions)

    @property
    def refused(self) -> list[Refusal]:
        """Packets the client handed over that the radio did not queue, in order."""
        with self._state:
            return list(self._refused)

    @property
    def on_air(self) -> list[OnAir]:
        """What this radio put on the air outside a mesh (in one, see `Mesh.log`)."""
        return self.air.log

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
            self._pull(line)

    def unplug_after(self, chosen: Callable[[Transmission], bool]) -> None:
        """Pull the cable the moment the radio has taken the first packet `chosen` picks: the
        frames the client wrote after it never arrive (what was still queued, stays queued)."""
        with self._state:
            self._pull_after = chosen

    def _pull(self, line: _Line) -> None:
        """The cable comes out (the caller holds the read lock)."""
        if self._line is not line:
            return  # out already
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
        self._phone = PhoneAPI(self.rules)  # the recent ids and send times are RAM
        self.air.clear()
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
        if self.client_ready:  # MeshService::loop: room again in a queue reported full
            status = self._phone.after_queue_change(*self._router.queue_status())
            if status is not None:
                self._send_to_client(mesh_pb2.FromRadio(queueStatus=status))
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
            if self._pull_now:  # `unplug_after`: the rest of what was written is lost
                self._pull_now = False
                self._pull(line)
                break
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
        elif kind == "heartbeat":
            with self._state:
                self.counters.heartbeats += 1
            status = self._phone.heartbeat(message.heartbeat, *self._router.queue_status())
            if status is not None:
                self._send_to_client(mesh_pb2.FromRadio(queueStatus=status))
        elif kind == "disconnect":
            self._phone.close()
            with self._state:
                self._client_ready = False
        # the rest needs no answer from a simulated radio

    def _accept_packet(self, packet: mesh_pb2.MeshPacket) -> None:
        """`PhoneAPI::handleToRadioPacket`, then `MeshService::sendToMesh`: the QueueStatus
        (res: the Router's verdict), then any NAK the Router made (`abortSendAndNak`)."""
        self.counters.packets_from_client += 1
        now = self.clock.monotonic()
        decision = self._phone.handle_to_radio_packet(packet, now)
        if decision.verdict is Verdict.REPEATED:
            self._refuse(packet, now, decision.verdict.value)
            return
        if not decision.sent:
            self._refuse_at_the_door(packet, now, decision)
            return
        setattr(packet, "from", self.node_num)  # the firmware sends it as its own
        outcome = self._router.send_local(packet)
        self._queue_status(outcome.res, packet.id)
        if outcome.nak is not None:
            self.deliver(self._local_nak(outcome.nak, packet))
        if not outcome.queued:
            reason = "queue full" if outcome.nak is None else RoutingError.Name(outcome.nak)
            self._refuse(packet, now, reason)
            return
        transmission = Transmission(packet=packet, at=now)
        # Listeners first, so whoever waits on a transmission sees its effects already.
        for listener in self._transmit_listeners:
            listener(transmission)
        with self._state:
            self._transmissions.append(transmission)
            if self._pull_after is not None and self._pull_after(transmission):
                self._pull_after, self._pull_now = None, True
            self._state.notify_all()
        known = packet.to != self.node_num and self.node_key(packet.to) is not None
        if self.auto_ack and packet.want_ack and known:
            self.acknowledge(packet)

    def _refuse_at_the_door(
        self, packet: mesh_pb2.MeshPacket, now: float, decision: Decision
    ) -> None:
        """A packet PhoneAPI refused: a QueueStatus (res 0), for a text the RATE_LIMIT_EXCEEDED
        NAK to the packet's `from`: to node 0 on the air for a client that left it 0, as the
        Python client does, or to the client itself (`Router::sendLocal`, `isToUs`)."""
        self._queue_status(0, packet.id)
        if decision.notification:
            self._send_to_client(
                mesh_pb2.FromRadio(
                    clientNotification=mesh_pb2.ClientNotification(
                        reply_id=packet.id,
                        level=mesh_pb2.LogRecord.Level.WARNING,
                        message=decision.notification,
                        time=int(self.clock.now().timestamp()),
                    )
                )
            )
        if decision.nak:
            to = self.node_num if self.rules.rate_limit_nak_to_client else getattr(packet, "from")
            nak = router.ack_nak(
                RoutingError.RATE_LIMIT_EXCEEDED,
                own_num=self.node_num,
                to=to,
                request_id=packet.id,
                channel=packet.channel,
                packet_id=self._rng.getrandbits(32) or 1,
            )
            if to == self.node_num:
                nak.rx_time = int(self.clock.now().timestamp())
                self.deliver(nak)
            else:
                self._router.send_local(nak)
        self._refuse(packet, now, decision.verdict.value)

    def _queue_status(self, res: int, packet_id: int) -> None:
        status = self._phone.queue_status(
            *self._router.queue_status(), res=res, packet_id=packet_id
        )
        self._send_to_client(mesh_pb2.FromRadio(queueStatus=status))

    def _refuse(self, packet: mesh_pb2.MeshPacket, now: float, reason: str) -> None:
        with self._state:
            self._refused.append(Refusal(packet, now, reason))
            if reason == Verdict.REPEATED.value:
                self.counters.repeated_ids += 1
            elif reason == Verdict.RATE_LIMITED.value:
                self.counters.rate_limited += 1
            else:
                self.counters.refused += 1
            self._state.notify_all()
        logger.info("%s: %s packet %#x", node_id(self.node_num), reason, packet.id)

    def _local_nak(self, error: int, packet: mesh_pb2.MeshPacket) -> mesh_pb2.MeshPacket:
        """`Router::abortSendAndNak`: a NAK to getFrom(p), this radio, so its client gets it;
        after an encoding failure the channel is reset to 0 (`Router::send`)."""
        encoding_failed = error not in (RoutingError.DUTY_CYCLE_LIMIT, RoutingError.MAX_RETRANSMIT)
        nak = router.ack_nak(
            error,
            own_num=self.node_num,
            to=self.node_num,
            request_id=packet.id,
            channel=0 if encoding_failed else packet.channel,
            packet_id=self._rng.getrandbits(32) or 1,
        )
        nak.rx_time = int(self.clock.now().timestamp())
        return nak

    def _own_ack(self, acked: mesh_pb2.MeshPacket, plan: router.AckPlan) -> mesh_pb2.MeshPacket:
        """This radio's ACK of a packet to it (`RoutingModule::sendAckNak`)."""
        return router.ack_nak(
            RoutingError.NONE,
            own_num=self.node_num,
            to=getattr(acked, "from"),
            request_id=acked.id,
            channel=acked.channel,
            packet_id=self._rng.getrandbits(32) or 1,
            hop_limit=plan.hop_limit,
            want_ack=plan.want_ack,
        )

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
        nodes = self.nodedb.entries()
        profile = self.profile
        own = NodeEntry(self.node_num, profile.long_name, profile.short_name, self.public_key)
        return handshake.config_messages(
            self.node_num,
            self.profile,
            public_key=self.public_key,
            reboots=self._reboots,
            own=own,
            nodes=nodes,
        )

    def _text_packet(
        self, sender: int, text: str, channel: int, direct: bool
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
        )
        packet.decoded.bitfield = 0  # set by the sender's perhapsEncode (2.5+)
        setattr(packet, "from", sender)
        return packet

    def _ack_packet(self, acked: mesh_pb2.MeshPacket) -> mesh_pb2.MeshPacket:
        """The routing ACK a handheld's firmware (this radio's version) sends a direct
        neighbour for a want_ack direct message: for a text one that wants an ACK itself
        (2.7.12+), on the handheld's channel 0 when the message came PKI-encrypted."""
        heard, _ = self._encoded(acked)
        heard.hop_start = heard.hop_limit  # straight from this radio: no hops
        plan = router.ack_for(heard, self.rules, self.profile.hop_limit) or router.AckPlan(0)
        packet = router.ack_nak(
            RoutingError.NONE,
            own_num=acked.to,
            to=self.node_num,
            request_id=acked.id,
            channel=heard.channel,
            packet_id=self._rng.getrandbits(32) or 1,
            hop_limit=plan.hop_limit,
            want_ack=plan.want_ack,
        )
        packet.hop_start = plan.hop_limit
        packet.decoded.bitfield = 0
        packet.rx_time = int(self.clock.now().timestamp())
        return packet

    def _encoded(self, packet: mesh_pb2.MeshPacket) -> tuple[mesh_pb2.MeshPacket, int]:
        """`Router::send` → `perhapsEncode` on a copy of a packet this radio originates: the
        packet as it goes on the air (bitfield, PKI), and NONE or why it cannot go."""
        air = mesh_pb2.MeshPacket()
        air.CopyFrom(packet)
        setattr(air, "from", self.node_num)
        air.hop_start = air.hop_limit
        specs = self.profile.channels
        name = specs[air.channel].name if air.channel < len(specs) else None
        error = router.encode(
            air,
            self.rules,
            own_key=self.public_key,
            destination_key=self.node_key(air.to),
            channel_name=name,
        )
        return air, error

    def _telemetry_packet(self) -> mesh_pb2.MeshPacket:
        """DeviceTelemetryModule's report to the client: this radio's own device metrics."""
        return firmware.device_metrics_packet(
            self.node_num,
            self._rng.getrandbits(32) or 1,
            channel_utilization=0.0,
            air_util_tx=0.0,
            uptime=0,
            unix_time=int(time.time()),
        )

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
                return
        if message.HasField("queueStatus"):
            with self._state:
                self.counters.queue_statuses += 1
                self._state.notify_all()
