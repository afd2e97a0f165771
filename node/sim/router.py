"""The firmware's Router rules: how a radio encrypts what it sends, decrypts what it hears, and
acknowledges, stated once for the standalone radio and the simulated mesh alike.

Read from meshtastic/firmware at tag v2.7.26.54e0d8d: `src/mesh/Router.cpp` (`perhapsEncode`,
`perhapsDecode`, `Router::send`, `abortSendAndNak`), `src/mesh/ReliableRouter.cpp`
(`sniffReceived`, `shouldSuccessAckWithWantAck`), `src/modules/RoutingModule.cpp`
(`sendAckNak`, `getHopLimitForResponse`), `src/mesh/MeshModule.cpp` (`allocAckNak`) and
`src/mesh/NodeDB.cpp` (`getHopsAway`). Which rules a radio applies follows its firmware version
(`node/sim/rules.py`).

Nothing is really encrypted: a packet keeps its `decoded` body, `pki_encrypted` marks a
Curve25519 direct message, and the mesh carries the channel key a packet went out under beside
it (`PKI_KEY` for a PKI direct message, which only its destination can read).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.sim import lora
from node.sim.rules import ActiveRules

BROADCAST_NUM = 0xFFFFFFFF
PortNum = portnums_pb2.PortNum
RoutingError = mesh_pb2.Routing.Error
ChannelKey = tuple[str, bytes]  # (name, psk): what makes two radios' channels the same channel

#: Not a channel: a PKI direct message is encrypted for its destination's key alone. (No real
#: channel has this key: a psk is 0, 1, 16 or 32 bytes.)
PKI_KEY: ChannelKey = ("", b"curve25519")

# ErrorCode values a send returns besides a Routing.Error (src/mesh/MeshTypes.h); the client
# reads them in QueueStatus.res.
ERRNO_OK = 0
ERRNO_UNKNOWN = 32  # RadioLibInterface::send: the TX queue is full (MeshPacketQueue::enqueue)
ERRNO_NO_INTERFACES = 33
ERRNO_DISABLED = 34

# Data.bitfield (src/mesh/Router.h), set by perhapsEncode on every packet the node originates.
BITFIELD_OK_TO_MQTT_SHIFT = 0
BITFIELD_WANT_RESPONSE_SHIFT = 1

#: perhapsEncode never PKI-encrypts these ports, even to one node.
NO_PKI_PORTS = frozenset(
    {PortNum.TRACEROUTE_APP, PortNum.NODEINFO_APP, PortNum.ROUTING_APP, PortNum.POSITION_APP}
)
#: Channels named so are sent on their key unless the client asked for PKI (Channels.cpp).
NO_PKI_CHANNEL_NAMES = frozenset({"serial", "gpio"})
TEXT_PORTS = frozenset({PortNum.TEXT_MESSAGE_APP, PortNum.TEXT_MESSAGE_COMPRESSED_APP})
PKI_KEY_SIZE = 32


def stand_in_key(num: int) -> bytes:
    """A node's 32-byte public key, made up from its number: a 2.5+ radio makes its key pair
    when it first starts (NodeDB), so every simulated node has one unless told otherwise."""
    return hashlib.sha256(b"meshboard sim public key %d" % num).digest()


@dataclass(frozen=True)
class Outcome:
    """What `Router::sendLocal` made of a packet the node originates.

    `res` is what the client reads in its QueueStatus: an ErrorCode or, for a refusal, the
    Routing.Error itself (the firmware returns both through one value: `Router::send`,
    "FIXME - this isn't a valid ErrorCode"). `nak` is the error `Router::abortSendAndNak`
    also reports to the client as a ROUTING_APP packet, None when it reports none.
    """

    res: int = ERRNO_OK
    nak: int | None = None

    @property
    def queued(self) -> bool:
        return self.res == ERRNO_OK


SENT = Outcome()
QUEUE_FULL = Outcome(ERRNO_UNKNOWN)  # RadioLibInterface::send; no NAK (ReliableRouter retries)


def refused(error: int) -> Outcome:
    """A refusal by `Router::send` (duty cycle, perhapsEncode): res and NAK both say why."""
    return Outcome(error, error)


# -- sending ------------------------------------------------------------------------------


def encode(
    packet: mesh_pb2.MeshPacket,
    rules: ActiveRules,
    *,
    own_key: bytes,
    destination_key: bytes | None,
    channel_name: str | None,
    ok_to_mqtt: bool = False,
) -> int:
    """`perhapsEncode` for a packet this node originates; RoutingError.NONE or the refusal.

    Sets `Data.bitfield` (2 bytes on the air, counted by `lora.on_air_bytes`), and for a direct
    message on a PKI-eligible port to a node whose key is known, marks it `pki_encrypted` on
    channel 0, 12 bytes longer (MESHTASTIC_PKC_OVERHEAD). With the destination's key unknown,
    2.7.19 and later refuse (PKI_SEND_FAIL_PUBLIC_KEY, "refusing to send legacy DM"); earlier
    firmware sends it on the channel key. `channel_name` is None when the radio has no channel
    at the packet's index (NO_CHANNEL). `packet` is changed in place.
    """
    data = packet.decoded
    if rules.bitfield:
        data.bitfield = (
            data.bitfield
            | int(ok_to_mqtt) << BITFIELD_OK_TO_MQTT_SHIFT
            | int(data.want_response) << BITFIELD_WANT_RESPONSE_SHIFT
        )
    size = len(data.SerializeToString())
    if size + lora.MESHTASTIC_HEADER_LEN > lora.MAX_LORA_PAYLOAD:
        return int(RoutingError.TOO_LARGE)
    channel_allows = packet.pki_encrypted or (channel_name or "").lower() not in (
        NO_PKI_CHANNEL_NAMES
    )
    key_known = destination_key is not None and len(destination_key) == PKI_KEY_SIZE
    if (
        rules.pki
        and len(own_key) == PKI_KEY_SIZE
        and channel_allows
        and packet.to != BROADCAST_NUM
        and data.portnum not in NO_PKI_PORTS
        and (key_known or rules.refuse_unknown_key)
    ):
        if size + lora.MESHTASTIC_HEADER_LEN + lora.PKI_OVERHEAD > lora.MAX_LORA_PAYLOAD:
            return int(RoutingError.TOO_LARGE)
        if not key_known:
            return int(RoutingError.PKI_SEND_FAIL_PUBLIC_KEY)
        if packet.pki_encrypted and any(packet.public_key) and packet.public_key != destination_key:
            return int(RoutingError.PKI_FAILED)  # "Client public key differs from requested"
        packet.pki_encrypted = True
        packet.channel = 0
        return int(RoutingError.NONE)
    if packet.pki_encrypted:
        return int(RoutingError.PKI_FAILED)  # the client asked for PKI it cannot have
    if channel_name is None:
        return int(RoutingError.NO_CHANNEL)
    return int(RoutingError.NONE)


# -- receiving ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """What `perhapsDecode` made of a packet at one radio."""

    index: int | None  # the receiver's channel index; None: it could not read the packet
    pki: bool = False  # decrypted with the sender's public key: channel 0, pki_encrypted
    legacy_dm: bool = False  # a channel-key text DM to this node, refused ("Rejecting legacy DM")


def decode(
    packet: mesh_pb2.MeshPacket,
    key: ChannelKey,
    rules: ActiveRules,
    *,
    own_num: int,
    own_key: bytes,
    sender_key: bytes | None,
    channel_index: int | None,
    sealed: tuple[bytes, bytes | None] | None = None,
) -> Decoded:
    """`perhapsDecode` at the radio `own_num`, which heard `packet` sent under `key`.

    A PKI direct message is read only by its destination, and only when that radio has a key
    of its own and knows the sender's; it reaches the client on channel 0 whatever channel the
    sender had selected. `sealed`, when given, is (the sender's own public key, the key it
    sealed the message to): Curve25519 (`decryptCurve25519`) reads it only when these are the
    sender's key this radio holds and its own, so a node that changed its key, or an impostor
    on its number, is not read. A text direct message to this radio on a channel key is dropped
    from 2.7.14 on, unless the owner is licensed. `channel_index` is the receiver's own index
    of `key`, None when it does not have that channel.
    """
    to_us = packet.to == own_num
    if key == PKI_KEY:
        readable = to_us and rules.pki_decrypt and bool(own_key) and bool(sender_key)
        if sealed is not None and sealed != (sender_key, own_key):
            readable = False
        return Decoded(0, pki=True) if readable else Decoded(None)
    if channel_index is None:
        return Decoded(None)
    if rules.reject_legacy_dms and to_us and packet.decoded.portnum == PortNum.TEXT_MESSAGE_APP:
        return Decoded(None, legacy_dm=True)
    return Decoded(channel_index)


def nak_for_unreadable(packet: mesh_pb2.MeshPacket, key: ChannelKey, sender_known: bool) -> int:
    """`ReliableRouter::sniffReceived` on a want_ack packet to this node that it could not
    decode: PKI_UNKNOWN_PUBKEY for a PKI message from a node whose key it lacks, else
    NO_CHANNEL (a legacy DM too), sent back on the primary channel."""
    if key == PKI_KEY and not sender_known:
        return int(RoutingError.PKI_UNKNOWN_PUBKEY)
    return int(RoutingError.NO_CHANNEL)


# -- acknowledging ------------------------------------------------------------------------


def hops_away(packet: mesh_pb2.MeshPacket) -> int | None:
    """`getHopsAway`: relays the packet took; None when its header cannot tell."""
    known = packet.hop_start or packet.decoded.HasField("bitfield")
    if not known or packet.hop_start < packet.hop_limit:
        return None
    return int(packet.hop_start - packet.hop_limit)


def hop_limit_for_response(packet: mesh_pb2.MeshPacket, configured: int) -> int:
    """`RoutingModule::getHopLimitForResponse`: as many hops as the request took plus two,
    within the configured limit; more only if the request needed more."""
    used = hops_away(packet)
    if used is not None:
        if used > configured:
            return used
        if packet.hop_start == 0:
            return 0
        if used + 2 < configured:
            return used + 2
    return configured


@dataclass(frozen=True)
class AckPlan:
    """How the destination acknowledges a packet: the ACK's hop limit and its own want_ack."""

    hop_limit: int
    want_ack: bool = False


