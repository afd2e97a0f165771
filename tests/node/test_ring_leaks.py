"""Nothing crosses rings: a private ring's bulletins stay with the boards and people that serve it.

Boards A and B serve the public ring and the garden ring; board C serves only public, once with
the garden channel on its radio (`serve = false`) and once without it. Real daemons on the real
meshtastic client over the simulated mesh, at `SPEED` times real time.
"""

from __future__ import annotations

import itertools

import pytest

from board.config import MeshboardConfig, RingSpec
from node.demo.neighbourhood import BoardNode, Neighbourhood, ask
from node.sim.mesh import Mesh
from node.sim.radio import ChannelSpec, RadioProfile
from tests.node.meshes import post

CONVERGE = 30.0  # real seconds
PUBLIC = ChannelSpec()
GARDEN = ChannelSpec(name="garden", psk=bytes(range(32)))
BOTH = RadioProfile(channels=(PUBLIC, GARDEN))
PUBLIC_ONLY = RadioProfile(channels=(PUBLIC,))
SECRET = "Garden secret supper"
BOTH_RINGS = MeshboardConfig(rings=(RingSpec("public", 0), RingSpec("garden", 1)))
PUBLIC_BOARD = MeshboardConfig(rings=(RingSpec("public", 0), RingSpec("garden", 1, serve=False)))


def garden(hood: Neighbourhood, node: BoardNode) -> tuple[set[str], set[str]]:
    """Ids of the garden bulletins and of the garden tombstones in `node`'s database."""
    assert node.store is not None
    now = hood.mesh.clock.now()
    bulletins = {b.id for b in node.store.active(now, ring=1)}
    tombstones = {t.bulletin_id for t in node.store.tombstones(1, now)}
    return bulletins, tombstones


@pytest.mark.parametrize("c_has_garden_channel", [True, False], ids=["unserved", "no-channel"])
def test_a_garden_bulletin_stays_in_the_garden(
    mesh: Mesh, hood: Neighbourhood, c_has_garden_channel: bool
) -> None:
    radios = [
        mesh.add_radio(profile=BOTH),
        mesh.add_radio(profile=BOTH),
        mesh.add_radio(profile=BOTH if c_has_garden_channel else PUBLIC_ONLY),
    ]
    for x, y in itertools.combinations(radios, 2):
        mesh.link(x, y)
    a = hood.attach(radios[0], "A", config=BOTH_RINGS)
    b = hood.attach(radios[1], "B", config=BOTH_RINGS)
    c = hood.attach(radios[2], "C", config=PUBLIC_BOARD)
    gardener = mesh.add_handheld(profile=BOTH)
    passer_by = mesh.add_handheld(profile=PUBLIC_ONLY)
    for person in (gardener, passer_by):
        mesh.link(person, a.radio)
        mesh.link(person, c.radio)

    # A gardener posts at C, which does not serve the garden: no answer, nothing stored. The
    # answer to a public `help` sent after it shows C has read whatever reached it first.
    sent = gardener.send_text(f"post meal {SECRET} at C", to=c.radio.node_num, channel=1)
    gardener.wait_for_ack(sent, timeout=CONVERGE, implicit=True)
    assert ask(gardener, c, "help", channel=0).startswith("DM me")
    assert not [t for t in gardener.inbox if t.sender == c.radio.node_num and t.channel == 1]

    public_ref = post(passer_by, c, "post notice Public hello", channel=0)
    ref = post(gardener, a, f"post meal {SECRET}", channel=1)
    secret, _ = garden(hood, a)
    assert len(secret) == 1
    assert hood.wait_until(lambda: garden(hood, b)[0] == secret, CONVERGE)
    assert hood.wait_until(lambda: bool(hood.holdings(a, ring=0)), CONVERGE)

    # The passer-by asks A, which holds the garden bulletin, on the public channel.
    listing = ask(passer_by, a, "list", channel=0)
    assert public_ref in listing and SECRET not in listing
    for command in (f"read {ref}", ref):
        assert ask(passer_by, a, command, channel=0) == f"no bulletin {ref}"
    assert ask(passer_by, c, "list", channel=0).startswith(public_ref)

    assert ask(gardener, a, f"del {ref}", channel=1) == f"deleted {ref}"
    assert hood.wait_until(lambda: garden(hood, b) == (set(), secret), CONVERGE)

    assert garden(hood, c) == (set(), set())
    assert c.daemon is not None
    if c_has_garden_channel:  # C heard the garden's board plane, and dropped every packet of it
        assert c.daemon.sync_stats.dropped_wrong_ring > 0
    else:  # C's radio could not decode a garden packet, so none reached its daemon
        assert c.daemon.sync_stats.dropped_wrong_ring == 0
    assert all(SECRET not in t.text for t in passer_by.inbox)
    words = SECRET.encode()
    for node in (a, b, c):
        sent_public = [t.packet for t in node.radio.transmissions if t.packet.channel == 0]
        assert sent_public and all(words not in p.decoded.payload for p in sent_public)
    on_air = [r for r in mesh.log if words in r.payload]
    assert on_air, "the garden bulletin never went on the air: the test proves nothing"
    assert {r.channel for r in on_air} == {(GARDEN.name, GARDEN.psk)}
