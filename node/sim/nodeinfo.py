"""NodeInfo on the air: how mesh nodes learn each other's names and public keys.

Read from meshtastic/firmware at tag v2.7.26.54e0d8d. Every node, pty radio or virtual
handheld, plays these parts of its firmware on the packets it decodes:

- `NodeInfoModule::handleReceivedProtobuf` (promiscuous: also on packets for others): a
  NODEINFO_APP packet's User goes into the node database (`NodeDB::updateUser`, with its rules on
  keys, `node/sim/nodedb.py`); a changed User in a direct message to someone else is shown to
  the node's own client. A request (`want_response`) to the node or to everyone is answered by
  `allocReply` + `setReplyTo` (MeshModule.cpp): its own User back to the requester, on the
  channel the request came on, as a reply (`request_id`) with the request's `want_ack`, unless
  that requester asked less than 12 h ago, the channel is over 40 % busy, or it sent its own
  NodeInfo less than 10 minutes ago. A reply stands in for the ACK (`ReliableRouter::
  sniffReceived` acknowledges only when no module replied).
- `MeshService::handleFromRadio`: a packet to the node or to everyone from a node it has no
  User for makes it send its own NodeInfo there with `want_response`, on the packet's channel,
  unless it is a ROUTER, ROUTER_LATE or CLIENT_BASE, the channel is 25 % busy, or the sender is
  more than its hop limit + 2 hops away (`sendOurNodeInfo(from, true, channel)`).
- `ReliableRouter::sniffReceived`: a PKI_UNKNOWN_PUBKEY NAK to the node makes it send its
  NodeInfo to the node that could not read it (`sendOurNodeInfo(from, false, channel, true)`,
  with the 60 s throttle instead of 10 minutes).

NodeInfo goes out through `MeshService::sendToMesh`, like a client's packet: on the channel key
(NODEINFO_APP is never PKI-encrypted), and a pty radio's client reads a QueueStatus for it.
Not modelled: the periodic NodeInfo broadcast (`NodeInfoModule::runOnce`, every 3 hours), the
congestion scaling of the 10 minutes beyond 40 online nodes, and a full node database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.sim import router
from node.sim.nodedb import (
    NO_REPLIES_WANTED,
    POLITE_CHANNEL_UTIL,
    PREFERRED_REBROADCASTERS,
    Update,
    heard_user,
    own_user,
)
from node.sim.profile import node_id
from node.sim.radio import SimulatedRadio
from node.sim.router import BROADCAST_NUM, PKI_KEY_SIZE, Outcome
from node.sim.station import Dice, Reception, Station, packet_key

logger = logging.getLogger(__name__)

PortNum = portnums_pb2.PortNum
RoutingError = mesh_pb2.Routing.Error
Priority = mesh_pb2.MeshPacket.Priority

Originate = Callable[[Station, mesh_pb2.MeshPacket], Outcome]
Deliver = Callable[[Station, Reception, router.Decoded], None]


class NodeInfoExchange:
    """The NodeInfo parts of every node's firmware in one `Mesh`, which runs them under its
    lock: `originate` is its `Router::sendLocal`, `deliver` hands a packet to a node's client."""

    def __init__(
        self, originate: Originate, deliver: Deliver, dice: Dice, now: Callable[[], float]
    ) -> None:
        self._originate = originate
        self._deliver = deliver
        self._dice = dice
        self._now = now

    def hear(
        self, station: Station, arrival: Reception, decoded: router.Decoded
    ) -> tuple[mesh_pb2.MeshPacket | None, bool]:
        """A packet `station` heard for the first time, in the order `MeshModule::callModules`
        runs the modules (NodeInfoModule before RoutingModule). Returns the NodeInfo reply,
        which goes out after the packet has been delivered (`callModules` sends it last), and
        whether NodeInfoModule stopped the packet (`ProcessMessage::STOP`): then RoutingModule
        never sees it, so it is neither delivered, acknowledged nor relayed."""
        index = decoded.index
        if index is None:
            return None, False
        packet = arrival.packet
        sender = int(getattr(packet, "from"))
        reply = None
        if packet.decoded.portnum == PortNum.NODEINFO_APP:
            reply, stopped = self._node_info_module(station, arrival, index)
            if stopped:
                return reply, True
        unknown_key = _routing_error(packet) == RoutingError.PKI_UNKNOWN_PUBKEY
        if packet.to == station.num and unknown_key and len(station.public_key) == PKI_KEY_SIZE:
            # "PKI decrypt failure, send a NodeInfo"
            self.send_own(station, sender, index, want_response=False, shorter=True)
        if packet.to in (station.num, BROADCAST_NUM) and self._new_node(station, packet):
            logger.info("%s heard new node %s on ch. %d", node_id(station.num), sender, index)
            self.send_own(station, sender, index, want_response=True)
        return reply, False

    def send_own(
        self, station: Station, to: int, channel: int, *, want_response: bool, shorter: bool = False
    ) -> None:
        """`NodeInfoModule::sendOurNodeInfo(to, want_response, channel, shorter)`: the previous
        one is cancelled if it still waits in the queue, then `allocReply`'s gates apply (not
        the 12 h suppression: the packet in hand is no NodeInfo request)."""
        memory = station.node_info
        for tx in station.live_queue():
            if memory.prev_id and tx.key == (station.num, memory.prev_id):
                tx.cancelled = True  # service->cancelSending(prevPacketId)
        now = self._now()
        util = station.ledger.channel_utilization_percent(now)
        if not memory.may_send(now, shorter=shorter, channel_util=util):
            logger.info("%s: skip sending NodeInfo (sent recently or busy)", node_id(station.num))
            return
        profile = station.profile
        packet = mesh_pb2.MeshPacket(
            to=to,
            channel=channel,
            id=self._dice.packet_id("nodeinfo", station.num, to, len(station.seen), shorter),
            decoded=mesh_pb2.Data(
                portnum=PortNum.NODEINFO_APP,
                payload=own_user(station.num, profile, station.public_key).SerializeToString(),
                want_response=want_response and profile.role not in NO_REPLIES_WANTED,
            ),
            hop_limit=profile.hop_limit,
            priority=Priority.DEFAULT if shorter else Priority.BACKGROUND,
        )
        memory.prev_id = packet.id
        self.send(station, packet)

    def send(self, station: Station, packet: mesh_pb2.MeshPacket) -> None:
        """`MeshService::sendToMesh` for a packet the firmware made: onto the air, and a pty
        radio's client reads the QueueStatus (`sendQueueStatusToPhone`)."""
        setattr(packet, "from", station.num)
        outcome = self._originate(station, packet)
        if isinstance(station.endpoint, SimulatedRadio):
            station.endpoint.report_queued(packet.id, outcome.res)

    # -- the parts ------------------------------------------------------------------------

    def _node_info_module(
        self, station: Station, arrival: Reception, index: int
    ) -> tuple[mesh_pb2.MeshPacket | None, bool]:
        """`NodeInfoModule::handleReceivedProtobuf` (through `ProtobufModule::handleReceived`),
        then `allocReply` for a request to it: the reply, and whether the packet stops here (a
        payload that is no User, or an `is_licensed` unlike ours). A stopped request is still
        answered: `callModules` asks for the response before it stops."""
        packet = arrival.packet
        data = packet.decoded
        sender = int(getattr(packet, "from"))
        now = self._now()
        memory = station.node_info
        user = heard_user(packet)
        suppress, stopped = False, user is None  # "Error decoding proto module!"
        if user is not None:
            if data.want_response:
                suppress = memory.request_heard(sender, now)  # lastNodeInfoSeen
            if user.is_licensed != station.profile.rules.licensed:
                logger.info("%s: is_licensed mismatch, NodeInfo ignored", node_id(sender))
                stopped = True
            else:
                update = station.endpoint.nodedb.update_user(sender, user, index)
                if update in (Update.KEY_MISMATCH, Update.OUR_KEY):
                    logger.warning("%s: %s, NodeInfo dropped", node_id(sender), update.value)
                if update is Update.CHANGED and packet.to not in (station.num, BROADCAST_NUM):
                    self._deliver(station, arrival, router.Decoded(index))  # "inform phone"
        if not (data.want_response and packet.to in (station.num, BROADCAST_NUM)):
            return None, stopped
        if suppress:
            logger.info("%s: heard %s ask <12h ago, no NodeInfo", node_id(station.num), sender)
            return None, stopped
        util = station.ledger.channel_utilization_percent(now)
        if not memory.may_send(now, shorter=False, channel_util=util):
            logger.info("%s: NodeInfo sent <10 min ago or busy, none", node_id(station.num))
            return None, stopped
        return self._reply(station, packet, index), stopped

    def _reply(
        self, station: Station, request: mesh_pb2.MeshPacket, index: int
    ) -> mesh_pb2.MeshPacket:
        """`allocDataProtobuf(owner)` + `setReplyTo`: to the requester, on the channel the
        request came on, with as many hops as it took plus two, its want_ack, its id."""
        origin, request_id = packet_key(request)
        reply = mesh_pb2.MeshPacket(
            to=origin,
            channel=index,
            id=self._dice.packet_id("nodeinfo reply", station.num, origin, request_id),
            decoded=mesh_pb2.Data(
                portnum=PortNum.NODEINFO_APP,
                payload=own_user(
                    station.num, station.profile, station.public_key
                ).SerializeToString(),
                request_id=request_id,
            ),
            hop_limit=router.hop_limit_for_response(request, station.profile.hop_limit),
            want_ack=request.want_ack,
            priority=Priority.RELIABLE,
        )
        return reply

    def _new_node(self, station: Station, packet: mesh_pb2.MeshPacket) -> bool:
        """`MeshService::handleFromRadio`: whether to ask the sender for its NodeInfo."""
        data = packet.decoded
        sender = int(getattr(packet, "from"))
        if data.portnum == PortNum.TELEMETRY_APP and data.request_id:
            return False  # "Received telemetry response. Skip sending our NodeInfo"
        if station.endpoint.nodedb.has_user(sender):
            return False
        if station.profile.role in PREFERRED_REBROADCASTERS:
            return False
        if station.ledger.channel_utilization_percent(self._now()) >= POLITE_CHANNEL_UTIL:
            logger.info("%s: skip sending NodeInfo > 25%% ch. util", node_id(station.num))
            return False
        configured = station.profile.hop_limit
        hops = router.hops_away(packet)
        return (configured if hops is None else hops) <= configured + 2


def _routing_error(packet: mesh_pb2.MeshPacket) -> int | None:
    if not router.is_routing(packet):
        return None
    routing = mesh_pb2.Routing()
    try:
        routing.ParseFromString(packet.decoded.payload)
    except Exception:  # protobuf raises DecodeError, a plain Exception subclass
        return None
    return int(routing.error_reason)
