"""Ways to add several nodes to a `Mesh` and link them in one go (a mixin of `Mesh`)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import Protocol

from node.sim.handheld import VirtualHandheld
from node.sim.radio import SimulatedRadio
from node.sim.station import DEFAULT_SNR, Kind

Member = SimulatedRadio | VirtualHandheld


class _Mesh(Protocol):
    seed: int
    positions: dict[int, tuple[float, float]]

    def add_radio(self) -> SimulatedRadio: ...

    def add_handheld(self) -> VirtualHandheld: ...

    def link(
        self, a: Member | int, b: Member | int, loss: float = 0.0, snr: float = DEFAULT_SNR
    ) -> None: ...


class Builders:
    def add_full(self: _Mesh, nodes: int | Sequence[Kind], *, loss: float = 0.0) -> list[Member]:
        """New nodes that all hear each other; `nodes` is a count of handhelds or a list of
        kinds ("radio", "handheld"). Returns them in order."""
        members = _populate(self, nodes)
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                self.link(a, b, loss)
        return members

    def add_line(self: _Mesh, nodes: int | Sequence[Kind], *, loss: float = 0.0) -> list[Member]:
        """New nodes in a chain: each hears only the one before and the one after it."""
        members = _populate(self, nodes)
        for a, b in itertools.pairwise(members):
            self.link(a, b, loss)
        return members

    def add_random_geometric(
        self: _Mesh, nodes: int | Sequence[Kind], radius: float, *, loss: float = 0.0
    ) -> list[Member]:
        """New nodes at random places in a unit square (from the mesh's seed), linked when
        closer than `radius`.

        A link's SNR falls linearly from 10 dB (same place) to -15 dB (at `radius`). Nothing
        guarantees the graph is connected.
        """
        members = _populate(self, nodes)
        place = random.Random(f"{self.seed}:positions:{len(self.positions)}")
        for member in members:
            self.positions[member.node_num] = (place.random(), place.random())
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                distance = math.dist(self.positions[a.node_num], self.positions[b.node_num])
                if distance <= radius:
                    self.link(a, b, loss, snr=10.0 - 25.0 * distance / radius)
        return members


def _populate(mesh: _Mesh, nodes: int | Sequence[Kind]) -> list[Member]:
    kinds: Sequence[Kind] = ["handheld"] * nodes if isinstance(nodes, int) else nodes
    members: list[Member] = []
    for kind in kinds:
        if kind == "radio":
            members.append(mesh.add_radio())
        elif kind == "handheld":
            members.append(mesh.add_handheld())
        else:
            raise ValueError(f"unknown node kind {kind!r}")
    return members
