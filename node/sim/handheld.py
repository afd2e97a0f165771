"""A virtual handheld: a mesh node with a scripted person instead of a client.

Tests and the demo use it as the neighbour who posts from a T-Deck or a phone: it sends texts
into the simulated mesh and keeps what its radio would show on the screen, including the ACK or
NAK of each direct message it sent. Its firmware's node database (`nodedb`) holds the nodes
whose public keys it knows; the mesh plays its NodeInfoModule (`node/sim/nodeinfo.py`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.sim.nodedb import NodeDB, own_user
from node.sim.profile import RadioProfile, node_id
from node.sim.router import BROADCAST_NUM

Transmit = Callable[[mesh_pb2.MeshPacket], None]
ROUTING_OK = mesh_pb2.Routing.Error.NONE


@dataclass(frozen=True)
class HeardText:
    """A text the handheld's radio delivered to its person."""

    sender: int
    to: int
    channel: int  # this handheld's own index of the channel it arrived on
    text: str
    packet_id: int
    hop_start: int
    hop_limit: int
    pki_encrypted: bool

    @property
    def direct(self) -> bool:
        return self.to != BROADCAST_NUM

    @property
    def hops_away(self) -> int:
        return self.hop_start - self.hop_limit


@dataclass(frozen=True)
class RoutingReport:
    """An ACK or NAK for a packet this handheld sent.

    `sender` is the destination for a real ACK and this handheld itself for an implicit ACK
    (a relay was heard repeating the packet) or a NAK.
    """

    request_id: int
    sender: int
    error_reason: int

    @property
    def ok(self) -> bool:
        return bool(self.error_reason == ROUTING_OK)


