"""`meshboard sim`: a simulated neighbourhood for a person with the meshtastic CLI or an app.

Board daemons run in a street as in `meshboard demo` (each board's radio hears only its
neighbours), and beside them stand handheld radios with no daemon: simulated radios on real
ptys, each also served on a TCP port by `node.sim.tcp_api`, for a person to connect to with
`meshtastic --port PATH`, `meshtastic --host HOST:PORT` or an app's network connection. The
first handheld stands by the first board and the last by the last board (the rest in between);
with no boards, the handhelds all hear each other.

The clock runs at real speed by default, as an app expects; `speed` runs the simulated air
(airtime, the boards' sync timers) faster.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from board.handheld.commands import UTC_ZONE, BoardConfig
from node.clock import Clock
from node.demo.neighbourhood import BoardNode, Neighbourhood
from node.sim.mesh import Mesh
from node.sim.radio import SimulatedRadio, node_id
from node.sim.tcp_api import DEFAULT_HOST, TcpBridge

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimSettings:
    boards: int = 2
    handhelds: int = 2
    loss: float = 0.0  # probability that one frame between two neighbours is lost
    seed: int = 1
    speed: float = 1.0  # simulated seconds per real second
    host: str = DEFAULT_HOST  # where the handhelds' TCP ports listen
    tcp_port: int = 0  # the first handheld's port, the next ones after it; 0: any free ones
    tz: ZoneInfo = UTC_ZONE  # the boards' time zone, for the event times people type


@dataclass(frozen=True)
class Handheld:
    """A handheld radio a person connects to, on its serial path or its TCP port."""

    name: str
    radio: SimulatedRadio
    bridge: TcpBridge
    near: str | None  # the board whose radio it hears; None: no boards, it hears the others

    @property
    def node_id(self) -> str:
        return node_id(self.radio.node_num)


class Simulation:
    """The running neighbourhood: use as a context manager, `serve` until told to stop."""

    def __init__(self, settings: SimSettings) -> None:
        if settings.boards < 0 or settings.handhelds < 0:
            raise ValueError("boards and handhelds are counts")
        self.settings = settings
        self.boards: list[BoardNode] = []
        self.handhelds: list[Handheld] = []
        self._stack = contextlib.ExitStack()
        self._hood: Neighbourhood | None = None

    def __enter__(self) -> Simulation:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the TCP ports, stop the daemons, close the radios and remove the databases."""
        self._stack.close()

    def serve(self, stop: threading.Event) -> None:
        """Run until `stop` is set; RuntimeError when a board's daemon failed."""
        assert self._hood is not None, "enter the simulation first"
        self._hood.wait_until(stop.is_set, math.inf)

    def _start(self) -> None:
        s = self.settings
        scratch = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="mb-sim-")))
        mesh = self._stack.enter_context(Mesh(clock=Clock(speed=s.speed), seed=s.seed))
        street = mesh.add_line(["radio"] * s.boards, loss=s.loss)
        radios = [r for r in street if isinstance(r, SimulatedRadio)]
        people = [mesh.add_radio() for _ in range(s.handhelds)]
        nearest = [_nearest(i, s.handhelds, s.boards) for i in range(s.handhelds)]
        for person, board in zip(people, nearest, strict=True):
            if board is not None:
                mesh.link(person, radios[board], s.loss)
        if not radios:
            for i, person in enumerate(people):
                for other in people[i + 1 :]:
                    mesh.link(person, other, s.loss)
        # Every radio is in the mesh before the first daemon's handshake: its node list is whole.
        hood = self._stack.enter_context(Neighbourhood(mesh, scratch, board=BoardConfig(tz=s.tz)))
        self._hood = hood
        self.boards = [hood.attach(radio) for radio in radios]
        for i, (person, board) in enumerate(zip(people, nearest, strict=True)):
            port = s.tcp_port + i if s.tcp_port else 0
            bridge = self._stack.enter_context(TcpBridge(person, s.host, port))
            near = None if board is None else self.boards[board].name
            self.handhelds.append(Handheld(f"handheld-{i}", person, bridge, near))
        logger.info(
            "simulated neighbourhood: %d boards, %d handhelds, %.0f%% loss, %gx real time",
            len(self.boards),
            len(self.handhelds),
            100 * s.loss,
            s.speed,
        )

    # -- what a person needs to connect -----------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        s = self.settings
        return {
            "boards": [
                {"name": b.name, "node_id": b.node_id, "serial": b.radio.port} for b in self.boards
            ],
            "handhelds": [
                {
                    "name": h.name,
                    "node_id": h.node_id,
                    "serial": h.radio.port,
                    "tcp": {"host": h.bridge.host, "port": h.bridge.port},
                    "near": h.near,
                }
                for h in self.handhelds
            ],
            "loss": s.loss,
            "seed": s.seed,
            "speed": s.speed,
        }

    def lines(self) -> list[str]:
        s = self.settings
        lines = [
            f"simulated neighbourhood: {_count(len(self.boards), 'board')} in a street, "
            f"{_count(len(self.handhelds), 'handheld radio')}; {s.loss:.0%} of packets lost, "
            f"{s.speed:g}x real time"
        ]
        lines += [f"board     {b.node_id}  {b.name}" for b in self.boards]
        lines += [
            f"handheld  {h.node_id}  serial {h.radio.port}  tcp {h.bridge.address}"
            + (f"  near {h.near}" if h.near else "")
            for h in self.handhelds
        ]
        if self.handhelds:
            lines += self._hints(self.handhelds[0].bridge.address)
        return [*lines, "Ctrl-C stops the simulation."]

    def _hints(self, host: str) -> list[str]:
        hints = [f"try: meshtastic --host {host} --info"]
        others = [b.node_id for b in self.boards] or [h.node_id for h in self.handhelds[1:]]
        if others:
            hints.append(f"     meshtastic --host {host} --sendtext help --dest '{others[0]}'")
            hints.append(f"     meshtastic --host {host} --listen   (the answer; Ctrl-C ends it)")
        return hints


def _nearest(index: int, handhelds: int, boards: int) -> int | None:
    """The board the `index`th handheld stands by: spread from the first board to the last."""
    if boards == 0:
        return None
    if handhelds == 1:
        return 0
    return round(index * (boards - 1) / (handhelds - 1))


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")
