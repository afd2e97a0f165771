"""How a radio encrypts, decrypts and acknowledges (firmware `Router.cpp` `perhapsEncode` and
`perhapsDecode`, `ReliableRouter.cpp`), through the unmodified meshtastic client: PKI direct
messages on channel 0, legacy direct messages refused, direct messages to a node without a known
key refused, the bitfield on the air, refusals in the QueueStatus, and the ACK of a text DM that
wants an ACK itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.clock import Clock
from node.sim import lora
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import (
    BROADCAST_NUM,
    ChannelSpec,
    FirmwareRules,
    RadioProfile,
    SimulatedRadio,
)
from node.sim.router import PKI_KEY, stand_in_key
from tests.node.sim.client import (
    BOARD_PORT,
    Client,
    connected,
    error_of,
    eventually,
    round_trip,
    status_of,
)

HANDHELD = 0x1234ABCD
STRANGER = 0x0DDBA115  # a node the radio has never heard of
GARDEN = ChannelSpec("garden", bytes(range(32)))
TWO_CHANNELS = RadioProfile(channels=(ChannelSpec(), GARDEN))
SPEED = 100.0
RoutingError = mesh_pb2.Routing.Error
PortNum = portnums_pb2.PortNum


@pytest.fixture
def radio() -> Iterator[SimulatedRadio]:
    with SimulatedRadio(profile=TWO_CHANNELS, clock=Clock(speed=SPEED)) as radio:
        radio.add_handheld(HANDHELD, "Ana")
        yield radio


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    with Mesh(clock=Clock(speed=SPEED), seed=3, telemetry_interval=None) as simulated:
        yield simulated


def board_and_neighbour(mesh: Mesh) -> tuple[SimulatedRadio, VirtualHandheld]:
    radio = mesh.add_radio(profile=TWO_CHANNELS)
    ana = mesh.add_handheld(profile=TWO_CHANNELS)
    mesh.link(radio, ana)
    return radio, ana


def text_from(client: Client, text: str) -> dict[str, object]:
    client.wait(lambda: any(p["decoded"]["payload"] == text.encode() for p in client.texts()))
    return next(p for p in client.texts() if p["decoded"]["payload"] == text.encode())


# -- PKI direct messages reach the client on channel 0 with the sender's key ------------------


def test_a_pki_dm_reaches_the_client_on_channel_0_with_the_senders_key(
    radio: SimulatedRadio,
) -> None:
    with connected(radio) as client:
        radio.receive_text(HANDHELD, "sent on garden", channel=1)
        radio.receive_text(HANDHELD, "to everyone on garden", channel=1, direct=False)
        direct = text_from(client, "sent on garden")
        assert direct.get("channel", 0) == 0
        assert direct["pkiEncrypted"] is True
        raw = direct["raw"]
        assert isinstance(raw, mesh_pb2.MeshPacket)
        assert raw.public_key == stand_in_key(HANDHELD) and len(raw.public_key) == 32
        broadcast = text_from(client, "to everyone on garden")
        assert broadcast["channel"] == 1 and "pkiEncrypted" not in broadcast


def test_in_a_mesh_a_handhelds_dm_arrives_as_pki_on_channel_0(mesh: Mesh) -> None:
    radio, ana = board_and_neighbour(mesh)
    with connected(radio) as client:
        ana.send_text("hello board", to=radio.node_num, channel=1)
        heard = text_from(client, "hello board")
        assert heard.get("channel", 0) == 0 and heard["pkiEncrypted"] is True
        raw = heard["raw"]
        assert isinstance(raw, mesh_pb2.MeshPacket) and raw.public_key == ana.public_key
        # (Ana's 0-hop ACK of the radio's ACK may follow: only her text counts here.)
        [record] = [r for r in mesh.log if r.sender == ana.node_num and r.kind == "origin"]
        assert record.channel == PKI_KEY  # no channel key: only the radio can read it
        data = len(raw.decoded.SerializeToString())  # the bitfield included
        assert record.payload_bytes == lora.MESHTASTIC_HEADER_LEN + data + lora.PKI_OVERHEAD


def test_a_dm_the_board_sends_reaches_the_handheld_as_pki_on_channel_0(mesh: Mesh) -> None:
    radio, ana = board_and_neighbour(mesh)
    with connected(radio) as client:
        client.sendText("reply", destinationId=ana.node_num, wantAck=True, channelIndex=1)
        heard = ana.wait_for_text(lambda t: t.text == "reply")
        assert (heard.channel, heard.pki_encrypted) == (0, True)
        assert next(r.channel for r in mesh.log if r.sender == radio.node_num) == PKI_KEY


# -- legacy (channel-key) direct messages are refused, unless the owner is licensed -----------


def test_a_channel_key_text_dm_never_reaches_the_client(radio: SimulatedRadio) -> None:
    with connected(radio) as client:
        radio.receive_text(HANDHELD, "legacy", pki_encrypted=False)
        radio.receive_text(HANDHELD, "after it")
        text_from(client, "after it")
        round_trip(client)
        assert [p["decoded"]["payload"] for p in client.texts()] == [b"after it"]
        assert radio.counters.legacy_dms_dropped == 1


def test_in_a_mesh_a_legacy_dm_is_dropped_and_the_sender_told_no_channel(mesh: Mesh) -> None:
    radio = mesh.add_radio()
    old = mesh.add_handheld(profile=RadioProfile(public_key=b""))  # no key pair: no PKI
    mesh.link(radio, old)
    with connected(radio) as client:
        packet_id = old.send_text("from an old handheld", to=radio.node_num)
        nak = old.wait_for_ack(packet_id)
        assert nak.error_reason == RoutingError.NO_CHANNEL  # ReliableRouter::sniffReceived
        round_trip(client)
        assert client.texts() == []
        assert mesh.node_stats(radio).dropped_legacy_dm == 1


def test_a_licensed_radio_still_takes_channel_key_dms() -> None:
    ham = RadioProfile(rules=FirmwareRules(licensed=True))
    with SimulatedRadio(profile=ham) as radio, connected(radio) as client:
        radio.receive_text(HANDHELD, "73", pki_encrypted=False)
        heard = text_from(client, "73")
        assert "pkiEncrypted" not in heard
        assert radio.counters.legacy_dms_dropped == 0


# -- a direct message to a node whose key the radio lacks ----------------------------------------


@pytest.mark.parametrize(
    ("firmware_version", "rules", "refused"),
    [
        ("2.7.26.54e0d8d", FirmwareRules(), True),  # PKI_SEND_FAIL_PUBLIC_KEY since 2.7.19
        ("2.7.18.fb3bf78", FirmwareRules(), False),  # before: sent on the channel key
        ("2.7.26.54e0d8d", FirmwareRules(refuse_unknown_key=False), False),
        ("2.7.18.fb3bf78", FirmwareRules(refuse_unknown_key=True), True),
    ],
)
def test_a_dm_to_a_node_without_a_known_key(
    firmware_version: str, rules: FirmwareRules, refused: bool
) -> None:
    profile = RadioProfile(firmware_version=firmware_version, rules=rules)
    with (
        SimulatedRadio(profile=profile, clock=Clock(speed=SPEED)) as radio,
        connected(radio) as client,
    ):
        sent = client.sendText("hello?", destinationId=STRANGER, wantAck=True)
        status = client.status_for(sent.id)
        if refused:
            assert status_of(status)[0] == RoutingError.PKI_SEND_FAIL_PUBLIC_KEY
            nak = client.routing_for(sent.id)  # abortSendAndNak: to getFrom(p), the radio
            assert error_of(nak) == "PKI_SEND_FAIL_PUBLIC_KEY"
            assert radio.texts_to(STRANGER) == []
            assert radio.refused[0].reason == "PKI_SEND_FAIL_PUBLIC_KEY"
            round_trip(client)
            assert radio.on_air == []
        else:
            assert status_of(status)[0] == 0
            eventually(lambda: bool(radio.on_air))
            [on_air] = radio.on_air
            assert not on_air.packet.pki_encrypted  # a legacy DM, on the channel key


# -- the bitfield: 2 bytes on every packet the node originates -----------------------------------


def test_the_bitfield_is_counted_in_the_airtime(radio: SimulatedRadio) -> None:
    # 16-byte header + 3 (port 384) + 2 + 6 (payload) = 27 bytes: 6 LongFast symbol blocks; with
    # the 2-byte bitfield, 29 bytes take a seventh.
    payload = b"\x10board"
    with connected(radio) as client:
        sent = client.sendData(payload, portNum=BOARD_PORT, hopLimit=0)
        eventually(lambda: bool(radio.on_air))
        [on_air] = radio.on_air
        assert on_air.packet.id == sent.id
        assert on_air.packet.decoded.HasField("bitfield")
        assert lora.on_air_bytes(on_air.packet) == 29
        assert on_air.airtime == lora.airtime_seconds(29)
        assert lora.airtime_seconds(29) > lora.airtime_seconds(27)


def test_in_a_mesh_the_bitfield_is_counted_too(mesh: Mesh) -> None:
    radio, ana = board_and_neighbour(mesh)
    with connected(radio) as client:
        client.sendData(b"\x10board", portNum=BOARD_PORT, hopLimit=0)
        eventually(lambda: bool(mesh.log))
        mesh.wait_idle()
        [record] = mesh.log
        assert (record.port, record.payload_bytes) == (BOARD_PORT, 29)
        assert record.airtime == pytest.approx(lora.airtime_seconds(29, mesh.preset))
        [heard] = ana.packets
        assert heard.decoded.HasField("bitfield")  # the receiver sees what the sender set


# -- refusals in the QueueStatus: the duty cycle ---------------------------------------------------


def test_beyond_the_duty_cycle_the_queue_status_and_a_nak_say_so() -> None:
    with Mesh(
        clock=Clock(speed=SPEED), preset=lora.LONG_SLOW, duty_cycle_percent=0.01
    ) as mesh:  # 0.36 s an hour: one LongSlow packet spends it
        radio, _ = board_and_neighbour(mesh)
        with connected(radio) as client:
            first = client.sendData(b"\x10one", portNum=BOARD_PORT, hopLimit=0).id
            assert status_of(client.status_for(first))[0] == 0
            eventually(lambda: bool(mesh.log))
            mesh.wait_idle()
            second = client.sendData(b"\x10two", portNum=BOARD_PORT, hopLimit=0).id
            assert status_of(client.status_for(second))[0] == RoutingError.DUTY_CYCLE_LIMIT
            assert error_of(client.routing_for(second)) == "DUTY_CYCLE_LIMIT"
            assert [r.packet_id for r in mesh.log] == [first]


def test_in_a_mesh_the_rate_limit_nak_to_node_0_costs_airtime() -> None:
    # At 5 times real speed the client's 0.1 s between writes is 0.5 s: the second text is
    # rate-limited, and the NAK for its `from` (0) goes on the air.
    with Mesh(clock=Clock(speed=5.0), seed=3, telemetry_interval=None) as mesh:
        radio, ana = board_and_neighbour(mesh)
        with connected(radio) as client:
            first = client.sendText("one", destinationId=ana.node_num, wantAck=True).id
            second = client.sendText("two", destinationId=ana.node_num, wantAck=True).id
            client.status_for(second)
            assert [r.packet.id for r in radio.refused] == [second]
            eventually(lambda: any(r.to == 0 for r in mesh.log))
            [nak] = [r for r in mesh.log if r.to == 0]
            assert (nak.sender, nak.port, nak.hop_limit) == (radio.node_num, PortNum.ROUTING_APP, 0)
            assert nak.payload_bytes > lora.MESHTASTIC_HEADER_LEN
            assert client.routing_about(second) == []
            assert first in [t.packet.id for t in radio.transmissions]


# -- the ACK of a text DM wants an ACK (2.7.12) --------------------------------------------------


def test_a_text_dms_ack_wants_an_ack_and_gets_a_0_hop_one(mesh: Mesh) -> None:
    radio, ana = board_and_neighbour(mesh)
    with connected(radio) as client:
        text = client.sendText("ack me", destinationId=ana.node_num, wantAck=True)
        ack = client.routing_for(text.id)
        assert error_of(ack) == "NONE" and ack["from"] == ana.node_num
        assert ack["wantAck"] is True  # ReliableRouter::shouldSuccessAckWithWantAck
        mesh.wait_idle()
        assert [(r.sender, r.kind, r.hop_limit) for r in mesh.log] == [
            (radio.node_num, "origin", 3),
            (ana.node_num, "ack", 2),
            (radio.node_num, "ack", 0),  # the radio's ACK of Ana's ACK, one hop
        ]
        assert [r.ok for r in ana.routing] == [True]  # so Ana's radio stops retrying


def test_other_dms_get_a_plain_ack(mesh: Mesh) -> None:
    radio, ana = board_and_neighbour(mesh)
    with connected(radio) as client:
        sent = client.sendData(
            b"\x10dm", destinationId=ana.node_num, portNum=BOARD_PORT, wantAck=True
        )
        ack = client.routing_for(sent.id)
        assert error_of(ack) == "NONE" and "wantAck" not in ack
        mesh.wait_idle()
        assert [r.kind for r in mesh.log] == ["origin", "ack"]


def test_broadcasts_are_not_acknowledged(mesh: Mesh) -> None:
    radio, _ = board_and_neighbour(mesh)
    with connected(radio) as client:
        client.sendText("everyone", destinationId=BROADCAST_NUM)
        eventually(lambda: bool(mesh.log))
        mesh.wait_idle()
        assert [r.kind for r in mesh.log] == ["origin", "relay"]  # Ana relays; nobody ACKs
