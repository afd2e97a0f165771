"""Scaffolding for the tests that run real board daemons on one simulated mesh.

The `mesh` and `hood` fixtures in this directory's conftest build on these; a test module picks
its mesh's seed with `MESH_SEED`, its clock's start with `MESH_START` and the rings its boards
sync with `SYNC_RINGS`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from board.signing import BoardKey
from node.demo.neighbourhood import SENDS, BoardNode, Neighbourhood, ask
from node.sim.handheld import HeardText, VirtualHandheld
from node.sim.mesh import Member
from node.sim.radio import ChannelSpec, RadioProfile, SimulatedRadio

#: Simulated seconds per real second: Trickle intervals and batch delays pass in moments.
SPEED = 100.0
PUBLIC = ChannelSpec()
INNER = ChannelSpec(name="inner", psk=bytes(range(16)))
TWO_RINGS = RadioProfile(channels=(PUBLIC, INNER))
#: Real seconds (about 17 simulated minutes at SPEED 100) a person waits for an answer before
#: sending again.
PATIENCE = 10.0


def answer(
    person: VirtualHandheld,
    node: BoardNode,
    text: str,
    channel: int = 0,
    *,
    accept: Callable[[HeardText], bool] = lambda _: True,
    hop_limit: int | None = 0,
) -> str:
    """The board's next reply to `text` (that `accept` takes), sent as a person sends it.

    On channel 0 a direct message (PKI: it reaches the board on channel 0 whatever ring it
    means); on a private ring's channel the `!` command broadcast there, with want_ack as the
    apps send a channel message, so the person's firmware sends it again until it hears a radio
    repeat it. The person sends it again when the app reports it undelivered (a NAK), and when
    no answer comes within PATIENCE: a firmware that heard a relay repeat the packet counts it
    delivered (an implicit ACK), though the board may have lost it to a collision.
    (`neighbourhood.ask` waits for a NAK that an implicit ACK never brings.)
    """
    before = len(person.inbox)
    for _ in range(SENDS):
        if channel == 0:
            packet_id = person.send_text(text, to=node.radio.node_num)
        else:
            # Hop limit 0 by default: heard by the board beside the person only. A `!` command
            # relayed to a second board of the ring is carried out there too (a second
            # bulletin: each board stamps its own time), a known bug these tests do not cover.
            packet_id = person.send_text(
                f"!{text}", channel=channel, want_ack=True, hop_limit=hop_limit
            )
        try:
            heard = person.wait_for_answer(
                packet_id,
                lambda t: (
                    t.sender == node.radio.node_num
                    and person.inbox.index(t) >= before
                    and accept(t)
                ),
                timeout=PATIENCE,
            )
        except TimeoutError:
            continue
        if heard is not None:
            return heard.text
    raise AssertionError(f"{person.node_id}: no answer to {text!r} after {SENDS} sends")


def post(person: VirtualHandheld, node: BoardNode, text: str, channel: int = 0) -> str:
    """Post as `person` at `node`; returns the `#ref` the board's `ok #ref` reply gave."""
    reply = ask(person, node, text, channel=channel)
    assert reply.startswith("ok #"), reply
    return reply.split()[1]


def boards_on(hood: Neighbourhood, members: Sequence[Member]) -> list[BoardNode]:
    """A board daemon on each simulated radio among `members` (handhelds are left alone)."""
    return [hood.attach(radio) for radio in members if isinstance(radio, SimulatedRadio)]


def board_line(
    hood: Neighbourhood,
    count: int,
    profile: RadioProfile | None = None,
    keys: Sequence[BoardKey] | None = None,
) -> list[BoardNode]:
    """`count` boards in a line on `hood`'s mesh, each radio with `profile` (and key, if given)."""
    radios = [hood.mesh.add_radio(profile=profile) for _ in range(count)]
    for a, b in itertools.pairwise(radios):
        hood.mesh.link(a, b)
    keyed: Sequence[BoardKey | None] = keys if keys is not None else [None] * count
    return [hood.attach(radio, key=key) for radio, key in zip(radios, keyed, strict=True)]
