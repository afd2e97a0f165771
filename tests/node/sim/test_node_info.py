"""How nodes learn each other's public keys from NodeInfo (firmware `NodeInfoModule.cpp`,
`NodeDB.cpp` `updateUser`, `MeshService.cpp` `handleFromRadio`, `ReliableRouter.cpp`), through
the unmodified meshtastic client: a handheld the radio has never heard of answers the client's
request, and direct messages to it then go out PKI-encrypted; a second request within 12 h gets
no answer; a NodeInfo with another key for a known number changes nothing; a client radio asks a
node it hears for the first time, a router does not.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.clock import Clock
from node.sim.handheld import VirtualHandheld
from node.sim.handshake import NodeEntry
from node.sim.mesh import Mesh
from node.sim.nodedb import (
    SEND_INTERVAL,
    NodeDB,
    NodeInfoMemory,
    Update,
)
from node.sim.profile import ChannelSpec, RadioProfile, Role, node_id
from node.sim.radio import SimulatedRadio
from node.sim.router import PKI_KEY, stand_in_key
from tests.node.sim.client import Client, connected, error_of, round_trip, status_of

SPEED = 100.0
GARDEN = ChannelSpec("garden", bytes(range(32)))
TWO_CHANNELS = RadioProfile(channels=(ChannelSpec(), GARDEN))
NODEINFO = portnums_pb2.PortNum.NODEINFO_APP
RoutingError = mesh_pb2.Routing.Error


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    with Mesh(clock=Clock(speed=SPEED), seed=5, telemetry_interval=None) as simulated:
        yield simulated


def radio_and_stranger(
    mesh: Mesh, profile: RadioProfile = TWO_CHANNELS
) -> tuple[SimulatedRadio, VirtualHandheld]:
    """A pty radio and a new handheld next to it that its node database does not hold."""
    radio = mesh.add_radio(profile=profile)
    ana = mesh.add_handheld(profile=TWO_CHANNELS, announced=False)
    mesh.link(radio, ana)
    return radio, ana


def own_user(radio: SimulatedRadio) -> mesh_pb2.User:
    """What the board sends as its NodeInfo request: the radio's own User."""
    profile = radio.profile
    return mesh_pb2.User(
        id=node_id(radio.node_num),
        long_name=profile.long_name,
        short_name=profile.short_name,
        public_key=radio.public_key,
    )


def ask_for_node_info(client: Client, radio: SimulatedRadio, num: int, channel: int = 0) -> int:
    sent = client.sendData(
        own_user(radio),
        destinationId=num,
        portNum=NODEINFO,
        wantResponse=True,
        channelIndex=channel,
    )
    return int(sent.id)


def client_key(client: Client, num: int) -> bytes | None:
    """The public key the client's node list shows for `num`."""
    key = client.nodesByNum.get(num, {}).get("user", {}).get("publicKey")
    return None if key is None else base64.b64decode(key)


def node_infos(mesh: Mesh, sender: int) -> list[int]:
    """Destinations of the NodeInfo packets `sender` put on the air itself."""
    return [r.to for r in mesh.log if r.sender == sender and r.port == NODEINFO]


# -- a node the radio does not know answers the client's request ----------------------------------


def test_a_stranger_answers_the_request_and_then_gets_pki_dms(mesh: Mesh) -> None:
    radio, ana = radio_and_stranger(mesh)
    with connected(radio) as client:
        assert radio.node_key(ana.node_num) is None and ana.node_num not in client.nodesByNum
        refused = client.sendText("hello?", destinationId=ana.node_num, wantAck=True)
        assert status_of(client.status_for(refused.id))[0] == RoutingError.PKI_SEND_FAIL_PUBLIC_KEY
        assert error_of(client.routing_for(refused.id)) == "PKI_SEND_FAIL_PUBLIC_KEY"

        request = ask_for_node_info(client, radio, ana.node_num, channel=1)
        client.wait(lambda: client_key(client, ana.node_num) == ana.public_key)
        assert radio.node_key(ana.node_num) == ana.public_key  # the radio's own node DB too
        [answer] = [p for p in client.packets if p["decoded"]["portnum"] == "NODEINFO_APP"]
        assert answer["from"] == ana.node_num and answer["decoded"]["requestId"] == request
        assert answer["channel"] == 1  # on the channel the request came on
        assert answer["decoded"]["user"]["id"] == ana.node_id
        [asked] = [p for p in ana.packets if p.decoded.portnum == NODEINFO]
        assert (asked.channel, asked.pki_encrypted, asked.decoded.want_response) == (1, False, True)
        garden = (GARDEN.name, GARDEN.psk)
        assert [r.channel for r in mesh.log if r.port == NODEINFO] == [garden, garden]

        client.sendText("hello again", destinationId=ana.node_num, wantAck=True, channelIndex=1)
        heard = ana.wait_for_text(lambda t: t.text == "hello again")
        assert (heard.channel, heard.pki_encrypted) == (0, True)
        dm = next(r for r in mesh.log if r.port == portnums_pb2.PortNum.TEXT_MESSAGE_APP)
        assert dm.channel == PKI_KEY


