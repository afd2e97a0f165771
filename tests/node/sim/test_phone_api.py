"""What a radio does with what its client hands it (firmware `PhoneAPI.cpp`, `MeshService.cpp`),
through the unmodified meshtastic client: the per-port rate limits, the recently seen ids, the
QueueStatus after every packet and the heartbeat's answer.

The radio's clock runs fast where a rule is about seconds; a margin of 0.1 simulated seconds is
then 50 ms of the test's time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.clock import Clock
from node.sim import router
from node.sim.radio import BROADCAST_NUM, FirmwareRules, RadioProfile, SimulatedRadio
from tests.node.sim.client import (
    BOARD_PORT,
    Client,
    board_packet,
    connected,
    error_of,
    eventually,
    raw_line,
    round_trip,
    status_of,
)

HANDHELD = 0x1234ABCD
SPEED = 2.0
PortNum = portnums_pb2.PortNum


@pytest.fixture
def clock() -> Clock:
    return Clock(speed=SPEED)


def radio_on(clock: Clock, rules: FirmwareRules | None = None, **kwargs: int) -> SimulatedRadio:
    profile = RadioProfile(rules=rules or FirmwareRules())
    radio = SimulatedRadio(profile=profile, clock=clock, **kwargs)
    radio.add_handheld(HANDHELD, "Ana")
    return radio


@pytest.fixture
def radio(clock: Clock) -> Iterator[SimulatedRadio]:
    with radio_on(clock) as radio:
        yield radio


def send_text(client: Client, radio: SimulatedRadio, text: str) -> tuple[int, float]:
    """Send a DM; returns its id and when the radio took it, on the radio's clock."""
    packet_id = int(client.sendText(text, destinationId=HANDHELD, wantAck=True).id)
    client.status_for(packet_id)
    handled = [t.at for t in radio.transmissions if t.packet.id == packet_id]
    handled += [r.at for r in radio.refused if r.packet.id == packet_id]
    return packet_id, handled[0]


def at(clock: Clock, moment: float) -> None:
    clock.sleep(moment - clock.monotonic())


def rate_limit_naks(radio: SimulatedRadio) -> list[mesh_pb2.MeshPacket]:
    """The routing packets the radio put on its own air."""
    return [
        sent.packet
        for sent in radio.on_air
        if sent.packet.decoded.portnum == PortNum.ROUTING_APP
        and mesh_pb2.Routing.FromString(sent.packet.decoded.payload).error_reason
        == mesh_pb2.Routing.Error.RATE_LIMIT_EXCEEDED
    ]


# -- the client text rate: one text per 2 s (TWO_SECONDS_MS) ----------------------------------


def test_a_text_1_9_s_after_the_last_is_not_sent(clock: Clock, radio: SimulatedRadio) -> None:
    with connected(radio) as client:
        _, first = send_text(client, radio, "first")
        at(clock, first + 1.9)
        early, when = send_text(client, radio, "too soon")
        assert when - first < 2.0, "the test itself was too slow"

        assert status_of(client.status_for(early))[0] == 0  # res 0: not an error, not sent
        assert [r.reason for r in radio.refused] == ["rate limited"]
        assert radio.texts_to(HANDHELD) == ["first"]
        # The RATE_LIMIT_EXCEEDED NAK goes to the packet's `from`, which this client left 0:
        # node 0, on the air, and never to the client.
        eventually(lambda: bool(rate_limit_naks(radio)))
        [nak] = rate_limit_naks(radio)
        assert (nak.to, nak.decoded.request_id, nak.hop_limit) == (0, early, 0)
        round_trip(client)
        assert client.routing_about(early) == []
        assert all(sent.packet.decoded.payload != b"too soon" for sent in radio.on_air)


def test_with_the_switch_a_rate_limited_text_is_nakked_to_the_client(clock: Clock) -> None:
    switched = FirmwareRules(rate_limit_nak_to_client=True)
    with radio_on(clock, switched) as radio, connected(radio) as client:
        _, first = send_text(client, radio, "first")
        at(clock, first + 1.9)
        early, when = send_text(client, radio, "too soon")
        assert when - first < 2.0, "the test itself was too slow"

        nak = client.routing_for(early)
        assert error_of(nak) == "RATE_LIMIT_EXCEEDED"
        assert nak["from"] == nak["to"] == radio.node_num
        assert radio.texts_to(HANDHELD) == ["first"]
        assert rate_limit_naks(radio) == []  # to the client, not on the air


