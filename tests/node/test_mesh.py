"""The simulated mesh: flooding, loss, partitions, channels, ACKs, duty cycle, telemetry.

Everything runs on a fast clock: a 1.9 s LongFast packet takes about 10 ms of the test's time
while every figure still counts 1.9 s.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2
from meshtastic.serial_interface import SerialInterface
from pubsub import pub

from node.clock import Clock
from node.sim import lora
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import ChannelSpec, RadioProfile, SimulatedRadio

SPEED = 200
PRIVATE = ChannelSpec(name="club", psk=bytes(range(32)))
OTHER = ChannelSpec(name="other", psk=bytes(range(1, 33)))
TEXT_PORT = portnums_pb2.PortNum.TEXT_MESSAGE_APP
RoutingError = mesh_pb2.Routing.Error


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    with Mesh(clock=Clock(speed=SPEED), seed=7) as simulated:
        yield simulated


def handhelds(members: list[Any]) -> list[VirtualHandheld]:
    assert all(isinstance(m, VirtualHandheld) for m in members)
    return members


def radios(members: list[Any]) -> list[SimulatedRadio]:
    assert all(isinstance(m, SimulatedRadio) for m in members)
    return members


# -- flooding ---------------------------------------------------------------------------------


def test_hop_limit_3_floods_three_relays_far_and_no_further(mesh: Mesh) -> None:
    nodes = handhelds(mesh.add_line(6))
    nodes[0].send_text("soup at the hall", hop_limit=3)
    mesh.wait_idle()

    hops = [[t.hops_away for t in node.inbox] for node in nodes]
    # the node 4 links away hears the last relay (hop_limit 0); the fifth hears nothing
    assert hops == [[], [0], [1], [2], [3], []]
    assert [r.hop_limit for r in mesh.log] == [3, 2, 1, 0]
    assert [r.kind for r in mesh.log] == ["origin", "relay", "relay", "relay"]


def test_hop_limit_0_reaches_direct_neighbours_only(mesh: Mesh) -> None:
    first, second, third = handhelds(mesh.add_line(3))
    first.send_text("just you", hop_limit=0)
    mesh.wait_idle()
    assert [t.text for t in second.inbox] == ["just you"]
    assert third.inbox == []
    assert len(mesh.log) == 1


def test_a_node_hearing_two_relays_shows_the_text_once() -> None:
    # A diamond: both middle nodes relay (they cannot hear each other) with hop_limit 0, so the
    # bottom hears both and relays neither: no relay of its own cancels theirs.
    with Mesh(clock=Clock(speed=SPEED), seed=7, collisions=False) as mesh:
        top, left, right, bottom = handhelds([mesh.add_handheld() for _ in range(4)])
        for a, b in [(top, left), (top, right), (left, bottom), (right, bottom)]:
            mesh.link(a, b)
        top.send_text("once only", hop_limit=1)
        mesh.wait_idle()

        assert [t.text for t in bottom.inbox] == ["once only"]
        stats = mesh.node_stats(bottom)
        assert stats.received == 1
        assert stats.duplicates >= 1
        assert mesh.node_stats(left).relayed == mesh.node_stats(right).relayed == 1


def test_hearing_a_neighbour_relay_first_cancels_ones_own(mesh: Mesh) -> None:
    origin, *others = handhelds(mesh.add_full(4))
    origin.send_text("everyone hears everyone")
    mesh.wait_idle()

    assert all([t.text for t in node.inbox] == ["everyone hears everyone"] for node in others)
    stats = mesh.stats().nodes
    assert sum(stats[n.node_num].relayed for n in others) == 1
    assert sum(stats[n.node_num].relays_cancelled for n in others) == 2
    assert [r.kind for r in mesh.log] == ["origin", "relay"]


def test_the_farthest_neighbour_rebroadcasts_first(mesh: Mesh) -> None:
    # The firmware weighs the rebroadcast delay by SNR: a weak signal means a far node, whose
    # rebroadcast covers the most new ground, so it goes first and the near one stands down.
    origin, near, far = handhelds([mesh.add_handheld() for _ in range(3)])
    mesh.link(origin, near, snr=10.0)
    mesh.link(origin, far, snr=-15.0)
    mesh.link(near, far)
    origin.send_text("who repeats me?")
    mesh.wait_idle()
    assert [(r.sender, r.kind) for r in mesh.log] == [
        (origin.node_num, "origin"),
        (far.node_num, "relay"),
    ]
    assert mesh.node_stats(near).relays_cancelled == 1


def test_frames_from_hidden_terminals_collide_at_the_node_between_them(mesh: Mesh) -> None:
    left, middle, right = handhelds(mesh.add_line(3))
    long_text = "x" * 200  # 1.9 s on air: far longer than the senders' random start delays
    left.send_text(long_text)
    right.send_text(long_text)
    mesh.wait_idle()

    assert middle.inbox == []
    assert mesh.node_stats(middle).collisions == 2
    assert len(mesh.log) == 2  # nothing was heard, so nothing was relayed


# -- loss and partitions ----------------------------------------------------------------------


def received_under_loss(seed: int, loss: float, packets: int) -> set[str]:
    with Mesh(clock=Clock(speed=SPEED), seed=seed) as mesh:
        sender, receiver = handhelds([mesh.add_handheld(), mesh.add_handheld()])
        mesh.link(sender, receiver, loss=loss)
        for batch in range(0, packets, 10):
            for n in range(batch, batch + 10):
                sender.send_text(f"n{n}", hop_limit=0)
            mesh.wait_idle()
        assert mesh.node_stats(receiver).lost + mesh.node_stats(receiver).received == packets
        return {t.text for t in receiver.inbox}


def test_link_loss_is_roughly_the_configured_probability_and_replays() -> None:
    first = received_under_loss(seed=11, loss=0.3, packets=200)
    # which packets are lost replays exactly; their order depends on when the test sent them
    assert 0.62 <= len(first) / 200 <= 0.78
    assert received_under_loss(seed=11, loss=0.3, packets=200) == first
    assert received_under_loss(seed=12, loss=0.3, packets=200) != first


def test_a_partition_blocks_and_healing_restores(mesh: Mesh) -> None:
    a, b, c = handhelds(mesh.add_line(3))
    mesh.unlink(b, c)
    a.send_text("before")
    mesh.wait_idle()
    assert [t.text for t in b.inbox] == ["before"]
    assert c.inbox == []

    mesh.link(b, c)
    a.send_text("after")
    mesh.wait_idle()
    assert [t.text for t in c.inbox] == ["after"]


def test_a_switched_off_radio_hears_and_sends_nothing(mesh: Mesh) -> None:
    a, b, c = handhelds(mesh.add_line(3))
    mesh.set_online(b, False)
    a.send_text("anyone?")
    b.send_text("me!")
    mesh.wait_idle()
    assert b.inbox == [] and c.inbox == [] and a.inbox == []
    assert mesh.node_stats(b).dropped_offline == 1
    assert [r.sender for r in mesh.log] == [a.node_num]

    mesh.set_online(b, True)
    a.send_text("back?")
    mesh.wait_idle()
    assert [t.text for t in c.inbox] == ["back?"]


def test_random_geometric_meshes_replay_the_same_transmissions() -> None:
    def run() -> list[tuple[int, int, str, int]]:
        with Mesh(clock=Clock(speed=SPEED), seed=3) as mesh:
            nodes = handhelds(mesh.add_random_geometric(12, radius=0.45, loss=0.1))
            for i, sender in enumerate(nodes[:4]):
                sender.send_text(f"hello {i}")
                mesh.wait_idle()
            return [(r.sender, r.packet_id, r.kind, r.hop_limit) for r in mesh.log]

    first = run()
    assert len(first) > 4  # something was relayed
    assert run() == first


# -- channels ---------------------------------------------------------------------------------


def test_a_private_channel_is_relayed_by_a_radio_that_cannot_read_it(mesh: Mesh) -> None:
    public = ChannelSpec()
    alice = mesh.add_handheld(profile=RadioProfile(channels=(public, PRIVATE)))
    relay = mesh.add_handheld(profile=RadioProfile(channels=(public,)))
    bob = mesh.add_handheld(profile=RadioProfile(channels=(public, OTHER, PRIVATE)))
    mesh.link(alice, relay)
    mesh.link(relay, bob)

    alice.send_text("club night", channel=1)
    mesh.wait_idle()

    assert relay.inbox == []
    [heard] = bob.inbox
    assert (heard.text, heard.channel, heard.hops_away) == ("club night", 2, 1)
    assert [(r.sender, r.kind) for r in mesh.log] == [
        (alice.node_num, "origin"),
        (relay.node_num, "relay"),
        (bob.node_num, "relay"),
    ]


# -- ACKs -------------------------------------------------------------------------------------


def test_a_direct_message_is_acknowledged_by_the_destination(mesh: Mesh) -> None:
    alice, bob = handhelds(mesh.add_line(2))
    packet_id = alice.send_text("are you there?", to=bob.node_num)
    ack = alice.wait_for_ack(packet_id)
    assert ack.ok
    assert ack.sender == bob.node_num
    [heard] = bob.inbox
    assert heard.direct and heard.text == "are you there?"
    mesh.wait_idle()
    # A text DM's ACK wants an ACK itself (2.7.12+): alice answers it with a 0-hop ACK.
    assert [(r.sender, r.kind, r.hop_limit) for r in mesh.log] == [
        (alice.node_num, "origin", 3),
        (bob.node_num, "ack", 2),
        (alice.node_num, "ack", 0),
    ]
    assert {r.port for r in mesh.log[1:]} == {portnums_pb2.PortNum.ROUTING_APP}
    assert [r.sender for r in bob.routing] == [alice.node_num]  # bob's ACK got through


def test_no_ack_means_three_attempts_then_a_nak(mesh: Mesh) -> None:
    alice, bob = handhelds(mesh.add_line(2))
    mesh.set_online(bob, False)
    packet_id = alice.send_text("hello?", to=bob.node_num)

    nak = alice.wait_for_ack(packet_id)
    assert nak.error_reason == RoutingError.MAX_RETRANSMIT
    assert nak.sender == alice.node_num
    attempts = [r for r in mesh.log if r.packet_id == packet_id]
    assert [r.kind for r in attempts] == ["origin", "retransmit", "retransmit"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert all(gap > 5.0 for gap in gaps)  # the firmware waits for an ACK before retrying
    assert mesh.node_stats(alice).naks == 1


def test_a_relay_repeating_a_dm_is_only_an_implicit_ack(mesh: Mesh) -> None:
    alice, relay, bob = handhelds(mesh.add_line(3))
    mesh.set_online(bob, False)
    packet_id = alice.send_text("via the relay", to=bob.node_num)
    implicit = alice.wait_for_ack(packet_id, implicit=True)
    assert implicit.ok and implicit.sender == alice.node_num
    mesh.wait_idle()
    assert [r.sender for r in alice.routing] == [alice.node_num]  # no ACK from bob, no NAK
    assert relay.inbox == []  # a DM for someone else is relayed, not shown


def test_a_lost_ack_is_answered_again_when_the_sender_retransmits() -> None:
    # With this seed the lossy link drops bob's first ACK and carries everything else.
    with Mesh(clock=Clock(speed=SPEED), seed=56) as mesh:
        alice, bob = handhelds(mesh.add_line(2, loss=0.5))
        packet_id = alice.send_text("ack me", to=bob.node_num)
        assert alice.wait_for_ack(packet_id).sender == bob.node_num
        mesh.wait_idle()
        assert [(r.sender, r.kind) for r in mesh.log] == [
            (alice.node_num, "origin"),
            (bob.node_num, "ack"),  # lost
            (alice.node_num, "retransmit"),
            (bob.node_num, "retransmit"),  # bob's ACK wants an ACK: unanswered, it goes again
            (bob.node_num, "ack"),  # and the retransmitted text is answered anew
            (alice.node_num, "ack"),  # alice's 0-hop ACK of each
            (alice.node_num, "ack"),
        ]
        assert [t.text for t in bob.inbox] == ["ack me"]  # the retransmission is not shown again
        assert mesh.node_stats(bob).duplicates == 1


# -- airtime and duty cycle -------------------------------------------------------------------


def test_every_transmission_is_booked_as_airtime_and_duty_cycle(mesh: Mesh) -> None:
    a, b, c = handhelds(mesh.add_line(3))
    a.send_text("x" * 200, hop_limit=1)
    mesh.wait_idle()
    # 16-byte header, 205 bytes of Data and the 2-byte bitfield the originator adds
    full = lora.airtime_seconds(223, mesh.preset)
    assert [r.payload_bytes for r in mesh.log] == [223, 223]
    assert [(r.sender, r.airtime) for r in mesh.log] == [
        (a.node_num, pytest.approx(full)),
        (b.node_num, pytest.approx(full)),
    ]
    stats = mesh.stats()
    assert stats.total_airtime == pytest.approx(2 * full)
    assert (stats.transmissions, stats.delivered, stats.lost) == (2, 2, 0)
    assert stats.airtime_by_port == {TEXT_PORT: pytest.approx(2 * full)}
    relay = stats.nodes[b.node_num]
    assert relay.airtime_tx == pytest.approx(full)
    assert relay.air_util_tx_percent == pytest.approx(100 * full / 3600)
    # b heard a's frame and sent its own relay, both inside the last minute
    assert relay.channel_utilization_percent == pytest.approx(100 * 2 * full / 60)
    assert stats.nodes[c.node_num].airtime_tx == 0.0
    assert stats.nodes[c.node_num].channel_utilization_percent == pytest.approx(100 * full / 60)


def test_a_radio_over_its_duty_cycle_refuses_to_send() -> None:
    # 1 % of an hour is 36 s; a 200-byte text on LongSlow is 12.7 s, so the fourth is refused
    with Mesh(clock=Clock(speed=SPEED), preset=lora.LONG_SLOW, duty_cycle_percent=1.0) as mesh:
        sender, listener = handhelds(mesh.add_line(2))
        ids = []
        for _ in range(4):
            ids.append(sender.send_text("x" * 200, hop_limit=0))
            mesh.wait_idle()

        per_packet = lora.airtime_seconds(223, lora.LONG_SLOW)
        assert len(listener.inbox) == 3
        stats = mesh.node_stats(sender)
        assert stats.dropped_duty_cycle == 1
        assert stats.airtime_tx_last_hour == pytest.approx(3 * per_packet)
        assert stats.air_util_tx_percent == pytest.approx(100 * 3 * per_packet / 3600)
        assert stats.air_util_tx_percent > 1.0
        [refusal] = sender.routing
        assert (refusal.request_id, refusal.error_reason) == (
            ids[3],
            RoutingError.DUTY_CYCLE_LIMIT,
        )


def test_the_duty_cycle_is_a_sliding_hour() -> None:
    # On a very fast clock an hour passes in under a second of the test's time.
    clock = Clock(speed=20_000)
    with Mesh(clock=clock, preset=lora.LONG_SLOW, duty_cycle_percent=0.5) as mesh:
        sender, listener = handhelds(mesh.add_line(2))
        for _ in range(3):  # 18 s allowed; the third 12.7 s packet is refused
            sender.send_text("x" * 200, hop_limit=0)
            mesh.wait_idle()
        assert mesh.node_stats(sender).dropped_duty_cycle == 1

        first = mesh.log[0].at
        clock.sleep(first + 3600 - mesh.now())  # the first packet leaves the window
        sender.send_text("x" * 200, hop_limit=0)
        mesh.wait_idle()
        assert len(listener.inbox) == 3
        assert mesh.node_stats(sender).dropped_duty_cycle == 1


# -- real meshtastic clients on pty radios ----------------------------------------------------


class Heard:
    """Packets one interface published on one pypubsub topic.

    pypubsub holds listeners weakly: this object keeps its bound method alive until `close`.
    """

    def __init__(self, topic: str, interface: SerialInterface) -> None:
        self.topic = topic
        self.interface = interface
        self.packets: list[dict[str, Any]] = []
        self._state = threading.Condition()
        pub.subscribe(self.on_packet, topic)

    def on_packet(self, packet: dict[str, Any], interface: Any) -> None:
        if interface is not self.interface:
            return
        with self._state:
            self.packets.append(packet)
            self._state.notify_all()

    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,
        *,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first packet from index `after` on that matches."""
        with self._state:
            if not self._state.wait_for(lambda: any(map(predicate, self.packets[after:])), timeout):
                raise TimeoutError(f"nothing matching on {self.topic} in {timeout} s")
            return next(p for p in self.packets[after:] if predicate(p))

    def close(self) -> None:
        pub.unsubscribe(self.on_packet, self.topic)


