"""What one mesh radio's firmware keeps in RAM, and the figures it is judged by.

`Mesh` owns one `Station` per node (pty radio or virtual handheld) and runs the firmware's
routing on it; this module holds the state and the bookkeeping, not the behaviour.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from meshtastic.protobuf import mesh_pb2

from node.sim.firmware import MAX_TX_QUEUE
from node.sim.ledger import AirtimeLedger
from node.sim.nodedb import NodeDB, NodeInfoMemory
from node.sim.profile import RadioProfile, node_id
from node.sim.router import ChannelKey
from node.sim.rules import ActiveRules
from node.sim.scheduler import Timer

logger = logging.getLogger(__name__)

DEFAULT_SNR = 0.0
PacketKey = tuple[int, int]  # (from, id): the firmware's duplicate filter
Kind = Literal["radio", "handheld"]
TxKind = Literal["origin", "retransmit", "relay", "ack"]


class Endpoint(Protocol):
    """The client side of a mesh radio: a pty radio's client or a virtual person."""

    node_num: int
    profile: RadioProfile
    public_key: bytes
    nodedb: NodeDB  # the nodes it knows, and their keys

    def deliver(self, packet: mesh_pb2.MeshPacket) -> None: ...


@dataclass
class Counters:
    """Packet counts of one radio; airtime lives in its `AirtimeLedger`."""

    sent: int = 0  # every transmission, of any kind
    originated: int = 0  # packets from its own client, and its firmware's NodeInfo
    retransmitted: int = 0
    relayed: int = 0
    acks_sent: int = 0
    received: int = 0  # delivered to its client
    heard: int = 0  # decoded off the air, duplicates included
    duplicates: int = 0
    lost: int = 0  # link loss: a neighbour sent and this radio never heard it
    collisions: int = 0  # heard but garbled by an overlapping transmission
    relays_cancelled: int = 0  # pending rebroadcasts dropped on hearing someone else's
    dropped_duty_cycle: int = 0
    dropped_queue_full: int = 0
    dropped_offline: int = 0
    naks: int = 0
    telemetry_reports: int = 0
    dropped_legacy_dm: int = 0  # channel-key text DMs to it, refused ("Rejecting legacy DM")
    undecodable: int = 0  # packets to it (or to everyone) it could not decrypt


@dataclass(frozen=True)
class NodeStats:
    """A snapshot of one node's figures (simulated seconds and percentages)."""

    num: int
    kind: Kind
    online: bool
    airtime_tx: float
    airtime_tx_last_hour: float
    air_util_tx_percent: float
    channel_utilization_percent: float
    airtime_rx: float
    sent: int
    originated: int
    retransmitted: int
    relayed: int
    acks_sent: int
    received: int
    heard: int
    duplicates: int
    lost: int
    collisions: int
    relays_cancelled: int
    dropped_duty_cycle: int
    dropped_queue_full: int
    dropped_offline: int
    naks: int
    telemetry_reports: int
    dropped_legacy_dm: int
    undecodable: int


@dataclass
class QueuedTx:
    packet: mesh_pb2.MeshPacket
    channel: ChannelKey
    kind: TxKind
    not_before: float
    cancelled: bool = False
    backoffs: int = 0  # carrier-sense waits so far: keys the next random backoff

    @property
    def key(self) -> PacketKey:
        return packet_key(self.packet)


@dataclass
class Reception:
    """A frame arriving at one radio: heard at `end` unless something garbled it."""

    transmitter: int
    packet: mesh_pb2.MeshPacket
    channel: ChannelKey
    start: float
    end: float
    snr: float
    corrupted: bool = False


@dataclass
class Reliable:
    """A want_ack packet of this radio's client that is not yet acknowledged."""

    packet: mesh_pb2.MeshPacket
    channel: ChannelKey
    attempts_left: int
    timer: Timer | None = None