def test_a_text_2_1_s_after_the_last_is_sent(clock: Clock, radio: SimulatedRadio) -> None:
    with connected(radio) as client:
        _, first = send_text(client, radio, "first")
        at(clock, first + 2.1)
        later, _ = send_text(client, radio, "in time")
        assert status_of(client.status_for(later))[0] == 0
        assert radio.texts_to(HANDHELD) == ["first", "in time"]
        assert radio.refused == []
        round_trip(client)
        assert [error_of(r) for r in client.routing_about(later)] == ["NONE"]  # Ana's ACK


def test_only_an_accepted_text_restarts_the_two_seconds(
    clock: Clock, radio: SimulatedRadio
) -> None:
    with connected(radio) as client:
        _, first = send_text(client, radio, "first")
        at(clock, first + 1.0)
        send_text(client, radio, "refused")
        at(clock, first + 2.1)  # 1.1 s after the refused one
        send_text(client, radio, "accepted")
        assert radio.texts_to(HANDHELD) == ["first", "accepted"]


def test_a_client_that_said_disconnect_starts_the_two_seconds_afresh() -> None:
    # PhoneAPI::close forgets the per-port times (not the recent ids): a board that restarts
    # may send at once. On a clock at half speed the reconnection takes well under 2 s.
    with radio_on(Clock(speed=0.5)) as radio:
        with connected(radio) as client:
            _, first = send_text(client, radio, "before the restart")
        with connected(radio) as client:  # close() above sent ToRadio.disconnect
            _, again = send_text(client, radio, "after it")
        assert again - first < 2.0, "the test itself was too slow"
        assert radio.texts_to(HANDHELD) == ["before the restart", "after it"]


def test_board_packets_are_not_rate_limited(radio: SimulatedRadio) -> None:
    with connected(radio) as client:
        ids = [client.sendData(b"\x10%d" % n, portNum=BOARD_PORT, hopLimit=0).id for n in range(4)]
        assert [status_of(client.status_for(i))[0] for i in ids] == [0, 0, 0, 0]
        assert [t.packet.id for t in radio.transmissions] == ids


def test_positions_once_per_10_s_and_each_port_on_its_own() -> None:
    clock = Clock(speed=10.0)
    switched = FirmwareRules(rate_limit_nak_to_client=True)
    with radio_on(clock, switched) as radio, connected(radio) as client:
        position = mesh_pb2.Position(latitude_i=525200000, longitude_i=134050000)
        first = client.sendData(position, portNum=PortNum.POSITION_APP).id
        client.status_for(first)
        text, _ = send_text(client, radio, "a text is another port")
        at(clock, radio.transmissions[0].at + 5.0)
        again = client.sendData(position, portNum=PortNum.POSITION_APP).id
        client.status_for(again)
        round_trip(client)
        assert [t.packet.id for t in radio.transmissions] == [first, text]
        assert [(r.packet.id, r.reason) for r in radio.refused] == [(again, "rate limited")]
        assert client.routing_about(again) == []  # no NAK: that is for texts only


def test_a_traceroute_once_per_30_s() -> None:
    clock = Clock(speed=50.0)
    with radio_on(clock) as radio, connected(radio) as client:
        request = mesh_pb2.RouteDiscovery().SerializeToString()
        ids = []
        for _ in range(2):
            packet = client.sendData(
                request, destinationId=HANDHELD, portNum=PortNum.TRACEROUTE_APP, hopLimit=3
            )
            ids.append(packet.id)
            client.status_for(packet.id)
        [sent] = radio.transmissions
        assert sent.packet.id == ids[0] and sent.packet.want_ack  # made reliable (2.7.12)
        assert [(r.packet.id, r.reason) for r in radio.refused] == [(ids[1], "rate limited")]


# -- recently seen ids: the last 20, each ignored without a word ------------------------------


def test_a_repeated_id_is_ignored_no_queue_status_nothing_sent(radio: SimulatedRadio) -> None:
    with connected(radio) as client:
        before = len(client.statuses)
        client._sendPacket(board_packet(0xB0A4D001), BROADCAST_NUM)
        client._sendPacket(board_packet(0xB0A4D001), BROADCAST_NUM)  # a resend under its id
        client._sendPacket(board_packet(0xB0A4D002), BROADCAST_NUM)
        client.status_for(0xB0A4D002)
        assert [s.mesh_packet_id for s in client.statuses[before:]] == [0xB0A4D001, 0xB0A4D002]
        assert [t.packet.id for t in radio.transmissions] == [0xB0A4D001, 0xB0A4D002]
        assert radio.counters.repeated_ids == 1
        assert radio.counters.packets_from_client == 3


