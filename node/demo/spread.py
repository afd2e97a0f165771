"""How one bulletin spread through a simulated neighbourhood, recorded from what happened.

`meshboard demo --plot` and `bench/sync.py --plot` draw this record (`node/demo/plot.py`);
it is kept apart from the drawing so it can be checked without matplotlib, and so a plot can
be drawn from a hand-made record.

Every time is in simulated seconds of the mesh's clock (`Mesh.now()`). A board's arrival is the
`received_at` its own store wrote when it first stored the bulletin: whole seconds of the shared
clock, as the store keeps them, so an arrival lies at most one second before the moment the
board really stored it. The links and transmissions are the mesh's own: its link table and its
log of every frame put on the air.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlmodel import Session, select

from board.store.bulletins import Store
from board.store.tables import BulletinRow
from node.clock import Clock
from node.demo.neighbourhood import BoardNode, Neighbourhood
from node.link import BOARD_PORT
from node.sim.radio import node_id

logger = logging.getLogger(__name__)

NodeKind = Literal["board", "handheld"]


@dataclass(frozen=True)
class SpreadNode:
    name: str
    node_num: int
    kind: NodeKind
    position: tuple[float, float] | None = None  # where the mesh placed it, if it did


@dataclass(frozen=True)
class SpreadLink:
    """A radio link of the mesh: both ends hear each other, losing `loss` of the frames."""

    a: str
    b: str
    loss: float
    snr: float  # dB


@dataclass(frozen=True)
class SpreadTransmission:
    """One frame on the air, from the mesh's log."""

    at: float
    sender: str
    airtime: float
    board_plane: bool  # port 384 (board to board); False: texts, ACKs, routing
    kind: str  # origin, relay, retransmit or ack


@dataclass(frozen=True)
class SpreadRecord:
    """One bulletin's way through the mesh: who is where, who hears whom, who had it when."""

    ref: str  # the short reference people see, e.g. "#r55g"
    topology: str  # how the boards were placed, e.g. "line"
    loss: float  # the loss the boards' links were built with
    seed: int
    nodes: tuple[SpreadNode, ...]
    links: tuple[SpreadLink, ...]
    poster: str  # the handheld that posted
    origin: str  # the board that took the post
    sent_at: float  # when the poster's message went to its radio
    arrivals: Mapping[str, float | None]  # board -> when its store first held it; None: never
    transmissions: tuple[SpreadTransmission, ...]  # from `sent_at` to the end of the record

    @property
    def posted_at(self) -> float:
        """When the posting board stored the bulletin: time zero of the spread."""
        posted = self.arrivals[self.origin]
        if posted is None:
            raise ValueError(f"{self.origin} never stored the post")
        return posted

    @property
    def boards(self) -> tuple[SpreadNode, ...]:
        return tuple(n for n in self.nodes if n.kind == "board")

    def reached(self) -> list[tuple[str, float]]:
        """(board, seconds after the post) for every board that got it, earliest first."""
        posted = self.posted_at
        # Both are whole seconds of the store: round away the float error of the subtraction.
        times = [
            (name, round(at - posted, 6)) for name, at in self.arrivals.items() if at is not None
        ]
        return sorted(times, key=lambda item: (item[1], item[0]))


def arrival(node: BoardNode, bulletin_id: str, clock: Clock) -> float | None:
    """When `node`'s store first held the bulletin, in simulated seconds; None if it does not.

    Read from the row's received_at, which the store sets once when it inserts the bulletin
    and never again, so it says when the board got it, however late someone looks.
    """
    stored = _received_at(node, bulletin_id)
    if stored is None:
        return None
    return clock.seconds_at(datetime.fromtimestamp(stored, UTC))


def record_spread(
    hood: Neighbourhood,
    bulletin_id: str,
    *,
    ref: str,
    origin: BoardNode,
    people: Mapping[int, str],
    poster: int,
    sent_at: float,
    topology: str,
    loss: float,
) -> SpreadRecord:
    """What the mesh and the boards' stores say about `bulletin_id`, now.

    `people` names the handhelds by node number, `poster` is the one who posted and
    `sent_at` the mesh time its message was sent: transmissions from then on are kept.
    """
    mesh = hood.mesh
    boards = {b.radio.node_num: b.name for b in hood.boards}
    handhelds = {h.node_num: people.get(h.node_num, node_id(h.node_num)) for h in mesh.handhelds}
    names = boards | handhelds
    nodes = tuple(
        SpreadNode(name, num, "board" if num in boards else "handheld", mesh.positions.get(num))
        for num, name in names.items()
    )
    links: dict[frozenset[int], SpreadLink] = {}
    for num in names:
        for other, link in mesh.neighbours(num).items():
            pair = frozenset((num, other))
            if other in names and pair not in links:
                links[pair] = SpreadLink(names[num], names[other], link.loss, link.snr)
    transmissions = tuple(
        SpreadTransmission(
            r.at, names[r.sender], r.airtime, board_plane=r.port == BOARD_PORT, kind=r.kind
        )
        for r in mesh.log
        if r.at >= sent_at and r.sender in names
    )
    return SpreadRecord(
        ref=ref,
        topology=topology,
        loss=loss,
        seed=mesh.seed,
        nodes=nodes,
        links=tuple(links.values()),
        poster=names[poster],
        origin=origin.name,
        sent_at=sent_at,
        arrivals={b.name: arrival(b, bulletin_id, mesh.clock) for b in hood.boards},
        transmissions=transmissions,
    )


def _received_at(node: BoardNode, bulletin_id: str) -> int | None:
    store = node.store if node.store is not None else Store.open(node.db_path)
    try:
        with Session(store.engine) as session:
            query = select(BulletinRow.received_at).where(BulletinRow.id == bulletin_id)
            return session.exec(query).first()
    finally:
        if store is not node.store:
            store.close()
