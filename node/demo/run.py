"""`meshboard demo`: a simulated neighbourhood of board nodes and two neighbours.

Everything is the real thing except the radio hardware: each board is the production daemon
talking through the official meshtastic client over its own pty to a simulated radio, with its
own SQLite file; the radios share a simulated LoRa mesh whose clock runs faster than real time.
Ana posts a meal at one end of the street, the boards pass it along, and Ben reads it at the
other end.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from board.handheld.commands import BoardConfig
from node.clock import Clock
from node.demo.neighbourhood import BoardNode, Neighbourhood, ask
from node.demo.spread import SpreadRecord, arrival, record_spread
from node.link import BOARD_PORT
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import SimulatedRadio

logger = logging.getLogger(__name__)

SPEED = 40.0  # simulated seconds per real second
CONVERGE_TIMEOUT = 45.0  # real seconds
POST = "post meal tomorrow 18:00 Soup at the hall, bring a bowl"

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    converged: bool
    boards_holding: int
    boards: int
    spread: SpreadRecord  # how the post spread, up to convergence (or giving up)


def run_demo(say: Say, *, nodes: int, loss: float, seed: int, tz: ZoneInfo) -> DemoResult:
    """Run the neighbourhood, calling `say` with each line as it happens."""
    if nodes < 2:
        raise ValueError("a neighbourhood needs at least 2 board nodes")
    with (
        tempfile.TemporaryDirectory(prefix="meshboard-demo-") as scratch,
        Mesh(clock=Clock(speed=SPEED), seed=seed) as mesh,
    ):
        radios = [
            r for r in mesh.add_line(["radio"] * nodes, loss=loss) if isinstance(r, SimulatedRadio)
        ]
        say(
            f"{nodes} board nodes in a street, each hearing only its neighbours "
            f"({loss:.0%} of packets lost); simulated LongFast, {SPEED:.0f}x real time"
        )
        with Neighbourhood(mesh, Path(scratch), board=BoardConfig(tz=tz)) as hood:
            boards = [hood.attach(radio) for radio in radios]
            ana = hood.neighbour(boards[0])
            ben = hood.neighbour(boards[-1])
            say(f"Ana lives by {boards[0].name}, Ben by {boards[-1].name}")
            sent_at = mesh.now()
            reply = _ask(say, "Ana", ana, boards[0], POST)
            ref = reply.split()[1] if reply.startswith("ok #") else ""
            ids = [i for i in hood.holdings(boards[0]) if ref and i.startswith(ref[1:])]
            if len(ids) != 1:
                raise RuntimeError(f"the board did not take the post: {reply!r}")
            converged = _watch_spread(say, hood, boards, ids[0], ref)
            spread = record_spread(
                hood,
                ids[0],
                ref=ref,
                origin=boards[0],
                people={ana.node_num: "Ana", ben.node_num: "Ben"},
                poster=ana.node_num,
                sent_at=sent_at,
                topology="line",
                loss=loss,
            )
            if converged:
                _ask(say, "Ben", ben, boards[-1], "list meal")
                _ask(say, "Ben", ben, boards[-1], f"read {ref}")
            _summary(say, mesh, hood, boards)
            holding = sum(at is not None for at in spread.arrivals.values())
            return DemoResult(converged, holding, len(boards), spread)


def _ask(say: Say, name: str, person: VirtualHandheld, board: BoardNode, text: str) -> str:
    say(f"{name} → {board.name}: {text}")
    reply = ask(person, board, text)
    say(f"{board.name} → {name}: " + reply.replace("\n", "\n    "))
    return reply


def _watch_spread(
    say: Say, hood: Neighbourhood, boards: list[BoardNode], bulletin_id: str, ref: str
) -> bool:
    """Print each board as it receives the bulletin; True once all have it.

    The times are those the boards' stores wrote (simulated seconds after the first board
    stored it), not when this loop happened to look.
    """
    clock = hood.mesh.clock
    have: dict[str, float] = {}
    posted = arrival(boards[0], bulletin_id, clock)
    if posted is None:
        raise RuntimeError(f"{boards[0].name} no longer holds {ref}")

    def everyone_has_it() -> bool:
        new = [
            (at, board.name)
            for board in boards
            if board.name not in have and (at := arrival(board, bulletin_id, clock)) is not None
        ]
        for at, name in sorted(new):
            have[name] = at
            say(f"  +{at - posted:4.0f} s  {name} has {ref}  [{len(have)}/{len(boards)}]")
        return len(have) == len(boards)

    converged = hood.wait_until(everyone_has_it, CONVERGE_TIMEOUT, every=0.1)
    if not converged:
        say(f"not every board had {ref} after {CONVERGE_TIMEOUT:.0f} s of waiting")
    return converged


def _summary(say: Say, mesh: Mesh, hood: Neighbourhood, boards: list[BoardNode]) -> None:
    log = mesh.log
    say("")
    say(
        f"{'board':10} {'node':10} {'bulletins':>9} {'sync pkts':>9} {'sync air':>9} {'all air':>8}"
    )
    for board in boards:
        num = board.radio.node_num
        sync = [r for r in log if r.sender == num and r.port == BOARD_PORT]
        everything = [r for r in log if r.sender == num]
        say(
            f"{board.name:10} {board.node_id:10} {len(hood.holdings(board)):9d} {len(sync):9d} "
            f"{sum(r.airtime for r in sync):7.1f} s {sum(r.airtime for r in everything):6.1f} s"
        )
    total = sum(r.airtime for r in log)
    say(f"total airtime {total:.1f} s over {mesh.now():.0f} simulated seconds")
