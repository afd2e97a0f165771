"""Nothing crosses rings: a private ring's bulletins stay with the boards and people that serve it.

Boards A and B serve the public ring and the garden ring; board C serves only public, once with
the garden channel on its radio (`serve = false`) and once without it. Real daemons on the real
meshtastic client over the simulated mesh, at `SPEED` times real time.
"""

from __future__ import annotations

import pytest

from board.config import MeshboardConfig, RingSpec
from node.demo.neighbourhood import BoardNode, Neighbourhood
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import ChannelSpec, RadioProfile
from node.sim.router import PKI_KEY
from tests.node.meshes import answer as ask

CONVERGE = 30.0  # real seconds
PUBLIC = ChannelSpec()
GARDEN = ChannelSpec(name="garden", psk=bytes(range(32)))
BOTH = RadioProfile(channels=(PUBLIC, GARDEN))
PUBLIC_ONLY = RadioProfile(channels=(PUBLIC,))
SECRET = "Garden secret supper"
BOTH_RINGS = MeshboardConfig(rings=(RingSpec("public", 0), RingSpec("garden", 1)))
PUBLIC_BOARD = MeshboardConfig(rings=(RingSpec("public", 0), RingSpec("garden", 1, serve=False)))


def post(person: VirtualHandheld, node: BoardNode, text: str, channel: int = 0) -> str:
    """Post as `person` at `node`; returns the `#ref` the board's `ok #ref` reply gave."""
    reply = ask(person, node, text, channel)
    assert reply.startswith("ok #"), reply
    return reply.split()[1]


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
    mesh.link(radios[0], radios[1])  # C joins them below
    a = hood.attach(radios[0], "A", config=BOTH_RINGS)
    b = hood.attach(radios[1], "B", config=BOTH_RINGS)
    c = hood.attach(radios[2], "C", config=PUBLIC_BOARD)
    gardener = mesh.add_handheld(profile=BOTH)
    passer_by = mesh.add_handheld(profile=PUBLIC_ONLY)
    for person in (gardener, passer_by):
        mesh.link(person, c.radio)

    # A gardener by C, out of A's and B's reach, posts in the garden: the `!` command on the
    # garden channel (a direct message would reach C's public ring: PKI direct messages arrive
    # on channel 0). C does not serve the garden: no answer, nothing stored. C's radio repeats
    # the broadcast, so it reached C (the gardener's firmware counts that as delivered), and
    # the answer to a public `help` sent after it shows C has read whatever reached it first.
    sent = gardener.send_text(f"!post meal {SECRET} at C", channel=1, want_ack=True)
    assert gardener.wait_for_ack(sent, timeout=CONVERGE, implicit=True).ok
    helped = ask(gardener, c, "help", channel=0)
    assert helped.startswith("DM me")
    assert [t.text for t in gardener.inbox if t.sender == c.radio.node_num] == [helped]
    assert c.store is not None and c.store.count() == 0

    for x, y in ((a.radio, c.radio), (b.radio, c.radio), (gardener, a.radio), (passer_by, a.radio)):
        mesh.link(x, y)
    public_ref = post(passer_by, c, "post notice Public hello", channel=0)
    ref = post(gardener, a, f"post meal {SECRET}", channel=1)
    secret, _ = garden(hood, a)
    assert len(secret) == 1
    assert hood.wait_until(lambda: garden(hood, b)[0] == secret, CONVERGE), (
        f"garden bulletins: {sorted(garden(hood, b)[0])} at B, {sorted(secret)} at A"
    )
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
    # On the garden's key, or a board's answer to the gardener: a PKI direct message, which
    # only the gardener's radio can read (its channel index on the board's side was 1).
    in_the_garden = {(GARDEN.name, GARDEN.psk)}
    assert {r.channel for r in on_air if r.to != gardener.node_num} == in_the_garden
    answers = [r for r in on_air if r.to == gardener.node_num]
    assert answers and {r.channel for r in answers} == {PKI_KEY}
    assert {r.origin for r in answers} <= {a.radio.node_num, b.radio.node_num}
