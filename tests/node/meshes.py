"""Scaffolding for the tests that run real board daemons on one simulated mesh.

The `mesh` and `hood` fixtures in this directory's conftest build on these; a test module picks
its mesh's seed with `MESH_SEED`, its clock's start with `MESH_START` and the rings its boards
sync with `SYNC_RINGS`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from board.signing import BoardKey
from node.demo.neighbourhood import BoardNode, Neighbourhood, ask
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Member
from node.sim.radio import ChannelSpec, RadioProfile, SimulatedRadio

#: Simulated seconds per real second: Trickle intervals and batch delays pass in moments.
SPEED = 100.0
PUBLIC = ChannelSpec()
INNER = ChannelSpec(name="inner", psk=bytes(range(16)))
TWO_RINGS = RadioProfile(channels=(PUBLIC, INNER))


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