def ack_for(packet: mesh_pb2.MeshPacket, rules: ActiveRules, configured: int) -> AckPlan | None:
    """`ReliableRouter::sniffReceived` on a decoded want_ack packet to this node.

    Since 2.7.12 a text direct message's ACK asks for an ACK itself
    (`shouldSuccessAckWithWantAck`, `sendAckNak(..., ackWantsAck=true)`), so its sender learns
    it was delivered even when the first ACK is lost. Anything else that is not itself an ACK
    or a reply gets a plain ACK; an ACK or reply that wants one (such an ACK) gets a 0-hop ACK
    when it came straight from its sender, else none (its sender hears a relay instead).
    """
    if not packet.want_ack:
        return None
    data = packet.decoded
    response_hops = hop_limit_for_response(packet, configured)
    if rules.reliable_text_acks and data.portnum in TEXT_PORTS:
        return AckPlan(response_hops, want_ack=True)
    if not data.request_id and not data.reply_id:
        return AckPlan(response_hops)
    if hops_away(packet) == 0:
        return AckPlan(0)
    return None


def is_routing(packet: mesh_pb2.MeshPacket) -> bool:
    return bool(packet.decoded.portnum == PortNum.ROUTING_APP)


def routing_data(error: int, request_id: int) -> mesh_pb2.Data:
    """A ROUTING_APP answer (an ACK when `error` is NONE, else a NAK) to packet `request_id`."""
    return mesh_pb2.Data(
        portnum=PortNum.ROUTING_APP,
        payload=mesh_pb2.Routing(error_reason=error).SerializeToString(),
        request_id=request_id,
    )


def ack_nak(
    error: int,
    *,
    own_num: int,
    to: int,
    request_id: int,
    channel: int,
    packet_id: int,
    hop_limit: int = 0,
    want_ack: bool = False,
) -> mesh_pb2.MeshPacket:
    """`RoutingModule::sendAckNak` → `MeshModule::allocAckNak`: the routing packet a node
    makes, from itself, at ACK priority; `Router::sendLocal` keeps it off the air when `to` is
    the node itself (`isToUs`) and sends it otherwise."""
    packet = mesh_pb2.MeshPacket(
        to=to,
        channel=channel,
        id=packet_id,
        decoded=routing_data(error, request_id),
        hop_limit=hop_limit,
        want_ack=want_ack,
        priority=mesh_pb2.MeshPacket.Priority.ACK,
    )
    setattr(packet, "from", own_num)
    return packet