@dataclass
class Station:
    """One radio's firmware state."""

    endpoint: Endpoint
    kind: Kind
    owned: bool  # the mesh built it and closes it
    announced: bool = True  # in every node database from the start, as if its NodeInfo was heard
    online: bool = True
    ledger: AirtimeLedger = field(default_factory=AirtimeLedger)
    counters: Counters = field(default_factory=Counters)
    seen: dict[PacketKey, float] = field(default_factory=dict)
    queue: list[QueuedTx] = field(default_factory=list)
    tx_timer: Timer | None = None
    tx_until: float = 0.0
    receiving: list[Reception] = field(default_factory=list)
    reliable: dict[int, Reliable] = field(default_factory=dict)
    transmissions_of: dict[PacketKey, int] = field(default_factory=dict)
    node_info: NodeInfoMemory = field(default_factory=NodeInfoMemory)
    rules: ActiveRules = field(init=False)

    def __post_init__(self) -> None:
        self.rules = self.profile.active_rules()

    @property
    def num(self) -> int:
        return self.endpoint.node_num

    @property
    def profile(self) -> RadioProfile:
        return self.endpoint.profile

    @property
    def public_key(self) -> bytes:
        return self.endpoint.public_key

    @property
    def max_queue(self) -> int:
        """The firmware's MAX_TX_QUEUE; a pty radio may be built with another."""
        return int(getattr(self.endpoint, "tx_queue_len", MAX_TX_QUEUE))

    def channel_name(self, index: int) -> str | None:
        channels = self.profile.channels
        return channels[index].name if 0 <= index < len(channels) else None

    def channel_key(self, index: int) -> ChannelKey | None:
        channels = self.profile.channels
        if not 0 <= index < len(channels):
            return None
        return (channels[index].name, channels[index].psk)

    def channel_index(self, key: ChannelKey) -> int | None:
        for index, spec in enumerate(self.profile.channels):
            if (spec.name, spec.psk) == key:
                return index
        return None

    def over_duty_cycle(
        self, limit: float | None, kind: TxKind, packet_id: int, now: float
    ) -> bool:
        """Router::send: the region's duty cycle (`limit` percent) over the last hour is spent."""
        used = self.ledger.air_util_tx_percent(now)
        if limit is None or used <= limit:
            return False
        self.counters.dropped_duty_cycle += 1
        logger.warning(
            "%s: duty cycle limit exceeded (%.2f%% > %.1f%% in the last hour); dropped %s %#x",
            node_id(self.num),
            used,
            limit,
            kind,
            packet_id,
        )
        return True

    def live_queue(self) -> list[QueuedTx]:
        self.queue = [tx for tx in self.queue if not tx.cancelled]
        return self.queue

    def busy_until(self, now: float) -> float:
        """When the channel this radio senses falls quiet (now, if it is quiet)."""
        ends = [rx.end for rx in self.receiving if rx.end > now]
        return max([now, self.tx_until, *ends])

    def power_off(self) -> None:
        """A radio switched off forgets its queue, its pending ACKs and what it has seen."""
        self.online = False
        for tx in self.queue:
            tx.cancelled = True
        self.queue.clear()
        if self.tx_timer is not None:
            self.tx_timer.cancel()
            self.tx_timer = None
        for reliable in self.reliable.values():
            if reliable.timer is not None:
                reliable.timer.cancel()
        self.reliable.clear()
        for rx in self.receiving:
            rx.corrupted = True
        self.receiving.clear()
        self.seen.clear()
        self.node_info.power_off()

    def stats(self, now: float) -> NodeStats:
        c = self.counters
        return NodeStats(
            num=self.num,
            kind=self.kind,
            online=self.online,
            airtime_tx=self.ledger.total_tx,
            airtime_tx_last_hour=self.ledger.tx_seconds(now),
            air_util_tx_percent=self.ledger.air_util_tx_percent(now),
            channel_utilization_percent=self.ledger.channel_utilization_percent(now),
            airtime_rx=self.ledger.total_rx,
            sent=c.sent,
            originated=c.originated,
            retransmitted=c.retransmitted,
            relayed=c.relayed,
            acks_sent=c.acks_sent,
            received=c.received,
            heard=c.heard,
            duplicates=c.duplicates,
            lost=c.lost,
            collisions=c.collisions,
            relays_cancelled=c.relays_cancelled,
            dropped_duty_cycle=c.dropped_duty_cycle,
            dropped_queue_full=c.dropped_queue_full,
            dropped_offline=c.dropped_offline,
            naks=c.naks,
            telemetry_reports=c.telemetry_reports,
            dropped_legacy_dm=c.dropped_legacy_dm,
            undecodable=c.undecodable,
        )


@dataclass(frozen=True)
class Link:
    """A symmetric radio link."""

    loss: float = 0.0  # probability that one frame is not heard
    snr: float = DEFAULT_SNR  # dB; weighs the rebroadcast delay, decides collisions


@dataclass(frozen=True)
class AirRecord:
    """One transmission, for benchmarks that sum airtime by port or by sender."""

    at: float  # simulated seconds since the mesh started
    sender: int  # the radio that transmitted
    origin: int  # the packet's `from`
    packet_id: int
    to: int
    port: int
    payload_bytes: int  # LoRa payload: header and encrypted Data
    airtime: float
    hop_limit: int
    kind: TxKind
    # Which channel key it went out under, and the Data payload as the key holder reads it:
    # leak tests look for one ring's words in what went out on another.
    channel: ChannelKey = ("", b"")
    payload: bytes = b""


@dataclass(frozen=True)
class MeshStats:
    """Per-node figures and totals at one moment."""

    nodes: dict[int, NodeStats]
    total_airtime: float
    transmissions: int  # frames put on the air, relays and ACKs included
    delivered: int  # packets shown to clients and handheld owners
    lost: int  # frames a neighbour never heard (link loss)
    collisions: int  # frames garbled at a receiver
    airtime_by_port: dict[int, float]
    airtime_by_kind: dict[str, float]


def mesh_stats(stations: Iterable[Station], log: list[AirRecord], now: float) -> MeshStats:
    """Every station's figures at `now`, with totals over the transmission `log`."""
    by_port: dict[int, float] = defaultdict(float)
    by_kind: dict[str, float] = defaultdict(float)
    for record in log:
        by_port[record.port] += record.airtime
        by_kind[record.kind] += record.airtime
    nodes = {s.num: s.stats(now) for s in stations}
    return MeshStats(
        nodes=nodes,
        total_airtime=sum(r.airtime for r in log),
        transmissions=len(log),
        delivered=sum(n.received for n in nodes.values()),
        lost=sum(n.lost for n in nodes.values()),
        collisions=sum(n.collisions for n in nodes.values()),
        airtime_by_port=dict(by_port),
        airtime_by_kind=dict(by_kind),
    )


def packet_key(packet: mesh_pb2.MeshPacket) -> PacketKey:
    return (int(getattr(packet, "from")), int(packet.id))


class Dice:
    """Random choices derived from the seed and what they are about, not from call order.

    A loss decision keyed by (sender, packet id, transmitter, receiver, attempt) comes out the
    same however the threads of real clients interleave, so the same transmissions replay the
    same way.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def unit(self, *key: object) -> float:
        """A number in [0, 1)."""
        digest = hashlib.blake2b(repr((self.seed, *key)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    def below(self, n: int, *key: object) -> int:
        """An integer in [0, n), like Arduino's random(0, n)."""
        return min(n - 1, int(self.unit(*key) * n)) if n > 0 else 0

    def packet_id(self, *key: object) -> int:
        return self.below(2**32 - 1, "id", *key) + 1