def test_a_second_request_within_12_hours_gets_no_answer(mesh: Mesh) -> None:
    radio, ana = radio_and_stranger(mesh)
    with connected(radio) as client:
        ask_for_node_info(client, radio, ana.node_num)
        client.wait(lambda: client_key(client, ana.node_num) is not None)
        mesh.wait_idle()
        again = ask_for_node_info(client, radio, ana.node_num)
        client.status_for(again)
        mesh.wait_idle()
        round_trip(client)
        assert node_infos(mesh, ana.node_num) == [radio.node_num]  # one answer, to the first
        assert client.routing_about(again) == []  # ignoreRequest: no NO_RESPONSE NAK either


def test_the_12_hour_and_10_minute_rules_by_the_source() -> None:
    """NodeInfoModule::handleReceivedProtobuf (lastNodeInfoSeen, 12 h) and allocReply (its own
    NodeInfo sent < 10 min ago; 60 s for sendOurNodeInfo's shorter timeout)."""
    memory = NodeInfoMemory()
    minute = 60.0
    assert not memory.request_heard(0xA, 0.0)
    assert memory.may_send(0.0, shorter=False, channel_util=0.0)
    assert memory.request_heard(0xA, 11 * minute)  # the same requester: suppressed for 12 h
    assert not memory.request_heard(0xB, 11 * minute)  # another one is answered...
    assert memory.may_send(11 * minute, shorter=False, channel_util=0.0)  # ...10 min on
    assert not memory.may_send(12 * minute, shorter=False, channel_util=0.0)
    assert memory.may_send(12 * minute, shorter=True, channel_util=0.0)  # 60 s suffice
    assert not memory.may_send(12 * minute + SEND_INTERVAL, shorter=False, channel_util=40.0)
    assert not memory.request_heard(0xA, 11 * minute + 12 * 3600.0)  # 12 h later: answered


# -- what a node database takes from a NodeInfo (NodeDB::updateUser) ------------------------------


def test_the_node_database_keeps_the_first_key_it_learnt() -> None:
    own, ana, other = stand_in_key(1), stand_in_key(2), stand_in_key(3)
    db = NodeDB(1, own)

    def user(key: bytes, name: str = "Ana") -> mesh_pb2.User:
        return mesh_pb2.User(long_name=name, short_name=name[:4], public_key=key)

    assert db.update_user(2, user(ana), 0) is Update.CHANGED and db.key_of(2) == ana
    assert db.update_user(2, user(ana), 0) is Update.SAME
    assert db.update_user(2, user(other, "Eve"), 0) is Update.KEY_MISMATCH
    assert db.update_user(2, user(b"", "Eve"), 0) is Update.KEY_MISMATCH
    assert db.get(2) == NodeEntry(2, "Ana", "Ana", ana)  # the whole NodeInfo was dropped
    assert db.update_user(2, user(ana, "Ana B"), 1) is Update.CHANGED  # same key: names taken
    assert db.update_user(3, user(own), 0) is Update.OUR_KEY and not db.has_user(3)
    assert db.update_user(4, user(b"", "Old"), 0) is Update.CHANGED and db.key_of(4) == b""
    assert db.update_user(4, user(other, "Old"), 0) is Update.CHANGED and db.key_of(4) == other


