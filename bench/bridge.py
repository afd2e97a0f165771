"""Ten neighbourhoods joined through one Mosquitto: reach, the air the bridge adds, broker bytes.

    python bench/bridge.py                      # 10 meshes of 3 boards, 10 bulletins: ~8 min
    python bench/bridge.py --meshes 4 --bulletins 4

Each mesh is a simulated LoRa mesh of `--boards` board daemons in a line (the production
daemons, through the real meshtastic client over ptys), `--loss` of packets lost on every link,
all meshes on one clock at `--speed` times real time. The first board of each
line is bridged (`bridge = "mqtt://127.0.0.1:PORT"` on the public ring) to one real Mosquitto
that the bench starts on a free port; a handheld beside the last board posts, one bulletin per
mesh in turn, every `--every` simulated seconds. Two runs on the same meshes, seed and posts:

* **bridged**: time from a bulletin's `ok` to the moment the last of all boards held it
  (simulated seconds; boards checked every 50 ms of real time, so to about `--speed` / 20 s),
  boards reached; board-plane packets and airtime on each mesh's air; what the bridged boards
  published to and got from the broker (payload bytes and messages, from `meshboard status`'s
  counters), per bulletin; and the sync's broker traffic when nothing is new (the last
  `--quiet` simulated seconds, after every board holds everything).
* **baseline, no bridge**: the same posts, each staying in its own mesh: the board-plane
  packets and airtime each mesh's air carries without the bridge. Packets added to a mesh's air
  by the bridge are the bridged run's less the baseline's, per mesh.

Writes bench/results/bridge.json (or `--out`) and prints it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from board.airtime import estimate_airtime
from board.config import MeshboardConfig, parse_config
from board.handheld.commands import BoardConfig
from node.clock import Clock
from node.demo.neighbourhood import BoardNode, Neighbourhood, ask
from node.link import BOARD_PORT
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh

RESULTS = Path(__file__).parent / "results"
MOSQUITTO = "/usr/sbin/mosquitto"
logger = logging.getLogger("bench.bridge")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--meshes", type=int, default=10)
    parser.add_argument("--boards", type=int, default=3, help="boards per mesh, in a line")
    parser.add_argument("--bulletins", type=int, default=10)
    parser.add_argument("--loss", type=float, default=0.1)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=120.0, help="simulated s between posts")
    parser.add_argument("--quiet", type=float, default=1800.0, help="simulated s, nothing new")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="real s per bulletin")
    parser.add_argument("--out", default="bridge.json", help="file name under bench/results/")
    return parser.parse_args()


@contextmanager
def mosquitto(directory: Path) -> Iterator[int]:
    """A broker of our own on a free port of 127.0.0.1, anonymous, for this bench only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = directory / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "log_dest none"]
    if os.geteuid() == 0:
        lines.append("user root")  # else it becomes `mosquitto`, who cannot read our tmp dir
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("mosquitto did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Street:
    hood: Neighbourhood
    boards: list[BoardNode]
    person: VirtualHandheld

    @property
    def mesh(self) -> Mesh:
        return self.hood.mesh

    def now(self) -> datetime:
        return self.mesh.clock.now()

    def holds(self, board: BoardNode, text: str) -> bool:
        assert board.store is not None
        return any(b.text == text for b in board.store.active(self.now(), ring=0))


def ring_config(url: str | None) -> MeshboardConfig:
    public: dict[str, object] = {"name": "public", "channel": 0}
    if url is not None:
        public["bridge"] = url
    return parse_config({"ring": [public]})


def build(
    index: int, args: argparse.Namespace, clock: Clock, work: Path, url: str | None
) -> Street:
    """One mesh on the shared `clock`: the meshes are built one after another, and times
    compared across them must not carry the seconds that took."""
    mesh = Mesh(clock=clock, seed=args.seed * 100 + index)
    directory = work / f"mesh-{index}"
    directory.mkdir()
    hood = Neighbourhood(mesh, directory, board=BoardConfig())
    first = 0x10000000 * (index + 1)  # node numbers differ between meshes, as real ones do
    radios = [mesh.add_radio(first + n) for n in range(args.boards)]
    for a, b in itertools.pairwise(radios):
        mesh.link(a, b, loss=args.loss)
    boards = [
        hood.attach(radio, config=ring_config(url if n == 0 else None))
        for n, radio in enumerate(radios)
    ]
    person = mesh.add_handheld(first + 0xFFFF)
    mesh.link(person, radios[-1], loss=args.loss)
    return Street(hood, boards, person)


@dataclass
class Run:
    spreads: list[float] = field(default_factory=list)  # simulated s, per bulletin
    reached: list[int] = field(default_factory=list)  # boards holding it at the end
    air_packets: list[int] = field(default_factory=list)  # board-plane packets, per mesh
    air_seconds: list[float] = field(default_factory=list)
    broker: dict[str, int] = field(default_factory=dict)
    quiet: dict[str, float] = field(default_factory=dict)
    posts_resent: int = 0  # posts the person sent again for want of an answer
    # Where a bulletin's time goes, per mesh it had to reach through the broker: to that
    # mesh's bridged board (the origin mesh's air, and the broker), then to its last board.
    to_bridged_board: list[float] = field(default_factory=list)
    bridged_to_last: list[float] = field(default_factory=list)

    def legs(self, held_at: dict[tuple[int, int], float], origin: int, boards: int) -> None:
        meshes = {mesh for mesh, _ in held_at} - {origin}
        for mesh in sorted(meshes):
            if all((mesh, b) in held_at for b in range(boards)):
                bridged = held_at[(mesh, 0)]
                last = max(held_at[(mesh, b)] for b in range(boards))
                self.to_bridged_board.append(bridged)
                self.bridged_to_last.append(last - bridged)


def board_plane(street: Street) -> tuple[int, float]:
    """Board-plane packets the mesh's boards handed their radios, and their airtime."""
    packets, airtime = 0, 0.0
    for board in street.boards:
        for sent in board.radio.transmissions:
            if sent.packet.decoded.portnum == BOARD_PORT:
                packets += 1
                airtime += estimate_airtime(len(sent.packet.decoded.payload), port=BOARD_PORT)
    return packets, airtime


def broker_counts(streets: list[Street]) -> dict[str, int]:
    total = {"bytes_out": 0, "bytes_in": 0, "messages_out": 0, "messages_in": 0}
    for street in streets:
        daemon = street.boards[0].daemon
        assert daemon is not None
        for report in daemon.health.snapshot().brokers:
            for key in total:
                total[key] += getattr(report, key)
    return total


def post(street: Street, text: str, result: Run) -> datetime:
    """Post `text` from the street's handheld; when no answer comes, send it again, as a person
    would (a lost answer may leave the post stored twice: the bench counts boards holding the
    text, so that changes nothing it measures)."""
    for _ in range(3):
        try:
            reply = ask(street.person, street.boards[-1], f"post notice {text}", pki=True)
        except TimeoutError:
            result.posts_resent += 1
            continue
        if not reply.startswith("ok"):
            raise SystemExit(f"post refused: {reply}")
        return street.now()
    raise SystemExit(f"{text!r} was never answered")


def run(args: argparse.Namespace, work: Path, url: str | None) -> Run:
    clock = Clock(speed=args.speed, start=datetime.now(UTC).replace(microsecond=0))
    streets = [build(i, args, clock, work, url) for i in range(args.meshes)]
    result = Run()
    everyone = [(s, b) for s in streets for b in s.boards]
    try:
        for n in range(args.bulletins):
            street = streets[n % len(streets)]
            text = f"Bulletin {n} from street {n % len(streets)}"
            posted = post(street, text, result)
            targets = everyone if url is not None else [(street, b) for b in street.boards]
            deadline = time.monotonic() + args.timeout
            last = posted
            waiting = list(targets)
            held_at: dict[tuple[int, int], float] = {}  # (mesh, board) -> s after the ok
            while waiting and time.monotonic() < deadline:
                for s, board in list(waiting):
                    if s.holds(board, text):
                        waiting.remove((s, board))
                        last = max(last, s.now())
                        where = (streets.index(s), s.boards.index(board))
                        held_at[where] = (s.now() - posted).total_seconds()
                time.sleep(0.05)
            result.spreads.append((last - posted).total_seconds() if not waiting else float("nan"))
            if url is not None:
                result.legs(held_at, origin=n % len(streets), boards=args.boards)
            result.reached.append(len(targets) - len(waiting))
            logger.info("bulletin %d: %d of %d boards", n, result.reached[-1], len(targets))
            # The next post `--every` simulated seconds after this one.
            wait = args.every - (street.now() - posted).total_seconds()
            if wait > 0:
                time.sleep(wait / args.speed)
        # Both runs end with the quiet stretch, so their air is counted over the same time.
        before = broker_counts(streets)
        time.sleep(args.quiet / args.speed)
        after = broker_counts(streets)
        if url is not None:
            hours = args.quiet / 3600
            result.quiet = {
                "bytes_per_hour_per_bridged_board": round(
                    (after["bytes_out"] - before["bytes_out"]) / hours / len(streets), 1
                ),
                "messages_per_hour_per_bridged_board": round(
                    (after["messages_out"] - before["messages_out"]) / hours / len(streets), 2
                ),
            }
            result.broker = after
        for street in streets:
            packets, airtime = board_plane(street)
            result.air_packets.append(packets)
            result.air_seconds.append(round(airtime, 2))
    finally:
        for street in streets:
            street.hood.close()
            street.mesh.close()
    return result


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return {
        "min": round(ordered[0], 1),
        "median": round(statistics.median(ordered), 1),
        "p95": round(p95, 1),
        "max": round(ordered[-1], 1),
    }


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("node", "board", "meshtastic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with mosquitto(work) as port:
            (work / "bridged").mkdir()
            bridged = run(args, work / "bridged", f"mqtt://127.0.0.1:{port}")
        (work / "baseline").mkdir()
        baseline = run(args, work / "baseline", None)
    boards = args.meshes * args.boards
    added = [b - a for a, b in zip(baseline.air_packets, bridged.air_packets, strict=True)]
    added_air = [b - a for a, b in zip(baseline.air_seconds, bridged.air_seconds, strict=True)]
    record: dict[str, Any] = {
        "command": " ".join(["python", "bench/bridge.py", *sys.argv[1:]]),
        "meshes": args.meshes,
        "boards_per_mesh": args.boards,
        "topology": "each mesh a line; its first board bridged to one Mosquitto; posts at the last",
        "loss": args.loss,
        "speed": args.speed,
        "bulletins": args.bulletins,
        "every_s": args.every,
        "bridged": {
            "spread_s": summary(bridged.spreads),
            "reached_all": sum(r == boards for r in bridged.reached),
            "air_packets_per_mesh": bridged.air_packets,
            "air_seconds_per_mesh": bridged.air_seconds,
            "broker": bridged.broker,
            "broker_bytes_out_per_bulletin": round(bridged.broker["bytes_out"] / args.bulletins),
            "broker_bytes_in_per_bulletin": round(bridged.broker["bytes_in"] / args.bulletins),
            "quiet": bridged.quiet,
            "posts_resent": bridged.posts_resent,
            "per_destination_mesh": {
                "ok_to_its_bridged_board_s": summary(bridged.to_bridged_board),
                "bridged_board_to_its_last_board_s": summary(bridged.bridged_to_last),
            },
        },
        "baseline": {
            "spread_in_own_mesh_s": summary(baseline.spreads),
            "air_packets_per_mesh": baseline.air_packets,
            "air_seconds_per_mesh": baseline.air_seconds,
            "posts_resent": baseline.posts_resent,
        },
        "added_by_bridge": {
            "air_packets_per_mesh": summary([float(a) for a in added]),
            "air_packets_per_foreign_bulletin": round(
                statistics.mean(added) / max(1, args.bulletins - args.bulletins / args.meshes), 2
            ),
            "air_seconds_per_mesh": summary(added_air),
        },
        "wall_s": round(time.monotonic() - started, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    json.dump(record, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