class VirtualHandheld:
    """A handheld in a `Mesh`; the mesh builds it and hands it the way onto the air."""

    def __init__(
        self, node_num: int, profile: RadioProfile, transmit: Transmit, rng: random.Random
    ) -> None:
        self.node_num = node_num
        self.profile = profile
        self.public_key = profile.key_of(node_num)
        self.nodedb = NodeDB(node_num, self.public_key)
        self._transmit = transmit
        self._rng = rng
        self._state = threading.Condition()
        self._packets: list[mesh_pb2.MeshPacket] = []
        self._texts: list[HeardText] = []
        self._routing: list[RoutingReport] = []
        self._listeners: list[Callable[[mesh_pb2.MeshPacket], None]] = []

    @property
    def node_id(self) -> str:
        return node_id(self.node_num)

    # -- the person's side ----------------------------------------------------------------

    def send_text(
        self,
        text: str,
        to: int | None = None,
        channel: int = 0,
        *,
        want_ack: bool | None = None,
        hop_limit: int | None = None,
        pki_encrypted: bool = False,
    ) -> int:
        """Send a text (a direct message when `to` is given); returns the packet id.

        Like the apps, a direct message asks for an ACK unless told otherwise. The handheld's
        firmware sends a direct message PKI-encrypted when it knows the destination's key
        (Router.cpp perhapsEncode), so it arrives on channel 0 whatever `channel` says;
        `pki_encrypted=True` is the client insisting (PKI_FAILED if it cannot be). A handheld
        whose profile has no key (`public_key=b""`), an older firmware or a licensed owner
        (`FirmwareRules(licensed=True)`) sends legacy direct messages on the channel key.
        """
        return self.send_data(
            text.encode("utf-8"),
            portnums_pb2.PortNum.TEXT_MESSAGE_APP,
            to,
            channel,
            want_ack=(to is not None) if want_ack is None else want_ack,
            hop_limit=hop_limit,
            pki_encrypted=pki_encrypted,
        )

    def send_data(
        self,
        payload: bytes,
        portnum: int,
        to: int | None = None,
        channel: int = 0,
        *,
        want_ack: bool = False,
        hop_limit: int | None = None,
        pki_encrypted: bool = False,
        want_response: bool = False,
    ) -> int:
        """Send any payload on any port; returns the packet id. The mesh applies the
        firmware's Router rules (`node/sim/router.py`): a refusal comes back as a NAK."""
        packet = mesh_pb2.MeshPacket(
            to=BROADCAST_NUM if to is None else to,
            channel=channel,
            id=self._rng.getrandbits(32) or 1,
            decoded=mesh_pb2.Data(portnum=portnum, payload=payload, want_response=want_response),
            want_ack=want_ack,
            hop_limit=self.profile.hop_limit if hop_limit is None else hop_limit,
            pki_encrypted=pki_encrypted,
        )
        setattr(packet, "from", self.node_num)
        self._transmit(packet)
        return int(packet.id)

    def send_node_info(
        self, to: int | None = None, channel: int = 0, want_response: bool = False
    ) -> int:
        """Send this handheld's own User (id, names, public key) on NODEINFO_APP, as its app's
        "exchange user info" does: never PKI-encrypted, and, sent by the person, not held back
        by the firmware's NodeInfo throttles. Returns the packet id."""
        user = own_user(self.node_num, self.profile, self.public_key)
        return self.send_data(
            user.SerializeToString(),
            portnums_pb2.PortNum.NODEINFO_APP,
            to,
            channel,
            want_response=want_response,
        )

    def rekey(self, public_key: bytes | None = None) -> bytes:
        """A new key pair (made up unless given), as after a factory reset, or as an impostor
        who claims this node's number has: nodes that hold the old key keep it and cannot read
        its PKI messages any more (NodeDB::updateUser). Returns the new public key."""
        key = self._rng.randbytes(32) if public_key is None else public_key
        self.public_key = self.nodedb.own_key = key
        return key

    @property
    def inbox(self) -> list[HeardText]:
        """Every text delivered to this handheld, in order."""
        with self._state:
            return list(self._texts)

    @property
    def packets(self) -> list[mesh_pb2.MeshPacket]:
        """Every packet delivered, texts, ACKs and all."""
        with self._state:
            return list(self._packets)

    @property
    def routing(self) -> list[RoutingReport]:
        with self._state:
            return list(self._routing)

    def wait_for_text(
        self, predicate: Callable[[HeardText], bool] = lambda _: True, timeout: float = 10.0
    ) -> HeardText:
        """The first delivered text matching `predicate`; TimeoutError after `timeout` real s."""
        with self._state:
            found: list[HeardText] = []

            def match() -> bool:
                found[:] = [t for t in self._texts if predicate(t)][:1]
                return bool(found)

            if not self._state.wait_for(match, timeout):
                raise TimeoutError(
                    f"{self.node_id}: no matching text in {timeout} s; inbox: "
                    f"{[t.text for t in self._texts]}"
                )
            return found[0]

    def wait_for_answer(
        self, packet_id: int, predicate: Callable[[HeardText], bool], timeout: float = 10.0
    ) -> HeardText | None:
        """The first text matching `predicate`, or None once this handheld's firmware gives up
        on `packet_id` (its NAK: the message never got through, and the app says so)."""
        with self._state:
            found: list[HeardText] = []

            def settled() -> bool:
                found[:] = [t for t in self._texts if predicate(t)][:1]
                return bool(found) or any(
                    r.request_id == packet_id and not r.ok for r in self._routing
                )

            if not self._state.wait_for(settled, timeout):
                raise TimeoutError(
                    f"{self.node_id}: no answer to {packet_id:#x} in {timeout} s; inbox: "
                    f"{[t.text for t in self._texts]}"
                )
            return found[0] if found else None

    def wait_for_ack(
        self, packet_id: int, timeout: float = 10.0, *, implicit: bool = False
    ) -> RoutingReport:
        """The ACK from the destination, or the NAK, for `packet_id`.

        With `implicit=True` an implicit ACK (a relay was heard repeating it) is enough.
        """

        def final(report: RoutingReport) -> bool:
            if report.request_id != packet_id:
                return False
            return not report.ok or implicit or report.sender != self.node_num

        with self._state:
            if not self._state.wait_for(lambda: any(map(final, self._routing)), timeout):
                raise TimeoutError(f"{self.node_id}: no ACK/NAK for {packet_id:#x} in {timeout} s")
            return next(r for r in self._routing if final(r))

    # -- the radio's side -----------------------------------------------------------------

    def on_packet(self, listener: Callable[[mesh_pb2.MeshPacket], None]) -> None:
        """Hand `listener` every packet this radio delivers too (an in-process client: a board
        without a serial line). It runs inside the mesh's callback: it must not block."""
        self._listeners.append(listener)

    def deliver(self, packet: mesh_pb2.MeshPacket) -> None:
        """Show a packet heard over the air (the mesh calls this)."""
        decoded = packet.decoded
        sender = int(getattr(packet, "from"))
        with self._state:
            self._packets.append(packet)
            if decoded.portnum == portnums_pb2.PortNum.TEXT_MESSAGE_APP:
                self._texts.append(
                    HeardText(
                        sender=sender,
                        to=packet.to,
                        channel=packet.channel,
                        text=decoded.payload.decode("utf-8", errors="replace"),
                        packet_id=packet.id,
                        hop_start=packet.hop_start,
                        hop_limit=packet.hop_limit,
                        pki_encrypted=packet.pki_encrypted,
                    )
                )
            elif decoded.portnum == portnums_pb2.PortNum.ROUTING_APP and decoded.request_id:
                routing = mesh_pb2.Routing()
                routing.ParseFromString(decoded.payload)
                self._routing.append(
                    RoutingReport(decoded.request_id, sender, routing.error_reason)
                )
            self._state.notify_all()
        for listener in self._listeners:
            listener(packet)
