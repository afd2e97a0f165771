"""Meshboard's board-plane sync against today's push-to-every-peer sync, on the same meshes.

    python bench/sync.py [--boards 10] [--bulletins 4] [--loss 0.0] [--seed 1] [--speed 10]
                         [--quiet-speed 100] [--warmup-hours 3] [--quiet-hours 2] [--plot DIR]

For each topology (a line, and a connected random geometric graph) it measures:
- meshboard: real daemons on pty radios; a neighbour posts at board 0 and the bench waits until
  every board holds the bulletin. Airtime counts board-plane packets only (port 384).
- plain flood: the ideal reference, every radio transmitting the bulletin's packet once.
- push baseline: board 0 sends the bulletin as a want_ack direct message to every other board,
  as Meshtastic BBSes sync today (firmware flooding, ACKs and retries included).
Before that, with a few bulletins and nothing changing (after a warm-up that lets Trickle reach
its longest interval), the board plane's packets per simulated hour in the busiest radio
neighbourhood.
Figures go to bench/results/sync.json and a short table on stdout. With --plot DIR, the first
bulletin's spread on each topology is also drawn (as `meshboard demo --plot` draws it) to
DIR/sync-spread-line.png and DIR/sync-spread-random.png; that needs matplotlib
(pip install -e '.[plot]'). A short run that only makes the pictures, a few minutes:

    python bench/sync.py --bulletins 1 --warmup-hours 0 --quiet-hours 0.05 --plot /tmp/spread

Why two speeds: the meshtastic client sleeps 100 real ms after every write, and threads add a
few real ms here and there. At 100x that is 10 simulated seconds per packet, longer than the
relay window, which distorts exactly what the flood phase measures. At 10x it is 1 s, about
one packet's airtime. The quiet hours carry a few packets an hour, so they run fast; the clock
slows down after them (slowing down is safe for threads waiting on it, speeding up is not).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from board.bulletin import new_bulletin
from board.sync.engine import SyncConfig
from board.types import TypeRegistry
from board.wire.codec import Announce, encode
from node.clock import Clock
from node.demo.neighbourhood import BoardNode, Neighbourhood, ask
from node.demo.spread import record_spread
from node.link import BOARD_PORT
from node.sim import lora
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import SimulatedRadio

RESULTS = Path(__file__).parent / "results"


@dataclass
class Figures:
    topology: str
    method: str
    airtime_per_bulletin_s: float
    packets_per_bulletin: float
    convergence_s: float
    delivered_fraction: float
    quiet_packets_per_hour: float | None = None  # in the busiest radio neighbourhood
    max_airtime_per_bulletin_s: float | None = None


def build(mesh: Mesh, topology: str, boards: int, loss: float) -> list[SimulatedRadio] | None:
    kinds = ["radio"] * boards
    if topology == "line":
        members = mesh.add_line(kinds, loss=loss)
    else:
        members = mesh.add_random_geometric(kinds, radius=0.45, loss=loss)
    radios = [m for m in members if isinstance(m, SimulatedRadio)]
    return radios if connected(mesh, radios) else None


def connected(mesh: Mesh, radios: list[SimulatedRadio]) -> bool:
    seen, todo = {radios[0].node_num}, [radios[0].node_num]
    while todo:
        for neighbour in mesh.neighbours(todo.pop()):
            if neighbour not in seen:
                seen.add(neighbour)
                todo.append(neighbour)
    return all(r.node_num in seen for r in radios)


def board_airtime(mesh: Mesh, since: float) -> tuple[float, int]:
    records = [r for r in mesh.log if r.at >= since and r.port == BOARD_PORT]
    return sum(r.airtime for r in records), len(records)


def run_meshboard(args: argparse.Namespace, topology: str, seed: int) -> Figures | None:
    """Quiet hours first (fast: a few packets an hour), then new bulletins (slower: see above).

    Measuring the floods after the quiet hours also means every board's Trickle timer is at
    its longest interval, as in a neighbourhood that has been running for a while, so the
    figures count what a new bulletin costs and not the boards' start-up digests.
    """
    with (
        tempfile.TemporaryDirectory() as scratch,
        Mesh(clock=Clock(speed=args.quiet_speed), seed=seed) as mesh,
    ):
        radios = build(mesh, topology, args.boards, args.loss)
        if radios is None:
            return None
        with Neighbourhood(mesh, Path(scratch), sync=SyncConfig()) as hood:
            nodes = [hood.attach(radio) for radio in radios]
            person = hood.neighbour(nodes[0])
            for index in range(3):
                ask(person, nodes[0], f"post meal Stew number {index}", timeout=60)
            # Trickle doubles its interval after the last change: let it reach imax first.
            quiet_start = mesh.now() + args.warmup_hours * 3600
            end = quiet_start + args.quiet_hours * 3600
            hood.wait_until(lambda: mesh.now() >= end, 3600)
            quiet = busiest_neighbourhood(mesh, radios, quiet_start) / args.quiet_hours

            mesh.clock.set_speed(args.speed)
            airtimes, packets, times, fractions = [], [], [], []
            for index in range(args.bulletins):
                since, held = mesh.now(), hood.holdings(nodes[0])
                reply = ask(
                    person, nodes[0], f"post meal Soup number {index} at the hall", timeout=60
                )
                wanted = hood.holdings(nodes[0]) - held
                hood.wait_until(lambda w=wanted: hood.converged(w), args.timeout)
                converged_at = mesh.now()
                if args.plot is not None and index == 0:
                    draw_spread(args, hood, topology, nodes[0], person, wanted, reply, since)
                fractions.append(sum(wanted <= hood.holdings(n) for n in nodes) / len(nodes))
                time_to_quiet(mesh, hood, args)
                airtime, count = board_airtime(mesh, since)
                airtimes.append(airtime)
                packets.append(count)
                times.append(converged_at - since)
            logging.info("%s airtime per bulletin: %s", topology, [round(a, 1) for a in airtimes])
        return Figures(
            topology,
            "meshboard",
            statistics.mean(airtimes),
            statistics.mean(packets),
            statistics.mean(times),
            statistics.mean(fractions),
            quiet,
            max(airtimes),
        )


def draw_spread(
    args: argparse.Namespace,
    hood: Neighbourhood,
    topology: str,
    origin: BoardNode,
    person: VirtualHandheld,
    wanted: set[str],
    reply: str,
    since: float,
) -> None:
    """Record how this bulletin spread and draw it to DIR/sync-spread-TOPOLOGY.png."""
    from node.demo.plot import save_spread_plot  # matplotlib only when asked for

    spread = record_spread(
        hood,
        next(iter(wanted)),
        ref=reply.split()[1],
        origin=origin,
        people={person.node_num: "Ana"},
        poster=person.node_num,
        sent_at=since,
        topology="random geometric" if topology == "random" else topology,
        loss=args.loss,
    )
    args.plot.mkdir(parents=True, exist_ok=True)
    out = args.plot / f"sync-spread-{topology}.png"
    save_spread_plot(spread, out)
    print(f"drew {out}")


def busiest_neighbourhood(mesh: Mesh, radios: list[SimulatedRadio], since: float) -> int:
    """Most board-plane packets any one radio heard or sent since `since`.

    A radio's neighbourhood is itself and the radios it hears; this is the figure the design
    bounds ("at most one digest per radio neighbourhood per 30 simulated minutes").
    """
    records = [r for r in mesh.log if r.at >= since and r.port == BOARD_PORT]
    return max(
        sum(1 for r in records if r.sender == radio.node_num or r.sender in mesh.neighbours(radio))
        for radio in radios
    )


def time_to_quiet(mesh: Mesh, hood: Neighbourhood, args: argparse.Namespace) -> None:
    """Wait until the board plane has been silent for two minutes of simulated time."""

    def quiet() -> bool:
        recent = [r for r in mesh.log if r.port == BOARD_PORT and r.at >= mesh.now() - 120]
        return not recent and mesh.now() > 120

    hood.wait_until(quiet, args.timeout)


def run_push(args: argparse.Namespace, topology: str, seed: int) -> Figures | None:
    """Board 0 sends every other board a want_ack DM carrying the bulletin."""
    with Mesh(clock=Clock(speed=args.speed), seed=seed) as mesh:
        kinds = ["handheld"] * args.boards
        if topology == "line":
            peers = mesh.add_line(kinds, loss=args.loss)
        else:
            peers = mesh.add_random_geometric(kinds, radius=0.45, loss=args.loss)
        handhelds = [p for p in peers if isinstance(p, VirtualHandheld)]
        airtimes, packets, times, fractions = [], [], [], []
        for index in range(args.bulletins):
            text = f"meal: Soup number {index} at the hall"
            start, log_start = mesh.now(), len(mesh.log)
            for peer in handhelds[1:]:
                handhelds[0].send_text(text, to=peer.node_num)
            # Retries, relays and ACKs included; an implicit ACK from a relay ends the retries
            # even when the destination is out of reach, as in the firmware.
            mesh.wait_idle(timeout=args.timeout)
            got = [any(t.text == text for t in peer.inbox) for peer in handhelds[1:]]
            records = mesh.log[log_start:]
            airtimes.append(sum(r.airtime for r in records))
            packets.append(len(records))
            times.append(max((r.at for r in records), default=start) - start)
            fractions.append((1 + sum(got)) / len(handhelds))
        return Figures(
            topology,
            "push baseline",
            statistics.mean(airtimes),
            statistics.mean(packets),
            statistics.mean(times),
            statistics.mean(fractions),
            0.0,
        )


def plain_flood(args: argparse.Namespace, topology: str) -> Figures:
    """Every radio sends the bulletin's board-plane packet exactly once: the ideal."""
    bulletin = new_bulletin(
        TypeRegistry(),
        type="meal",
        text="Soup number 0 at the hall",
        author="!1234abcd",
        ring=0,
        now=Clock().now(),
    )
    payload = len(encode(Announce(bulletin.canonical_bytes())))
    on_air = lora.MESHTASTIC_HEADER_LEN + payload + 4  # + the Data protobuf's own fields
    airtime = lora.airtime_seconds(on_air)
    return Figures(topology, "plain flood", args.boards * airtime, args.boards, 0.0, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=10)
    parser.add_argument("--bulletins", type=int, default=4)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=10.0, help="while bulletins flood")
    parser.add_argument("--quiet-speed", type=float, default=100.0, help="while nothing changes")
    parser.add_argument("--quiet-hours", type=float, default=2.0)
    parser.add_argument(
        "--warmup-hours", type=float, default=3.0, help="simulated hours before counting quiet"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="real seconds per wait")
    parser.add_argument(
        "--plot", type=Path, metavar="DIR", help="draw the first bulletin's spread per topology"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    figures: list[Figures] = []
    for topology in ("line", "random"):
        seed = args.seed
        while (meshboard := run_meshboard(args, topology, seed)) is None:
            seed += 1  # the random graph was not connected: take the next one
        figures += [meshboard, plain_flood(args, topology)]
        push = run_push(args, topology, seed)
        if push is not None:
            figures.append(push)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "sync.json"
    out.write_text(json.dumps([asdict(f) for f in figures], indent=2))
    print(
        f"{'topology':8} {'method':14} {'airtime/bulletin':>17} {'packets':>8} "
        f"{'converge':>9} {'delivered':>9} {'quiet pkts/h':>12}"
    )
    for f in figures:
        quiet = "-" if f.quiet_packets_per_hour is None else f"{f.quiet_packets_per_hour:.1f}"
        print(
            f"{f.topology:8} {f.method:14} {f.airtime_per_bulletin_s:15.1f} s "
            f"{f.packets_per_bulletin:8.1f} {f.convergence_s:7.1f} s "
            f"{f.delivered_fraction:9.0%} {quiet:>12}"
        )
    for topology in ("line", "random"):
        by = {f.method: f for f in figures if f.topology == topology}
        ours, flood, push = by["meshboard"], by["plain flood"], by.get("push baseline")
        ratio = ours.airtime_per_bulletin_s / flood.airtime_per_bulletin_s
        line = f"{topology}: meshboard/flood {ratio:.2f}x"
        if ours.max_airtime_per_bulletin_s is not None:
            worst = ours.max_airtime_per_bulletin_s / flood.airtime_per_bulletin_s
            line += f" (worst bulletin {worst:.2f}x)"
        if push is not None and push.delivered_fraction > 0:
            # push never reaches every board; scale its airtime to what full delivery would cost
            per_delivery = push.airtime_per_bulletin_s / push.delivered_fraction
            line += (
                f", push/meshboard {per_delivery / ours.airtime_per_bulletin_s:.1f}x (per delivery)"
            )
        print(line)
    print(f"written {out} in {time.monotonic() - started:.0f} s real time")


if __name__ == "__main__":
    main()