def test_two_real_clients_talk_through_a_relay() -> None:
    with Mesh(clock=Clock(speed=100), seed=2, telemetry_interval=None) as mesh:
        mesh.add_line(["radio", "handheld", "radio"])
        radio_a, radio_b = mesh.radios
        [relay] = mesh.handhelds
        client_a = SerialInterface(devPath=radio_a.port)
        client_b = SerialInterface(devPath=radio_b.port)
        texts_b = Heard("meshtastic.receive.text", client_b)
        routing_a = Heard("meshtastic.receive.routing", client_a)
        try:
            assert relay.node_num in client_a.nodesByNum  # the mesh's members are known
            sent = client_a.sendText("hello from a", destinationId=radio_b.node_num, wantAck=True)

            text = texts_b.wait_for(lambda p: p["decoded"]["payload"] == b"hello from a")
            assert text["from"] == radio_a.node_num
            assert text["to"] == radio_b.node_num
            assert text["hopStart"] - text.get("hopLimit", 0) == 1  # one relay on the way

            ack = routing_a.wait_for(
                lambda p: p["decoded"].get("requestId") == sent.id and p["from"] == radio_b.node_num
            )
            assert ack["decoded"]["routing"]["errorReason"] == "NONE"
            assert relay.inbox == []
        finally:
            texts_b.close()
            routing_a.close()
            client_a.close()
            client_b.close()