def test_the_id_of_a_rate_limited_text_is_remembered_too(
    clock: Clock, radio: SimulatedRadio
) -> None:
    def text(packet_id: int) -> mesh_pb2.MeshPacket:
        data = mesh_pb2.Data(portnum=PortNum.TEXT_MESSAGE_APP, payload=b"list")
        return mesh_pb2.MeshPacket(id=packet_id, decoded=data)

    with connected(radio) as client:
        _, first = send_text(client, radio, "first")
        at(clock, first + 1.0)
        client._sendPacket(text(0x7E570001), HANDHELD, wantAck=True)
        client.status_for(0x7E570001)  # rate limited, but its id is now among the seen
        at(clock, first + 3.0)
        before = len(client.statuses)
        client._sendPacket(text(0x7E570001), HANDHELD, wantAck=True)
        round_trip(client)
        assert [s.mesh_packet_id for s in client.statuses[before:]] == [0]  # the heartbeat's
        assert radio.texts_to(HANDHELD) == ["first"]
        assert [r.reason for r in radio.refused] == ["rate limited", "repeated id"]


def test_only_the_last_20_ids_are_remembered() -> None:
    with radio_on(Clock(speed=100.0)) as radio, connected(radio) as client:
        for n in range(1, 22):
            client._sendPacket(board_packet(n), BROADCAST_NUM, hopLimit=0)
        client._sendPacket(board_packet(1), BROADCAST_NUM, hopLimit=0)  # 21 ids ago
        client._sendPacket(board_packet(21), BROADCAST_NUM, hopLimit=0)  # the last one
        round_trip(client)
        assert [t.packet.id for t in radio.transmissions] == [*range(1, 22), 1]
        assert radio.counters.repeated_ids == 1


# -- QueueStatus and the heartbeat -------------------------------------------------------------


def test_a_heartbeat_is_answered_with_a_queue_status(radio: SimulatedRadio) -> None:
    with connected(radio) as client:
        before = len(client.statuses)
        client.sendHeartbeat()
        client.wait(lambda: len(client.statuses) > before)
        assert [status_of(s) for s in client.statuses[before:]] == [(0, 16, 0)]
        assert client.statuses[-1].maxlen == 16


def test_free_slots_fall_as_packets_queue_and_rise_as_they_go_on_air() -> None:
    # On a clock at a hundredth of real time nothing leaves the queue while the client sends.
    clock = Clock(speed=0.01)
    with radio_on(clock, tx_queue_len=3) as radio, connected(radio) as client:
        start = len(client.statuses)
        sent: list[int] = []

        def send_five() -> None:
            for n in range(5):
                sent.append(client.sendData(b"\x10%d" % n, portNum=BOARD_PORT, hopLimit=0).id)

        sender = threading.Thread(target=send_five)
        sender.start()
        client.wait(lambda: any(s.free == 0 for s in client.statuses[start:]))
        frees = [s.free for s in client.statuses[start:]]
        assert frees == list(range(frees[0], -1, -1)), frees  # one slot fewer for each packet
        assert sender.is_alive()  # the client waits for room, as it does for a real radio

        clock.set_speed(1000.0)  # the queue drains onto the air
        sender.join(timeout=10)
        assert not sender.is_alive()
        rising = [s for s in client.statuses[start:] if s.mesh_packet_id == 0]
        assert rising and rising[0].free > 0  # unasked: MeshService::loop saw room again
        eventually(lambda: len(radio.on_air) == 5)
        assert [a.packet.id for a in radio.on_air] == sent


def test_a_full_queue_answers_res_32_and_sends_nothing() -> None:
    # The Python client never overfills the queue: it waits for room after a QueueStatus with
    # free 0 (MeshInterface._sendToRadio). A client that does not is refused.
    clock = Clock(speed=0.01)
    with radio_on(clock, tx_queue_len=1) as radio, raw_line(radio) as line:
        for n in (1, 2, 3):
            packet = board_packet(n)
            packet.to = BROADCAST_NUM
            line.send(mesh_pb2.ToRadio(packet=packet))
        statuses = [status_of(s) for s in line.statuses(3)]
        assert statuses[2] == (router.ERRNO_UNKNOWN, 0, 3)  # RadioLibInterface::send
        assert 3 not in [t.packet.id for t in radio.transmissions]
        assert radio.refused[-1].reason == "queue full"
