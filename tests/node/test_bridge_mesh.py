"""Two neighbourhoods out of radio range, joined through a real Mosquitto.

Each is its own simulated LoRa mesh of two board daemons on pty radios, with the real
meshtastic client; one board of each is bridged (`bridge = "mqtt://…"` on a ring). A bulletin
a handheld posts at the unbridged board of one mesh is listed by a handheld at the unbridged
board of the other. A subscriber to `#` on the broker sees every message and finds neither the
text nor the ring's name. What a ring does not bridge never reaches the broker, and a private
ring reaches only boards with its key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from board.config import MeshboardConfig, parse_config
from board.handheld.commands import BoardConfig
from board.wire.envelope import RingSecrets, seal
from node.bridge.bridge import topic_of
from node.clock import Clock
from node.demo.neighbourhood import BoardNode, Neighbourhood
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import ChannelSpec, RadioProfile
from tests.node.meshes import PUBLIC, SPEED, answer, post
from tests.node.mosquitto import Mosquitto, mosquitto_or_skip

CONVERGE = 60.0  # real seconds
GARDEN = ChannelSpec(name="garden", psk=bytes(range(32)))
OTHER_GARDEN = ChannelSpec(name="garden", psk=bytes(range(1, 33)))  # another street's key
#: The public ring's topic: channel 0 unnamed on LongFast, the default key (`AQ==`).
PUBLIC_TOPIC = topic_of(RingSecrets.derive("LongFast", b"\x01"))


class Eavesdropper:
    """A client of the broker subscribed to `#`: everything anyone publishes."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        client.on_subscribe = lambda *_: self._ready.set()
        client.on_message = self._heard
        client.connect("127.0.0.1", port)
        client.loop_start()
        self._client = client
        assert self._ready.wait(10), "the eavesdropper could not subscribe"

    def _heard(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(10)

    def seen(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto_or_skip()
    with Mosquitto(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def eavesdropper(broker: Mosquitto) -> Iterator[Eavesdropper]:
    listening = Eavesdropper(broker.port)
    yield listening
    listening.close()


@pytest.fixture
def meshes(tmp_path: Path) -> Iterator[list[Neighbourhood]]:
    hoods: list[Neighbourhood] = []
    clock = Clock(speed=SPEED)  # one time for all: boards in different places agree on it
    for n in (1, 2, 3):
        mesh = Mesh(clock=clock, seed=n)
        workdir = tmp_path / f"mesh-{n}"
        workdir.mkdir()
        hoods.append(Neighbourhood(mesh, workdir, board=BoardConfig()))
    yield hoods
    for hood in hoods:
        hood.close()
        hood.mesh.close()


def rings(url: str | None, *, garden_bridged: bool = True) -> MeshboardConfig:
    """The public ring and the garden, bridged through `url` (None: neither is)."""
    public: dict[str, object] = {"name": "public", "channel": 0}
    garden: dict[str, object] = {"name": "garden", "channel": 1}
    if url is not None:
        public["bridge"] = url
        if garden_bridged:
            garden["bridge"] = url
    return parse_config({"ring": [public, garden]})


def street(
    hood: Neighbourhood, url: str, garden: ChannelSpec, *, garden_bridged: bool = True
) -> tuple[BoardNode, BoardNode, VirtualHandheld]:
    """A bridged board, an unbridged one in radio range of it, and a neighbour of the second.

    Node numbers differ between meshes, as real radios' do (each picks its own from its MAC):
    the broker knows a board by a client id made from it.
    """
    profile = RadioProfile(channels=(PUBLIC, garden))
    first = 0x10000000 * hood.mesh.seed + 1
    bridged_radio = hood.mesh.add_radio(first, profile=profile)
    far_radio = hood.mesh.add_radio(first + 1, profile=profile)
    hood.mesh.link(bridged_radio, far_radio)
    bridged = hood.attach(bridged_radio, config=rings(url, garden_bridged=garden_bridged))
    far = hood.attach(far_radio, config=rings(None))
    person = hood.mesh.add_handheld(first + 2, profile=RadioProfile(channels=(PUBLIC, garden)))
    hood.mesh.link(person, far_radio)
    return bridged, far, person


def held(hood: Neighbourhood, node: BoardNode, ring: int, text: str) -> bool:
    assert node.store is not None
    return any(b.text == text for b in node.store.active(hood.mesh.clock.now(), ring=ring))


def test_a_post_in_one_mesh_is_listed_at_the_far_board_of_the_other(
    broker: Mosquitto, eavesdropper: Eavesdropper, meshes: list[Neighbourhood]
) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    one, two = meshes[0], meshes[1]
    _, far_one, ana = street(one, url, GARDEN)
    _, far_two, ben = street(two, url, GARDEN)
    text = "Soup for everyone at Riverside hall"
    ref = post(ana, far_one, f"post meal sat 18:00 {text}")
    assert two.wait_until(lambda: held(two, far_two, 0, text), CONVERGE)
    listing = answer(ben, far_two, "list")
    assert ref in listing and "Soup for everyone" in listing

    # Everything on the broker is sealed, under topics that name no ring.
    seen = eavesdropper.seen()
    assert PUBLIC_TOPIC in {topic for topic, _ in seen}
    for topic, payload in seen:
        assert topic.startswith("meshboard/") and "public" not in topic and "garden" not in topic
        assert b"Riverside" not in payload and b"Soup" not in payload


def test_a_private_ring_crosses_only_to_boards_with_its_key(
    broker: Mosquitto, eavesdropper: Eavesdropper, meshes: list[Neighbourhood]
) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    one, two, three = meshes
    _, far_one, ana = street(one, url, GARDEN)
    _, far_two, _ = street(two, url, GARDEN)
    _, far_three, _ = street(three, url, OTHER_GARDEN)  # a garden of the same name, not ours
    text = "Seed swap behind the allotments"
    post(ana, far_one, f"post notice {text}", channel=1)
    assert two.wait_until(lambda: held(two, far_two, 1, text), CONVERGE)
    # The public ring still crosses to the third street, so its bridge is up: only the key
    # keeps the garden out.
    public = "Ladder to lend at number 4"
    post(ana, far_one, f"public post tool {public}")  # she is in the garden now: name the ring
    assert three.wait_until(lambda: held(three, far_three, 0, public), CONVERGE)
    assert not any(held(three, node, 1, text) for node in three.boards)
    assert all(b"allotments" not in payload for _, payload in eavesdropper.seen())
    garden_topic = topic_of(RingSecrets.derive("garden", GARDEN.psk, channel_index=1))
    other_topic = topic_of(RingSecrets.derive("garden", OTHER_GARDEN.psk, channel_index=1))
    assert {garden_topic, other_topic} <= {topic for topic, _ in eavesdropper.seen()}


def test_a_ring_without_a_bridge_never_touches_the_broker(
    broker: Mosquitto, eavesdropper: Eavesdropper, meshes: list[Neighbourhood]
) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    one, two = meshes[0], meshes[1]
    _, far_one, ana = street(one, url, GARDEN, garden_bridged=False)
    _, far_two, _ = street(two, url, GARDEN, garden_bridged=False)
    post(ana, far_one, "post notice Garden gate code changes on Monday", channel=1)
    public = "Bread oven lit on Sunday"
    post(ana, far_one, f"public post notice {public}")  # she is in the garden now
    assert two.wait_until(lambda: held(two, far_two, 0, public), CONVERGE)
    assert not any(held(two, node, 1, "Garden gate code changes on Monday") for node in two.boards)
    assert {topic for topic, _ in eavesdropper.seen()} == {PUBLIC_TOPIC}


def test_posts_made_while_the_broker_is_down_cross_once_it_is_back(
    broker: Mosquitto, meshes: list[Neighbourhood]
) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    one, two = meshes[0], meshes[1]
    _, far_one, ana = street(one, url, GARDEN)
    _, far_two, ben = street(two, url, GARDEN)
    first = "Choir practice moved to the chapel"
    post(ana, far_one, f"post notice {first}")
    assert two.wait_until(lambda: held(two, far_two, 0, first), CONVERGE)

    broker.stop()
    made_in_one = [f"Apples to share, crate {n}" for n in range(3)]
    made_in_two = [f"Pears to share, crate {n}" for n in range(2)]
    for text in made_in_one:
        post(ana, far_one, f"post food {text}")
    for text in made_in_two:
        post(ben, far_two, f"post food {text}")
    assert one.wait_until(  # every board of its own mesh has them, over the air
        lambda: all(held(one, node, 0, t) for node in one.boards for t in made_in_one), CONVERGE
    )
    broker.start()
    assert two.wait_until(
        lambda: all(held(two, node, 0, t) for node in two.boards for t in made_in_one), CONVERGE
    )
    assert one.wait_until(
        lambda: all(held(one, node, 0, t) for node in one.boards for t in made_in_two), CONVERGE
    )
    for hood in (one, two):  # each once, at every board
        for node in hood.boards:
            assert node.store is not None
            texts = [b.text for b in node.store.active(hood.mesh.clock.now(), ring=0)]
            assert sorted(texts) == sorted([first, *made_in_one, *made_in_two])


def test_what_does_not_open_under_the_rings_key_is_dropped_and_counted(
    broker: Mosquitto, eavesdropper: Eavesdropper, meshes: list[Neighbourhood]
) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    one, two = meshes[0], meshes[1]
    bridged, far_one, ana = street(one, url, GARDEN)
    _, far_two, _ = street(two, url, GARDEN)
    forger = RingSecrets.derive("LongFast", b"\x02")  # the right topic's name, another key
    for payload in (b"", b"\x01" + bytes(60), seal(forger, "!0badf00d", b"\x01\x02\x03")):
        eavesdropper.publish(PUBLIC_TOPIC, payload)
    assert bridged.daemon is not None
    daemon = bridged.daemon
    assert one.wait_until(
        lambda: daemon.health.snapshot().counters.get("broker_payloads_refused") == 3, CONVERGE
    )
    text = "Still crossing after the forgeries"
    post(ana, far_one, f"post notice {text}")
    assert two.wait_until(lambda: held(two, far_two, 0, text), CONVERGE)