def test_telemetry_reports_airtime_to_a_real_client() -> None:
    # reports every 20 simulated seconds, so the traffic is still inside the last minute
    with Mesh(clock=Clock(speed=100), seed=4, telemetry_interval=20.0) as mesh:
        radio, neighbour = mesh.add_line(["radio", "handheld"])
        assert isinstance(radio, SimulatedRadio) and isinstance(neighbour, VirtualHandheld)
        client = SerialInterface(devPath=radio.port)
        telemetry = Heard("meshtastic.receive.telemetry", client)
        try:
            client.sendText("hello neighbour")
            neighbour.wait_for_text()
            mesh.wait_idle()
            reports_before = len(telemetry.packets)
            sent = mesh.node_stats(radio).airtime_tx
            on_air = mesh.stats().total_airtime  # its own packet and the neighbour's relay
            assert 0 < sent < on_air

            report = telemetry.wait_for(lambda _: True, after=reports_before)
            metrics = report["decoded"]["telemetry"]["deviceMetrics"]
            assert report["from"] == radio.node_num
            assert metrics["airUtilTx"] == pytest.approx(100 * sent / 3600, rel=1e-3)
            assert metrics["channelUtilization"] == pytest.approx(100 * on_air / 60, rel=1e-3)
            assert mesh.node_stats(radio).telemetry_reports >= 1
        finally:
            telemetry.close()
            client.close()