def test_a_nodeinfo_with_another_key_for_a_known_number_changes_nothing(mesh: Mesh) -> None:
    radio = mesh.add_radio()
    ana = mesh.add_handheld()
    mesh.link(radio, ana)
    known = ana.public_key
    with connected(radio) as client:
        assert client_key(client, ana.node_num) == known
        claimed = ana.rekey()  # a factory reset, or an impostor on Ana's number
        ana.send_node_info()
        mesh.wait_idle()
        assert radio.node_key(ana.node_num) == known  # "Public Key mismatch, dropping NodeInfo"
        # The firmware still hands the broadcast to its client (RoutingModule → handleFromRadio),
        # so the client's node list shows the claimed key: the radio's DB is what counts.
        client.wait(lambda: client_key(client, ana.node_num) == claimed)

        sent = ana.send_text("it is me, send me your secrets", to=radio.node_num)
        nak = ana.wait_for_ack(sent)
        assert nak.error_reason == RoutingError.NO_CHANNEL  # sealed with a key it does not hold
        round_trip(client)
        assert client.texts() == []
        assert mesh.node_stats(radio).undecodable == 1


# -- a node asks one it hears for the first time (MeshService::handleFromRadio) -------------------


def test_a_client_radio_asks_a_node_it_hears_for_the_first_time(mesh: Mesh) -> None:
    radio, ana = radio_and_stranger(mesh)
    with connected(radio) as client:
        ana.send_text("hello all", channel=1)
        client.wait(lambda: client_key(client, ana.node_num) == ana.public_key)
        [ask] = [p for p in ana.packets if p.decoded.portnum == NODEINFO]
        assert getattr(ask, "from") == radio.node_num and ask.decoded.want_response
        assert ask.channel == 1  # the channel the unknown node was heard on
        assert any(s.mesh_packet_id == ask.id for s in client.statuses)  # sendToMesh's status
        assert [p["decoded"]["text"] for p in client.texts()] == ["hello all"]
        mesh.wait_idle()
        assert node_infos(mesh, radio.node_num) == [ana.node_num]
        assert node_infos(mesh, ana.node_num) == [radio.node_num]


def test_a_router_does_not_ask(mesh: Mesh) -> None:
    radio, ana = radio_and_stranger(mesh, RadioProfile(role=Role.ROUTER))
    ana.send_text("hello all")
    mesh.wait_idle()
    assert mesh.node_stats(radio).received == 1
    assert node_infos(mesh, radio.node_num) == []
    assert radio.node_key(ana.node_num) is None


def test_a_pki_dm_the_radio_cannot_read_makes_the_sender_send_its_node_info(mesh: Mesh) -> None:
    radio, ana = radio_and_stranger(mesh)  # Ana knows the radio; it does not know her
    with connected(radio) as client:
        first = ana.send_text("hello board", to=radio.node_num)
        nak = ana.wait_for_ack(first)
        assert nak.error_reason == RoutingError.PKI_UNKNOWN_PUBKEY
        client.wait(lambda: client_key(client, ana.node_num) == ana.public_key)
        assert node_infos(mesh, ana.node_num) == [radio.node_num]  # sendOurNodeInfo, no reply
        again = ana.send_text("hello board, again", to=radio.node_num)
        assert ana.wait_for_ack(again).ok
        client.wait(
            lambda: [p["decoded"]["text"] for p in client.texts()] == ["hello board, again"]
        )


def test_the_radio_answers_a_request_to_it(mesh: Mesh) -> None:
    radio = mesh.add_radio(profile=TWO_CHANNELS)
    ana = mesh.add_handheld(profile=TWO_CHANNELS)
    mesh.link(radio, ana)
    with connected(radio) as client:
        request = ana.send_node_info(to=radio.node_num, channel=1, want_response=True)
        mesh.wait_idle()
        [answer] = [p for p in ana.packets if p.decoded.portnum == NODEINFO]
        assert answer.decoded.request_id == request and answer.channel == 1
        user = mesh_pb2.User.FromString(answer.decoded.payload)
        assert (user.id, user.public_key) == (node_id(radio.node_num), radio.public_key)
        # The client sees the request, and a QueueStatus for the answer it never sent.
        client.wait(lambda: any(s.mesh_packet_id == answer.id for s in client.statuses))
        [asked] = [p for p in client.packets if p["decoded"]["portnum"] == "NODEINFO_APP"]
        assert asked["id"] == request and asked["decoded"]["wantResponse"] is True
