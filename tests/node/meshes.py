"""Scaffolding for the tests that run real board daemons on one simulated mesh.

The `mesh` and `hood` fixtures in this directory's conftest build on these; a test module picks
its mesh's seed with `MESH_SEED` and the rings its boards sync with `SYNC_RINGS`.
"""

from __future__ import annotations

from node.demo.neighbourhood import BoardNode, ask
from node.sim.handheld import VirtualHandheld
from node.sim.radio import ChannelSpec, RadioProfile

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
