"""A simulated LoRa mesh: pty radios and virtual handhelds sharing one simulated medium.

Each node runs a model of the Meshtastic 2.x firmware's router: managed flooding (duplicates
dropped by (from, id); each radio rebroadcasts once with hop_limit - 1 after an SNR-weighted
contention delay, and cancels that rebroadcast when it hears a neighbour's first), carrier sense,
ACKs for want_ack direct messages with up to three attempts and a NAK, implicit ACKs when a
relay is heard repeating one's own packet, and the regional duty-cycle limit. Links are
symmetric with a loss probability; overlapping frames at a receiver collide.

Every duration is LoRa airtime for the mesh's preset, in simulated seconds of a shared `Clock`,
so a test at speed 100 waits 19 ms for a 1.9 s LongFast packet while every figure counts 1.9 s.

Each radio and handheld applies the firmware's Router rules for its version
(`node/sim/router.py`): the bitfield on what it originates, PKI for direct messages (on channel
0, 12 bytes more; refused without the destination's key from 2.7.19), legacy direct messages
dropped from 2.7.14, and a text DM's ACK that wants an ACK itself from 2.7.12. A pty radio's
client first meets its PhoneAPI (`node/sim/phone_api.py`): rate limits, recent ids, QueueStatus.

Random choices (loss, delays, ids) come from the seed and the packet they concern. Real clients
on pty radios pick their own ids and send when their threads run, so only runs without them (on
a `VirtualClock`, with `run_until`) replay exactly.

Each node keeps a node database (`node/sim/nodedb.py`) and learns a key from a NodeInfo
(`node/sim/nodeinfo.py`); members join announced (known to all from the start) or not
(`add_handheld(announced=False)`). A PKI direct message is read only with the keys it was
sealed with, as sender and destination hold them when it is heard.

Simplifications, on purpose: no next-hop routing for DMs (every packet floods), no periodic
NodeInfo, position or telemetry broadcasts on the air, one preset for the whole mesh, and a
switched-off radio keeps its serial line (only its LoRa side goes silent).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable

from meshtastic.protobuf import config_pb2, mesh_pb2

from node.clock import Clock
from node.sim import firmware, lora, router
from node.sim.handheld import VirtualHandheld
from node.sim.handshake import NodeEntry
from node.sim.nodedb import coerce_user_id
from node.sim.nodeinfo import NodeInfoExchange
from node.sim.profile import RadioProfile, node_id
from node.sim.radio import SimulatedRadio
from node.sim.router import BROADCAST_NUM, PKI_KEY, ChannelKey, Outcome
from node.sim.scheduler import Scheduler, Timer
from node.sim.station import (
    DEFAULT_SNR,
    AirRecord,
    Dice,
    Link,
    MeshStats,
    NodeStats,
    PacketKey,
    QueuedTx,
    Reception,
    Reliable,
    Station,
    TxKind,
    mesh_stats,
    packet_key,
)
from node.sim.topology import Builders
from node.sim.topology import Member as Member  # imported from here too

logger = logging.getLogger(__name__)

Role = config_pb2.Config.DeviceConfig.Role
RoutingError = mesh_pb2.Routing.Error

FIRST_NODE_NUM = 0x5B0A0001
CAPTURE_DB = 6.0  # a frame this much stronger survives an overlapping weaker one
EU_868_DUTY_CYCLE = 10.0  # percent of an hour


class Mesh(Builders):
    """Several radios and handhelds, who hears whom, and the air between them.

    Use as a context manager or call `close()`: it stops the scheduler thread and closes the
    pty radios it created.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        preset: lora.Preset = lora.LONG_FAST,
        seed: int = 0,
        collisions: bool = True,
        duty_cycle_percent: float | None = EU_868_DUTY_CYCLE,
        telemetry_interval: float | None = 60.0,
    ) -> None:
        self.clock = clock or Clock()
        self.preset = preset
        self.seed = seed
        self.collisions = collisions
        self.duty_cycle_percent = duty_cycle_percent
        self.telemetry_interval = telemetry_interval
        self.positions: dict[int, tuple[float, float]] = {}
        self._dice = Dice(seed)
        self._sched = Scheduler(self.clock)
        self._stations: dict[int, Station] = {}
        self._links: dict[frozenset[int], Link] = {}
        self._log: list[AirRecord] = []
        self._closed = False
        self._node_info = NodeInfoExchange(self._originate, self._deliver, self._dice, self.now)
        if telemetry_interval:
            self._sched.after(telemetry_interval, self._report_telemetry, background=True)

    # -- members --------------------------------------------------------------------------

    def add_radio(
        self,
        num: int | None = None,
        profile: RadioProfile | None = None,
        *,
        radio: SimulatedRadio | None = None,
    ) -> SimulatedRadio:
        """A pty radio in the mesh: a new one (closed with the mesh) or `radio`, adopted.

        Its clients connect to `radio.port` with the unmodified SerialInterface. The mesh
        takes over its ACKs, and its node database lists the other members announced so far.
        """
        if radio is None:
            num = self._new_num(num)
            profile = self._profile(num, profile, "Radio")
            radio = SimulatedRadio(num, profile, auto_ack=False, clock=self.clock)
            owned = True
        else:
            owned = False
            radio.auto_ack = False
        self._join(Station(endpoint=radio, kind="radio", owned=owned))
        return radio

    def add_handheld(
        self, num: int | None = None, profile: RadioProfile | None = None, *, announced: bool = True
    ) -> VirtualHandheld:
        """A virtual handheld in the mesh, with a person scripted by the caller. Announced, every
        node knows it (and its key) from the start; else nobody does until its NodeInfo is
        heard, while it knows the members announced so far."""
        num = self._new_num(num)
        handheld = VirtualHandheld(
            num,
            self._profile(num, profile, "Handheld"),
            lambda packet: self._from_handheld(num, packet),
            random.Random(f"{self.seed}:{num}"),
        )
        self._join(Station(endpoint=handheld, kind="handheld", owned=True, announced=announced))
        return handheld

    @property
    def members(self) -> list[Member]:
        """Radios and handhelds in the order they joined."""
        with self._sched.lock:
            return [self._member(s) for s in self._stations.values()]

    @property
    def radios(self) -> list[SimulatedRadio]:
        """The pty radios, in the order they joined."""
        return [m for m in self.members if isinstance(m, SimulatedRadio)]

    @property
    def handhelds(self) -> list[VirtualHandheld]:
        """The virtual handhelds, in the order they joined."""
        return [m for m in self.members if isinstance(m, VirtualHandheld)]

    def member(self, num: int) -> Member:
        with self._sched.lock:
            return self._member(self._station(num))

    # -- topology -------------------------------------------------------------------------

    def link(
        self, a: Member | int, b: Member | int, loss: float = 0.0, snr: float = DEFAULT_SNR
    ) -> None:
        """Let `a` and `b` hear each other (again), losing each frame with probability `loss`."""
        x, y = _num(a), _num(b)
        if x == y:
            raise ValueError("a node cannot link to itself")
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss is a probability, not {loss}")
        with self._sched.lock:
            self._station(x), self._station(y)
            self._links[frozenset((x, y))] = Link(loss, snr)

    def unlink(self, a: Member | int, b: Member | int) -> None:
        """Partition `a` from `b`; `link` heals it."""
        with self._sched.lock:
            self._links.pop(frozenset((_num(a), _num(b))), None)

    def neighbours(self, a: Member | int) -> dict[int, Link]:
        x = _num(a)
        with self._sched.lock:
            return {n: link for pair, link in self._links.items() if x in pair for n in pair - {x}}

    def set_online(self, a: Member | int, online: bool) -> None:
        """Switch a radio's LoRa side on or off; switched off it hears and sends nothing and
        forgets its queue, as a power cycle would."""
        with self._sched.lock:
            station = self._station(_num(a))
            if online:
                station.online = True
            elif station.online:
                station.power_off()
            logger.info("%s switched %s", node_id(station.num), "on" if online else "off")

    def is_online(self, a: Member | int) -> bool:
        with self._sched.lock:
            return self._station(_num(a)).online

    # -- figures --------------------------------------------------------------------------

    @property
    def log(self) -> list[AirRecord]:
        """Every transmission so far, in order."""
        with self._sched.lock:
            return list(self._log)

    def now(self) -> float:
        """Simulated seconds since the mesh started."""
        return self._sched.now()

    def stats(self) -> MeshStats:
        with self._sched.lock:
            return mesh_stats(self._stations.values(), self._log, self._sched.now())

    def node_stats(self, a: Member | int) -> NodeStats:
        with self._sched.lock:
            return self._station(_num(a)).stats(self._sched.now())

    def channel_bookings(self, a: Member | int) -> list[tuple[float, float, int]]:
        """Each frame a radio sent or took in, (at, airtime, port), as its firmware counts it."""
        with self._sched.lock:
            return list(self._station(_num(a)).ledger.bookings)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` at simulated time `when` on the mesh's timeline (a board in-process)."""
        return self._sched.at(when, callback)

    def run_until(self, until: float) -> None:
        """On a `VirtualClock`: run all that is due by `until` (simulated seconds), then stop."""
        self._sched.run_until(until)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block (real seconds) until nothing is on the air or waiting to go on it; periodic
        telemetry and a packet a pty client is still writing do not count."""
        if not self._sched.wait_idle(timeout):
            raise TimeoutError(f"the mesh was still busy after {timeout} s")

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the scheduler and the radios this mesh built; raise if a callback failed."""
        if self._closed:
            return
        self._closed = True
        self._sched.stop()
        for station in self._stations.values():
            if station.owned and isinstance(station.endpoint, SimulatedRadio):
                station.endpoint.close()
        if self._sched.errors:
            raise RuntimeError(f"{len(self._sched.errors)} mesh callbacks failed") from (
                self._sched.errors[0]
            )

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- joining --------------------------------------------------------------------------

    def _new_num(self, num: int | None) -> int:
        with self._sched.lock:
            if num is None:
                num = FIRST_NODE_NUM + len(self._stations)
                while num in self._stations:
                    num += 1
            if num in self._stations:
                raise ValueError(f"{node_id(num)} is already in the mesh")
            return num

    def _profile(self, num: int, profile: RadioProfile | None, label: str) -> RadioProfile:
        profile = profile or RadioProfile(
            long_name=f"{label} {num & 0xFFFF:04x}", short_name=f"{num & 0xFFFF:04x}"
        )
        return dataclasses.replace(profile, modem_preset=lora.modem_preset_of(self.preset))

    def _join(self, station: Station) -> None:
        with self._sched.lock:
            if station.num in self._stations:
                raise ValueError(f"{node_id(station.num)} is already in the mesh")
            new = station.endpoint
            for other in self._stations.values():
                if station.announced:
                    other.endpoint.nodedb.add(_entry(station))
                if other.announced:
                    new.nodedb.add(_entry(other))
            self._stations[station.num] = station
            if isinstance(new, SimulatedRadio):
                new.attach(_RadioSide(self, station.num), self.clock)

    def _station(self, num: int) -> Station:
        try:
            return self._stations[num]
        except KeyError:
            raise KeyError(f"{node_id(num)} is not in the mesh") from None

    @staticmethod
    def _member(station: Station) -> Member:
        assert isinstance(station.endpoint, SimulatedRadio | VirtualHandheld)
        return station.endpoint

    # -- from clients onto the air --------------------------------------------------------

    def _from_radio(self, num: int, packet: mesh_pb2.MeshPacket) -> Outcome:
        """A pty radio's Router: its own NAK for a refusal the radio delivers itself."""
        with self._sched.lock:
            station = self._stations[num]
            outcome = self._originate(
                station, packet, "ack" if router.is_routing(packet) else "origin"
            )
            if outcome.nak is not None:
                station.counters.naks += 1
            return outcome

    def _from_handheld(self, num: int, packet: mesh_pb2.MeshPacket) -> None:
        with self._sched.lock:
            station = self._stations[num]
            outcome = self._originate(station, packet)
            if outcome.nak is not None:  # Router::abortSendAndNak
                channel = station.channel_key(packet.channel) or PKI_KEY
                self._give_up(station, packet.id, channel, outcome.nak)

    def _originate(
        self, station: Station, packet: mesh_pb2.MeshPacket, kind: TxKind = "origin"
    ) -> Outcome:
        """A packet of the radio's own (Router::sendLocal → ReliableRouter::send → Router::send):
        the duty cycle, then perhapsEncode, then the TX queue."""
        if self._closed:
            return router.SENT
        if not station.online:
            station.counters.dropped_offline += 1
            logger.info("%s is switched off; dropped packet %#x", node_id(station.num), packet.id)
            return router.SENT
        if packet.to == station.num:
            return router.SENT  # for the radio itself (admin and the like): never on the air
        now = self._sched.now()
        if station.over_duty_cycle(self.duty_cycle_percent, kind, packet.id, now):
            return router.refused(RoutingError.DUTY_CYCLE_LIMIT)
        air = mesh_pb2.MeshPacket()
        air.CopyFrom(packet)
        setattr(air, "from", station.num)
        air.hop_limit = min(air.hop_limit, firmware.HOP_MAX)
        air.hop_start = air.hop_limit
        error = router.encode(
            air,
            station.rules,
            own_key=station.public_key,
            destination_key=self._key_of(station, air.to),
            channel_name=station.channel_name(packet.channel),
        )
        if error != RoutingError.NONE:
            logger.info(
                "%s refuses %#x: %s", node_id(station.num), air.id, RoutingError.Name(error)
            )
            return router.refused(error)
        channel = PKI_KEY if air.pki_encrypted else station.channel_key(packet.channel)
        assert channel is not None  # encode refuses NO_CHANNEL
        air.channel = 0
        station.seen[packet_key(air)] = now
        if kind == "origin":
            station.counters.originated += 1
        if air.want_ack:
            station.reliable[air.id] = Reliable(air, channel, firmware.NUM_RELIABLE_RETX - 1)
        if air.to == BROADCAST_NUM:
            air.want_ack = False  # never on the air for broadcasts
        return self._enqueue(station, air, channel, kind, self._tx_delay(station, air, kind))

    def _enqueue(
        self,
        station: Station,
        packet: mesh_pb2.MeshPacket,
        channel: ChannelKey,
        kind: TxKind,
        delay: float,
    ) -> Outcome:
        """Router::send: refuse beyond the duty cycle, else queue for the radio."""
        now = self._sched.now()
        if station.over_duty_cycle(self.duty_cycle_percent, kind, packet.id, now):
            return router.refused(RoutingError.DUTY_CYCLE_LIMIT)
        if len(station.live_queue()) >= station.max_queue:
            station.counters.dropped_queue_full += 1
            logger.warning(
                "%s: TX queue full; dropped %s %#x", node_id(station.num), kind, packet.id
            )
            if packet_key(packet)[0] == station.num:
                self._arm_retransmission(station, packet)  # ReliableRouter tries again
            return router.QUEUE_FULL
        station.queue.append(QueuedTx(packet, channel, kind, now + delay))
        self._kick(station)
        return router.SENT

    def _key_of(self, station: Station, num: int) -> bytes | None:
        """The public key `station`'s node database holds for `num` (its own for itself)."""
        return station.public_key if num == station.num else station.endpoint.nodedb.key_of(num)

    def queue_status(self, a: Member | int) -> tuple[int, int]:
        """(free, size) of a radio's TX queue, as its QueueStatus tells the client."""
        with self._sched.lock:
            station = self._station(_num(a))
            return station.max_queue - len(station.live_queue()), station.max_queue

    def _kick(self, station: Station) -> None:
        """Make sure a timer fires when the next queued packet may go out."""
        now = self._sched.now()
        queue = station.live_queue()
        if not queue or station.tx_until > now:
            return  # the end of the current transmission kicks again
        when = max(now, min(tx.not_before for tx in queue))
        if station.tx_timer is not None:
            if not station.tx_timer.cancelled and station.tx_timer.when <= when:
                return
            station.tx_timer.cancel()
        station.tx_timer = self._sched.at(when, lambda: self._try_transmit(station))

    def _try_transmit(self, station: Station) -> None:
        station.tx_timer = None
        now = self._sched.now()
        queue = station.live_queue()
        if not queue or not station.online:
            return
        head = min(queue, key=lambda tx: tx.not_before)
        if head.not_before > now:
            self._kick(station)
            return
        quiet_at = station.busy_until(now)
        if quiet_at > now:  # carrier sense: wait for quiet, then a fresh random backoff
            head.backoffs += 1  # (not keyed by the time: runs start at different moments)
            head.not_before = quiet_at + self._tx_delay(station, head.packet, "busy", head.backoffs)
            self._kick(station)
            return
        queue.remove(head)
        self._transmit(station, head, now)

    def _transmit(self, station: Station, tx: QueuedTx, now: float) -> None:
        packet = tx.packet
        key = tx.key
        seconds = lora.packet_airtime(packet, self.preset)
        attempt = station.transmissions_of.get(key, 0) + 1
        station.transmissions_of[key] = attempt
        station.tx_until = now + seconds
        station.ledger.sent(now, seconds, packet.decoded.portnum)
        counters = station.counters
        counters.sent += 1
        if tx.kind == "relay":
            counters.relayed += 1
        elif tx.kind == "retransmit":
            counters.retransmitted += 1
        elif tx.kind == "ack":
            counters.acks_sent += 1
        self._log.append(
            AirRecord(
                at=now,
                sender=station.num,
                origin=key[0],
                packet_id=key[1],
                to=packet.to,
                port=packet.decoded.portnum,
                payload_bytes=lora.on_air_bytes(packet),
                airtime=seconds,
                hop_limit=packet.hop_limit,
                kind=tx.kind,
                channel=tx.channel,
                payload=packet.decoded.payload,
            )
        )
        for rx in station.receiving:  # half duplex: whatever it was hearing is gone
            rx.corrupted = True
        for num, link in self.neighbours(station.num).items():
            self._propagate(station, self._stations[num], tx, link, now, seconds, attempt)
        self._sched.at(station.tx_until, lambda: self._end_transmission(station, tx))

    def _propagate(
        self,
        sender: Station,
        receiver: Station,
        tx: QueuedTx,
        link: Link,
        now: float,
        seconds: float,
        attempt: int,
    ) -> None:
        if not receiver.online:
            return
        if receiver.tx_until > now:
            receiver.counters.collisions += 1  # it is transmitting itself and cannot listen
            return
        origin, packet_id = tx.key
        roll = self._dice.unit("loss", origin, packet_id, sender.num, receiver.num, attempt)
        if roll < link.loss:
            receiver.counters.lost += 1
            return
        arrival = Reception(sender.num, tx.packet, tx.channel, now, now + seconds, link.snr)
        if self.collisions:
            for other in receiver.receiving:
                if other.end > now:
                    arrival.corrupted |= other.snr - arrival.snr < CAPTURE_DB
                    other.corrupted |= arrival.snr - other.snr < CAPTURE_DB
        receiver.receiving.append(arrival)
        self._sched.at(arrival.end, lambda: self._end_reception(receiver, arrival))

    def _end_transmission(self, station: Station, tx: QueuedTx) -> None:
        if tx.kind in ("origin", "retransmit", "ack") and tx.packet.id in station.reliable:
            self._arm_retransmission(station, tx.packet)
        self._kick(station)

    # -- off the air ----------------------------------------------------------------------

    def _end_reception(self, station: Station, arrival: Reception) -> None:
        if arrival not in station.receiving:
            return  # switched off meanwhile
        station.receiving.remove(arrival)
        now = self._sched.now()
        station.ledger.heard(now, arrival.end - arrival.start, arrival.packet.decoded.portnum)
        if arrival.corrupted:
            station.counters.collisions += 1
            return
        self._hear(station, arrival, now)

    def _hear(self, station: Station, arrival: Reception, now: float) -> None:
        """FloodingRouter / ReliableRouter on a frame that decoded cleanly."""
        packet = arrival.packet
        key = packet_key(packet)
        station.counters.heard += 1
        if key[0] == station.num:  # a neighbour repeating our own packet: implicit ACK
            reliable = station.reliable.get(packet.id)
            if reliable is not None:
                self._stop_retransmission(station, packet.id)
                self._to_own_client(station, packet.id, RoutingError.NONE, reliable.channel)
            return
        decoded = self._decode(station, arrival)
        if key in station.seen:
            station.counters.duplicates += 1
            if 0 < packet.hop_start == packet.hop_limit:
                # The originator retransmits (its ACK may have been lost): answer and relay
                # again, unless our own rebroadcast is still waiting (firmware 2.6).
                if not any(tx.key == key for tx in station.live_queue()):
                    if packet.to != station.num:
                        self._maybe_relay(station, arrival)
                    else:
                        self._acknowledge(station, arrival, decoded)
            elif station.profile.role != Role.ROUTER:
                self._cancel_relay(station, key)
            return
        station.seen[key] = now
        reply, stopped = self._node_info.hear(station, arrival, decoded)
        if not stopped:  # else RoutingModule never sees it: no delivery, ACK or relay
            self._route(station, arrival, decoded, replied=reply is not None)
        if reply is not None:
            self._node_info.send(station, reply)

    def _route(
        self, station: Station, arrival: Reception, decoded: router.Decoded, *, replied: bool
    ) -> None:
        """RoutingModule: delivery to the client, ACKs (none when a module replied) and the
        rebroadcast."""
        packet = arrival.packet
        if packet.to in (station.num, BROADCAST_NUM):
            if decoded.index is not None:
                self._deliver(station, arrival, decoded)
            elif decoded.legacy_dm:
                station.counters.dropped_legacy_dm += 1
            else:
                station.counters.undecodable += 1
        if packet.to == station.num:
            if decoded.index is not None and packet.decoded.request_id:  # an ACK, NAK or reply
                self._stop_retransmission(station, packet.decoded.request_id)
            if not replied:
                self._acknowledge(station, arrival, decoded)
        else:
            self._maybe_relay(station, arrival)

    def _decode(self, station: Station, arrival: Reception) -> router.Decoded:
        sender = packet_key(arrival.packet)[0]
        origin = self._stations.get(sender)
        sealed = None if origin is None else (origin.public_key, self._key_of(origin, station.num))
        return router.decode(
            arrival.packet,
            arrival.channel,
            station.rules,
            own_num=station.num,
            own_key=station.public_key,
            sender_key=self._key_of(station, sender),
            channel_index=station.channel_index(arrival.channel),
            sealed=sealed,
        )

    def _maybe_relay(self, station: Station, arrival: Reception) -> None:
        packet = arrival.packet
        if packet.hop_limit <= 0 or station.profile.role == Role.CLIENT_MUTE:
            return
        relay = mesh_pb2.MeshPacket()
        relay.CopyFrom(packet)
        relay.hop_limit = packet.hop_limit - 1
        relay.relay_node = station.num & 0xFF
        delay = self._relay_delay(station, packet, arrival.snr)
        self._enqueue(station, relay, arrival.channel, "relay", delay)

    def _cancel_relay(self, station: Station, key: PacketKey) -> None:
        for tx in station.live_queue():
            if tx.kind == "relay" and tx.key == key:
                tx.cancelled = True
                station.counters.relays_cancelled += 1

    def _deliver(self, station: Station, arrival: Reception, decoded: router.Decoded) -> None:
        """To the client as perhapsDecode left it: the receiver's channel index, and for a PKI
        direct message channel 0, `pki_encrypted` and the sender's public key."""
        shown = mesh_pb2.MeshPacket()
        shown.CopyFrom(arrival.packet)
        shown.channel = decoded.index or 0
        if decoded.pki:
            shown.public_key = self._key_of(station, packet_key(shown)[0]) or b""
        coerce_user_id(shown)
        shown.rx_time = int(self.clock.now().timestamp())
        shown.rx_snr = arrival.snr
        shown.rx_rssi = int(-100 + arrival.snr)
        station.counters.received += 1
        station.endpoint.deliver(shown)

    # -- ACKs, retransmissions, NAKs ------------------------------------------------------

    def _acknowledge(self, station: Station, arrival: Reception, decoded: router.Decoded) -> None:
        """ReliableRouter::sniffReceived on a packet to this station: the ACK it asks for, or
        a NAK when it could not be read, flooded back to the sender."""
        packet = arrival.packet
        hops = station.profile.hop_limit
        if decoded.index is not None:
            plan = router.ack_for(packet, station.rules, hops)
            if plan is not None:
                self._send_ack(station, packet, decoded.index, plan)
        elif packet.want_ack:
            known = bool(self._key_of(station, packet_key(packet)[0]))  # a key, not just a User
            error = router.nak_for_unreadable(packet, arrival.channel, known)
            plan = router.AckPlan(router.hop_limit_for_response(packet, hops))
            self._send_ack(station, packet, 0, plan, error)

    def _send_ack(
        self,
        station: Station,
        packet: mesh_pb2.MeshPacket,
        index: int,
        plan: router.AckPlan,
        error: int = RoutingError.NONE,
    ) -> None:
        origin, packet_id = packet_key(packet)
        ack = router.ack_nak(
            error,
            own_num=station.num,
            to=origin,
            request_id=packet_id,
            channel=index,
            packet_id=self._dice.packet_id(
                "ack", station.num, origin, packet_id, len(station.seen)
            ),
            hop_limit=plan.hop_limit,
            want_ack=plan.want_ack,
        )
        self._originate(station, ack, "ack")  # refused for the duty cycle: dropped, no NAK

    def _arm_retransmission(self, station: Station, packet: mesh_pb2.MeshPacket) -> None:
        reliable = station.reliable.get(packet.id)
        if reliable is None:
            return
        if reliable.timer is not None:
            reliable.timer.cancel()
        timeout = self._retransmission_timeout(station, packet)
        reliable.timer = self._sched.after(timeout, lambda: self._retransmit(station, packet.id))

    def _retransmit(self, station: Station, packet_id: int) -> None:
        reliable = station.reliable.get(packet_id)
        if reliable is None:
            return
        reliable.timer = None
        if reliable.attempts_left <= 0:
            self._give_up(station, packet_id, reliable.channel, RoutingError.MAX_RETRANSMIT)
            return
        reliable.attempts_left -= 1
        again = mesh_pb2.MeshPacket()
        again.CopyFrom(reliable.packet)
        if again.to == BROADCAST_NUM:
            again.want_ack = False
        delay = self._tx_delay(station, again, "retransmit", reliable.attempts_left)
        outcome = self._enqueue(station, again, reliable.channel, "retransmit", delay)
        if outcome.nak is not None:
            self._give_up(station, packet_id, reliable.channel, outcome.nak)

    def _stop_retransmission(self, station: Station, packet_id: int) -> None:
        reliable = station.reliable.pop(packet_id, None)
        if reliable is not None and reliable.timer is not None:
            reliable.timer.cancel()

    def _give_up(self, station: Station, packet_id: int, channel: ChannelKey, error: int) -> None:
        self._stop_retransmission(station, packet_id)
        station.counters.naks += 1
        logger.info("%s: NAK %s for %#x", node_id(station.num), RoutingError.Name(error), packet_id)
        self._to_own_client(station, packet_id, error, channel)

    def _to_own_client(
        self, station: Station, packet_id: int, error: int, channel: ChannelKey
    ) -> None:
        """An ACK or NAK the radio makes up itself (implicit ACK, MAX_RETRANSMIT, a refusal):
        to itself, so `Router::sendLocal` hands it to its own client, never to the air."""
        packet = router.ack_nak(
            error,
            own_num=station.num,
            to=station.num,
            request_id=packet_id,
            channel=station.channel_index(channel) or 0,
            packet_id=self._dice.packet_id("local", station.num, packet_id, error),
        )
        packet.rx_time = int(self.clock.now().timestamp())
        station.endpoint.deliver(packet)

    # -- timing, as the firmware picks it -------------------------------------------------

    def _contention_window(self, station: Station) -> int:
        now = self._sched.now()
        return firmware.contention_window(station.ledger.channel_utilization_percent(now))

    def _tx_delay(self, station: Station, packet: mesh_pb2.MeshPacket, *why: object) -> float:
        """getTxDelayMsec: a random number of slots from a window that grows with traffic."""
        window = 2 ** self._contention_window(station)
        slots = self._dice.below(window, "tx", station.num, *packet_key(packet), *why)
        return slots * self.preset.slot_time

    def _relay_delay(self, station: Station, packet: mesh_pb2.MeshPacket, snr: float) -> float:
        """getTxDelayMsecWeighted: far (low SNR) nodes rebroadcast first; routers before all."""
        window = firmware.snr_window(snr)
        router = station.profile.role == Role.ROUTER
        draw = self._dice.below(
            2 * window if router else 2**window, "relay", station.num, *packet_key(packet)
        )
        slots = firmware.relay_delay_slots(window, draw, router=router)
        return slots * self.preset.slot_time

    def _retransmission_timeout(self, station: Station, packet: mesh_pb2.MeshPacket) -> float:
        window = self._contention_window(station)
        return firmware.retransmission_timeout(packet, self.preset, window)

    # -- telemetry to the clients ---------------------------------------------------------

    def _report_telemetry(self) -> None:
        """DeviceTelemetryModule: device metrics to the connected client, every interval."""
        now = self._sched.now()
        for station in self._stations.values():
            radio = station.endpoint
            if not (isinstance(radio, SimulatedRadio) and station.online and radio.client_ready):
                continue
            packet = firmware.device_metrics_packet(
                station.num,
                self._dice.packet_id("telemetry", station.num, now),
                channel_utilization=station.ledger.channel_utilization_percent(now),
                air_util_tx=station.ledger.air_util_tx_percent(now),
                uptime=int(now),
                unix_time=int(self.clock.now().timestamp()),
            )
            station.counters.telemetry_reports += 1
            radio.deliver(packet)
        if self.telemetry_interval:
            self._sched.after(self.telemetry_interval, self._report_telemetry, background=True)


def _num(member: Member | int) -> int:
    return member if isinstance(member, int) else member.node_num


def _entry(station: Station) -> NodeEntry:
    """A member as its announced NodeInfo leaves it in another node's database."""
    profile = station.profile
    return NodeEntry(station.num, profile.long_name, profile.short_name, station.public_key)


class _RadioSide:
    """A pty radio's way onto the mesh's air (its `RadioRouter`)."""

    def __init__(self, mesh: Mesh, num: int) -> None:
        self.mesh, self.num = mesh, num

    def send_local(self, packet: mesh_pb2.MeshPacket) -> Outcome:
        return self.mesh._from_radio(self.num, packet)

    def queue_status(self) -> tuple[int, int]:
        return self.mesh.queue_status(self.num)
