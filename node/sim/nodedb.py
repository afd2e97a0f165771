"""A node's database of the others, as NodeInfo packets fill it, and its NodeInfoModule's memory.

Read from meshtastic/firmware at tag v2.7.26.54e0d8d: `src/mesh/NodeDB.cpp` (`updateUser`),
`src/modules/NodeInfoModule.cpp` (`handleReceivedProtobuf`, `allocReply`, `sendOurNodeInfo`),
`src/mesh/MeshService.cpp` (`handleFromRadio`), `src/airtime.h` (the channel-utilisation gates)
and `src/mesh/Default.cpp` (`getConfiguredOrDefaultMsScaled`). Every simulated node, pty radio
or virtual handheld, keeps a `NodeDB`; a node is in it once its NodeInfo was heard (or the mesh
announced it), and only then does the node know its public key: a PKI direct message to a node
missing here is refused, and one from it cannot be read. The mesh's part of the exchange, who
sends which NodeInfo when, is `node/sim/nodeinfo.py`.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field

from meshtastic.protobuf import config_pb2, mesh_pb2, portnums_pb2

from node.sim.handshake import NodeEntry
from node.sim.profile import RadioProfile, node_id
from node.sim.router import PKI_KEY_SIZE

Role = config_pb2.Config.DeviceConfig.Role

#: NodeInfoModule.cpp USERPREFS_NODEINFO_REPLY_SUPPRESS_SECS: no reply to a requester heard
#: asking less than this long ago (`lastNodeInfoSeen`).
REPLY_SUPPRESS = 12 * 60 * 60.0
#: allocReply: "sent NodeInfo recently", `getConfiguredOrDefaultMsScaled(0, 10 * 60, online)`.
#: Scaled only beyond 40 online nodes (`congestionScalingCoefficient`), which is not modelled.
SEND_INTERVAL = 10 * 60.0
#: allocReply for `sendOurNodeInfo(..., _shorterTimeout=true)` (a PKI_UNKNOWN_PUBKEY NAK).
SHORT_SEND_INTERVAL = 60.0
MAX_CHANNEL_UTIL = 40.0  # AirTime max_channel_util_percent: allocReply's gate
POLITE_CHANNEL_UTIL = 25.0  # polite_channel_util_percent: MeshService::handleFromRadio's gate
#: MeshService::handleFromRadio: roles that never ask a new node for its NodeInfo.
PREFERRED_REBROADCASTERS = frozenset({Role.ROUTER, Role.ROUTER_LATE, Role.CLIENT_BASE})
#: sendOurNodeInfo: roles whose NodeInfo never asks for replies.
NO_REPLIES_WANTED = frozenset({Role.TRACKER, Role.SENSOR})


class Update(enum.Enum):
    """What `NodeDB::updateUser` did with a heard User."""

    CHANGED = "changed"  # new node, new key, or new names: the firmware's `changed`
    SAME = "same"
    KEY_MISMATCH = "key mismatch"  # "Public Key mismatch, dropping NodeInfo"
    OUR_KEY = "our key"  # a remote node advertising our own public key: dropped


class NodeDB:
    """The nodes one radio knows (`NodeDB::meshNodes` with `has_user`), thread-safe."""

    def __init__(self, own_num: int, own_key: bytes) -> None:
        self.own_num = own_num
        self.own_key = own_key  # the node's own public key (owner.public_key)
        self._lock = threading.Lock()
        self._nodes: dict[int, NodeEntry] = {}

    def add(self, entry: NodeEntry) -> None:
        """Put `entry` in as it is (the mesh announcing a member, a test's `add_handheld`)."""
        with self._lock:
            self._nodes[entry.num] = entry

    def get(self, num: int) -> NodeEntry | None:
        with self._lock:
            return self._nodes.get(num)

    def has_user(self, num: int) -> bool:
        with self._lock:
            return num in self._nodes

    def key_of(self, num: int) -> bytes | None:
        """The public key held for `num` (own key for the node itself); None: unknown node,
        b"": a node known without a key."""
        if num == self.own_num:
            return self.own_key
        with self._lock:
            entry = self._nodes.get(num)
        return None if entry is None else entry.public_key

    def entries(self) -> list[NodeEntry]:
        with self._lock:
            return list(self._nodes.values())

    def update_user(self, num: int, user: mesh_pb2.User, channel: int) -> Update:
        """`NodeDB::updateUser` with a User heard from node `num` on channel index `channel`.

        A 32-byte key equal to our own is dropped; a held 32-byte key is never replaced, and a
        NodeInfo with another key or none is dropped whole; otherwise names and key are taken.
        """
        key = bytes(user.public_key)
        if len(key) == PKI_KEY_SIZE and len(self.own_key) == PKI_KEY_SIZE and key == self.own_key:
            return Update.OUR_KEY
        with self._lock:
            held = self._nodes.get(num)
            if held is not None and len(held.public_key) == PKI_KEY_SIZE and key != held.public_key:
                return Update.KEY_MISMATCH
            entry = NodeEntry(num, user.long_name, user.short_name, key, channel)
            self._nodes[num] = entry
            return Update.SAME if entry == held else Update.CHANGED


def own_user(num: int, profile: RadioProfile, public_key: bytes) -> mesh_pb2.User:
    """The owner User a node sends as its NodeInfo (NodeInfoModule::allocReply): its id from
    its number, and no public key when the owner is licensed."""
    licensed = profile.rules.licensed
    return mesh_pb2.User(
        id=node_id(num),
        long_name=profile.long_name,
        short_name=profile.short_name,
        hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
        public_key=b"" if licensed else public_key,
        is_licensed=licensed,
        role=profile.role,
    )


def heard_user(packet: mesh_pb2.MeshPacket) -> mesh_pb2.User | None:
    """The User in a NODEINFO_APP packet with its id coerced to the sender's number
    (`alterReceivedProtobuf`); None when the payload is no User."""
    user = mesh_pb2.User()
    try:
        user.ParseFromString(packet.decoded.payload)
    except Exception:  # protobuf raises DecodeError, a plain Exception subclass
        return None
    user.id = node_id(int(getattr(packet, "from")))
    return user


def coerce_user_id(packet: mesh_pb2.MeshPacket) -> None:
    """`NodeInfoModule::alterReceivedProtobuf` on a packet before the client sees it: a
    NODEINFO_APP packet's User says the id of the node that sent it, whatever it claimed."""
    if packet.decoded.portnum == portnums_pb2.PortNum.NODEINFO_APP:
        user = heard_user(packet)
        if user is not None:
            packet.decoded.payload = user.SerializeToString()


@dataclass
class NodeInfoMemory:
    """What one node's NodeInfoModule remembers: when it last heard each node ask for its
    NodeInfo (`lastNodeInfoSeen`, RAM) and when it last sent its own (`TransmitHistory`,
    kept in flash across reboots), and the id of its last `sendOurNodeInfo` packet."""

    last_seen: dict[int, float] = field(default_factory=dict)
    last_sent: float | None = None
    prev_id: int = 0

    def request_heard(self, sender: int, now: float) -> bool:
        """`handleReceivedProtobuf` on a NodeInfo with want_response from `sender`: whether
        the reply is suppressed (the same sender asked less than 12 h ago); remembers `now`."""
        last = self.last_seen.get(sender)
        self.last_seen[sender] = now
        return last is not None and max(0.0, now - last) < REPLY_SUPPRESS

    def may_send(self, now: float, *, shorter: bool, channel_util: float) -> bool:
        """`allocReply`'s gates after the 12 h suppression: channel utilisation under 40 %, and
        no NodeInfo of its own sent in the last 10 minutes (60 s for `shorter`). A reply to a
        request always gets the 10 minutes: `shorterTimeout` is only set inside
        `sendOurNodeInfo`. Remembers `now` as the last send when it may."""
        if channel_util >= MAX_CHANNEL_UTIL:
            return False
        interval = SHORT_SEND_INTERVAL if shorter else SEND_INTERVAL
        if self.last_sent is not None and now - self.last_sent < interval:
            return False
        self.last_sent = now
        return True

    def power_off(self) -> None:
        """RAM is lost; the transmit history is in flash."""
        self.last_seen.clear()
        self.prev_id = 0
