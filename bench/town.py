"""A whole town of boards under loss, against a firmware flood and push-to-every-peer, in one run.

    python bench/town.py                      # the full run: about 90 s on 2 cores
    python bench/town.py --plot docs          # also draw docs/town-*.png (matplotlib)
    python bench/town.py --seed 2 --ceiling-rates ''   # another town, without the ceiling
    python bench/town.py --boards 20 --bulletins 6 --ceiling-rates 1,8 --out /tmp/town.json
    python bench/town.py --ceiling-rates '' --news-check 450 --out /tmp/town.json  # a knob

How it runs. Every board is `node.demo.inprocess.InProcessBoard`: the daemon's own SQLite store,
command handler, sync engine, outbox and airtime budget, on a station of the simulated mesh
(`node/sim/mesh.py`: LoRa airtime for LongFast, carrier sense, collisions, the EU 868 duty cycle,
hop limits, the TX queue, PKI direct messages, ACKs and retries as the firmware does them). There
are no pty radios or meshtastic clients here: the mesh runs on a `VirtualClock`, discrete-event,
so a run of hours takes minutes and replays exactly from its seed.

The town: `--boards` boards placed at random in a unit square (seeded), linked when closer than
`--radius`, every link losing `--loss` of its frames; a placement counts only if it is connected
and at least `--min-hops` hops across. Ten publishers (spread over the town) each have a
neighbour with a handheld who posts by direct message (`post meal …`), `--bulletins` in all, one
every `--post-every` seconds (by default 20, ten an hour: each publisher one an hour), after a
`--warmup` of four hours, in which the boards' Trickle timers reach their longest interval, as
in a town whose boards have been running for a while.

Three runs on the same town, seed and loss, with the same bulletins from the same boards at the
same times:

* meshboard: the boards as they are. A bulletin counts from the moment its own board stored it
  to the moment the last board did (`spread`); airtime counts every board-plane packet (port 384)
  from the first post to the end of convergence, digests and repairs included.
* flood: no board logic; each bulletin's announce packet is broadcast once by its board's radio
  with hop limit 7 (the most the firmware allows, `HOP_MAX`) and rebroadcast by every radio's
  firmware (managed flooding). Boards more than 7 hops away cannot get it.
* push: each bulletin goes as a want_ack direct message from its board to every other board, as
  TC2-BBS syncs its peers (firmware ACKs and retries, hop limit 7, texts 2.25 s apart as the
  firmware's 2 s rule requires).

Then the quiet mesh: after the last change, two hours of nothing new, then the board plane's
packets per board per hour over the next two hours. And the publish ceiling: `--ceiling-boards`
boards at the same loss, bulletins posted at 1 to 64 an hour for `--ceiling-hours`, then an hour
to settle; per rate the peak channel utilisation and the bulletins some board never got.

Channel utilisation is measured as the firmware measures it (`AirTime::logAirtime`, see
`node/sim/ledger.py`): per radio, the time its receiver was busy with frames it sent or took in
(garbled ones too); here over a rolling hour, peak over time and over board radios. The sync
figure counts port 384 frames only; the other counts everything on the air.

Figures go to `bench/results/town.json` (or `--out`); `--plot DIR` also draws the town coloured
by when each board first held the first bulletin, and the channel utilisation over time for the
three runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from board.bulletin import Bulletin
from board.errors import NotFound
from board.sync.state import SyncConfig
from board.wire.codec import Announce, decode, encode
from node.clock import VirtualClock
from node.demo.inprocess import InProcessBoard
from node.link import BOARD_PORT
from node.outbox import MIN_TEXT_INTERVAL
from node.sim import firmware
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.station import AirRecord

RESULTS = Path(__file__).parent / "results"
HOUR = 3600.0
MINUTE = 60.0

logger = logging.getLogger("bench.town")


# -- the town ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Town:
    """Where the boards stand and who hears whom: the same for every run."""

    positions: list[tuple[float, float]]
    links: list[tuple[int, int, float]]  # (board, board, snr)
    hops: list[list[int]]  # hops[a][b]: fewest hops between boards a and b
    attempt: int  # which seeded placement this is

    @property
    def diameter(self) -> int:
        return max(max(row) for row in self.hops)


def place_town(boards: int, radius: float, min_hops: int, seed: int) -> Town:
    """The first seeded placement that is connected and at least `min_hops` hops across."""
    for attempt in range(1000):
        place = random.Random(f"town:{seed}:{attempt}")
        positions = [(place.random(), place.random()) for _ in range(boards)]
        links = [
            (a, b, 10.0 - 25.0 * math.dist(positions[a], positions[b]) / radius)
            for a in range(boards)
            for b in range(a + 1, boards)
            if math.dist(positions[a], positions[b]) <= radius
        ]
        hops = _all_hops(boards, links)
        if hops is not None and max(max(row) for row in hops) >= min_hops:
            return Town(positions, links, hops, attempt)
    raise RuntimeError(f"no connected town of {boards} boards {min_hops} hops across")


def _all_hops(boards: int, links: list[tuple[int, int, float]]) -> list[list[int]] | None:
    near: list[list[int]] = [[] for _ in range(boards)]
    for a, b, _ in links:
        near[a].append(b)
        near[b].append(a)
    table = []
    for start in range(boards):
        hops = {start: 0}
        frontier = [start]
        while frontier:
            frontier = [n for f in frontier for n in near[f] if n not in hops]
            for n in frontier:
                hops.setdefault(n, min(hops[m] for m in near[n] if m in hops) + 1)
        if len(hops) < boards:
            return None
        table.append([hops[b] for b in range(boards)])
    return table


def build_mesh(town: Town, loss: float, seed: int) -> tuple[Mesh, list[VirtualHandheld]]:
    """The town's radios on a fresh virtual-clock mesh (the radios are stations: see module)."""
    mesh = Mesh(clock=VirtualClock(), seed=seed, telemetry_interval=None)
    radios = [mesh.add_handheld() for _ in town.positions]
    for a, b, snr in town.links:
        mesh.link(radios[a], radios[b], loss, snr=snr)
    return mesh, radios


@dataclass(frozen=True)
class Post:
    at: float  # simulated seconds after the mesh started
    board: int
    text: str


def schedule(publishers: Sequence[int], count: int, start: float, every: float) -> list[Post]:
    """`count` posts, one every `every` seconds, taking the publishers in turn."""
    kinds = ("meal", "skill", "notice", "childcare")
    return [
        Post(
            start + i * every,
            publishers[i % len(publishers)],
            f"post {kinds[i % len(kinds)]} Bring-and-share number {i} at the hall, all welcome",
        )
        for i in range(count)
    ]


def publishers_of(town: Town, count: int) -> list[int]:
    """`count` boards spread over the town: each the farthest (in hops) from those chosen."""
    chosen = [0]
    while len(chosen) < min(count, len(town.positions)):
        rest = [b for b in range(len(town.positions)) if b not in chosen]
        chosen.append(max(rest, key=lambda b: (min(town.hops[b][c] for c in chosen), -b)))
    return chosen


# -- channel utilisation -------------------------------------------------------------------


Booking = tuple[float, float, int]  # (at, airtime, port)


def peak_utilisation(
    bookings: Iterable[Sequence[Booking]], start: float, end: float, port: int | None
) -> float:
    """The busiest rolling hour of any radio in [start, end], as a fraction of the hour."""
    peak = 0.0
    for radio in bookings:
        times = [(at, s) for at, s, p in radio if start <= at <= end and port in (None, p)]
        total, first = 0.0, 0
        for at, seconds in times:
            total += seconds
            while times[first][0] <= at - HOUR:
                total -= times[first][1]
                first += 1
            peak = max(peak, total / HOUR)
    return peak


def utilisation_series(
    bookings: Sequence[Sequence[Booking]], start: float, end: float, port: int | None
) -> list[tuple[float, float]]:
    """(minutes since `start`, busiest radio's rolling-hour fraction) every minute."""
    series = []
    steps = int((end - start) // MINUTE) + 1
    for step in range(steps):
        at = start + step * MINUTE
        busiest = max(
            sum(s for t, s, p in radio if at - HOUR < t <= at and port in (None, p))
            for radio in bookings
        )
        series.append((step, busiest / HOUR))
    return series


# -- meshboard ---------------------------------------------------------------------------


@dataclass
class MeshboardFigures:
    bulletins: int
    posts_unanswered: int
    reached_all_fraction: float
    reached_fraction: float
    # Spreads are over the bulletins that reached every board; `reached_all_fraction` says how
    # many did (a bulletin that never did is not hidden in a percentile).
    p50_spread_s: float
    p95_spread_s: float
    max_spread_s: float
    airtime_per_bulletin_s: float
    packets_per_bulletin: float
    airtime_per_board_reached_s: float
    peak_sync_channel_utilisation: float
    peak_channel_utilisation: float
    quiet_packets_per_board_hour: float
    airtime_by_kind: dict[str, float]  # of `airtime_per_bulletin_s`, by board-plane message
    suppressed: int
    resent: int
    sent_by_kind: dict[str, int]
    digest_reasons: dict[str, int]
    queue_full: int
    first_held_s: list[float | None] = field(default_factory=list)  # per board, 1st bulletin
    series: list[tuple[float, float]] = field(default_factory=list)


def run_meshboard(
    town: Town, posts: list[Post], args: argparse.Namespace, workdir: Path
) -> tuple[MeshboardFigures, list[Bulletin]]:
    mesh, radios = build_mesh(town, args.loss, args.seed)
    sync = SyncConfig(relay_window=args.relay_window, news_check=args.news_check)
    with mesh:
        boards = [
            InProcessBoard(
                mesh, radio, workdir / f"board-{i}.db", seed=args.seed * 1000 + i, sync=sync
            )
            for i, radio in enumerate(radios)
        ]
        people = {}
        for board in sorted({p.board for p in posts}):
            person = mesh.add_handheld()
            mesh.link(person, radios[board], args.loss)
            people[board] = person
        for board in boards:
            board.start()
        for post in posts:
            mesh.run_until(post.at)
            people[post.board].send_text(post.text, to=radios[post.board].node_num)
        first_post = posts[0].at
        deadline = posts[-1].at + args.give_up_after
        while mesh.now() < deadline:
            mesh.run_until(mesh.now() + 5 * MINUTE)
            if mesh.now() >= posts[-1].at + 10 * MINUTE and converged(boards):
                break
        held = [b.figures.stored_at for b in boards]
        wanted: set[str] = set().union(*held)
        spreads, reached = [], []
        for bulletin_id in wanted:
            times = [h[bulletin_id] for h in held if bulletin_id in h]
            reached.append(len(times) / len(boards))
            if len(times) == len(boards):
                spreads.append(max(times) - min(times))
        last_change = max(max(h.values()) for h in held if h)
        sync_end = last_change + 10 * MINUTE
        mesh.run_until(sync_end)
        records = [r for r in mesh.log if first_post <= r.at <= sync_end and r.port == BOARD_PORT]
        bookings = [mesh.channel_bookings(r) for r in radios]
        # The quiet mesh: two hours of nothing new after the last change, then two measured.
        quiet_from = last_change + 2 * HOUR
        mesh.run_until(quiet_from + 2 * HOUR)
        quiet = [r for r in mesh.log if r.at >= quiet_from and r.port == BOARD_PORT]
        stats = [b.sync.stats for b in boards]
        bulletins = [bulletin_of(boards, bulletin_id) for bulletin_id in sorted(wanted)]
        first = min(wanted, key=lambda b: min(h[b] for h in held if b in h)) if wanted else None
        first_at = min(h[first] for h in held if first in h) if first else 0.0
        airtime = sum(r.airtime for r in records)
        figures = MeshboardFigures(
            bulletins=len(wanted),
            posts_unanswered=unanswered(people.values(), len(posts)),
            reached_all_fraction=sum(1 for f in reached if f == 1.0) / max(1, len(wanted)),
            reached_fraction=statistics.mean(reached) if reached else 0.0,
            p50_spread_s=percentile(spreads, 50),
            p95_spread_s=percentile(spreads, 95),
            max_spread_s=max(spreads, default=math.inf),
            airtime_per_bulletin_s=airtime / max(1, len(wanted)),
            packets_per_bulletin=len(records) / max(1, len(wanted)),
            airtime_per_board_reached_s=airtime / max(1, sum(r * len(boards) - 1 for r in reached)),
            peak_sync_channel_utilisation=peak_utilisation(
                bookings, first_post, sync_end, BOARD_PORT
            ),
            peak_channel_utilisation=peak_utilisation(bookings, first_post, sync_end, None),
            quiet_packets_per_board_hour=len(quiet) / len(boards) / 2.0,
            airtime_by_kind=airtime_by_kind(records, len(wanted)),
            suppressed=sum(s.suppressed for s in stats),
            resent=sum(s.resent for s in stats),
            sent_by_kind=dict(sum((s.sent for s in stats), start=type(stats[0].sent)())),
            digest_reasons=dict(
                sum((s.digest_reasons for s in stats), start=type(stats[0].sent)())
            ),
            queue_full=sum(b.figures.queue_full for b in boards),
            first_held_s=[None if first not in h else round(h[first] - first_at, 1) for h in held],
            series=utilisation_series(bookings, first_post, sync_end, BOARD_PORT),
        )
        for board in boards:
            board.close()
        return figures, bulletins


def airtime_by_kind(records: list[AirRecord], bulletins: int) -> dict[str, float]:
    """Seconds per bulletin of each kind of board-plane message (announce, digest, …)."""
    seconds: dict[str, float] = {}
    for record in records:
        kind = type(decode(record.payload)).__name__.lower()
        seconds[kind] = seconds.get(kind, 0.0) + record.airtime
    return {kind: round(total / max(1, bulletins), 2) for kind, total in sorted(seconds.items())}


def converged(boards: list[InProcessBoard]) -> bool:
    """Every board holds every bulletin any board holds."""
    wanted: set[str] = set().union(*(b.figures.stored_at for b in boards))
    return all(wanted <= b.figures.stored_at.keys() for b in boards)


def unanswered(people: Iterable[VirtualHandheld], posts: int) -> int:
    """Posts whose author never heard `ok`: the direct message or every reply was lost."""
    return posts - sum(1 for person in people for t in person.inbox if t.text.startswith("ok #"))


def bulletin_of(boards: list[InProcessBoard], bulletin_id: str) -> Bulletin:
    for board in boards:
        with contextlib.suppress(NotFound):
            return board.store.get(bulletin_id)
    raise KeyError(bulletin_id)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


# -- the baselines -----------------------------------------------------------------------


@dataclass
class BaselineFigures:
    airtime_per_bulletin_s: float
    packets_per_bulletin: float
    reached_fraction: float
    reached_all_fraction: float
    airtime_per_board_reached_s: float
    p95_time_to_reach_s: float
    peak_channel_utilisation: float
    beyond_7_hops: int  # (bulletin, board) pairs more than 7 hops from the bulletin's board
    series: list[tuple[float, float]] = field(default_factory=list)


def run_baseline(
    town: Town,
    posts: list[Post],
    bulletins: list[Bulletin],
    args: argparse.Namespace,
    send: Callable[[Mesh, list[VirtualHandheld], Post, Bulletin], set[int]],
) -> BaselineFigures:
    """Run `send` for each post at its time on a fresh mesh of the same town, seed and loss;
    `send` returns the ids of the packets that carry the bulletin, and a board is reached when
    its radio delivered one of them."""
    mesh, radios = build_mesh(town, args.loss, args.seed)
    with mesh:
        heard: dict[tuple[int, int], float] = {}  # (radio index, packet id) → first delivered
        for index, radio in enumerate(radios):
            radio.on_packet(
                lambda packet, i=index: heard.setdefault((i, packet.id), mesh.now())  # type: ignore[misc]
            )
        carriers: list[tuple[Post, float, set[int]]] = []
        for post, bulletin in zip(posts, bulletins, strict=True):
            mesh.run_until(post.at)
            carriers.append((post, mesh.now(), send(mesh, radios, post, bulletin)))
        end = posts[-1].at + args.give_up_after
        mesh.run_until(end)
        reached, times, pairs = [], [], 0
        for post, sent_at, ids in carriers:
            arrivals = {
                i: min(heard[(i, pid)] for pid in ids if (i, pid) in heard)
                for i in range(len(radios))
                if i != post.board and any((i, pid) in heard for pid in ids)
            }
            reached.append((1 + len(arrivals)) / len(radios))
            pairs += len(arrivals)
            times.append(max(arrivals.values(), default=sent_at) - sent_at)
        records = mesh.log
        airtime = sum(r.airtime for r in records)
        bookings = [mesh.channel_bookings(r) for r in radios]
        far = sum(1 for p in posts for b in range(len(radios)) if town.hops[p.board][b] > 7)
        return BaselineFigures(
            airtime_per_bulletin_s=airtime / len(posts),
            packets_per_bulletin=len(records) / len(posts),
            reached_fraction=statistics.mean(reached),
            reached_all_fraction=sum(1 for f in reached if f == 1.0) / len(reached),
            airtime_per_board_reached_s=airtime / max(1, pairs),
            p95_time_to_reach_s=percentile(times, 95),
            peak_channel_utilisation=peak_utilisation(bookings, posts[0].at, end, None),
            beyond_7_hops=far,
            series=utilisation_series(bookings, posts[0].at, end, None),
        )


def flood(mesh: Mesh, radios: list[VirtualHandheld], post: Post, bulletin: Bulletin) -> set[int]:
    """The bulletin's announce, broadcast once with hop limit 7; the firmware floods it."""
    payload = encode(Announce(bulletin.canonical_bytes()))
    return {radios[post.board].send_data(payload, BOARD_PORT, hop_limit=firmware.HOP_MAX)}


def push(mesh: Mesh, radios: list[VirtualHandheld], post: Post, bulletin: Bulletin) -> set[int]:
    """A want_ack direct message to every other board, handed over 2.25 s apart (the firmware
    drops a text sooner than 2 s after the last: `PhoneAPI::handleToRadioPacket`)."""
    origin = radios[post.board]
    text = f"BULLETIN|{bulletin.type}|{bulletin.author}|{bulletin.text}"
    ids: set[int] = set()
    for peer in radios:
        if peer is not origin:
            ids.add(origin.send_text(text, to=peer.node_num, hop_limit=firmware.HOP_MAX))
            mesh.run_until(mesh.now() + MIN_TEXT_INTERVAL)
    return ids


# -- the publish ceiling -------------------------------------------------------------------


@dataclass
class CeilingRow:
    per_hour: float
    posted: int
    stored: int  # bulletins some board stored (a post whose every try was lost is not one)
    lost: int  # stored bulletins some board never held by the end
    posts_unanswered: int  # posts whose author never heard `ok`
    peak_channel_utilisation: float  # everything on the air, posts and replies included
    peak_sync_channel_utilisation: float
    p95_spread_s: float
    sync_airtime_per_bulletin_s: float


def run_ceiling(args: argparse.Namespace, rate: float, workdir: Path) -> CeilingRow:
    """`--ceiling-boards` boards, posts at `rate` an hour at random boards for
    `--ceiling-hours`, then an hour to settle."""
    town = place_town(args.ceiling_boards, args.ceiling_radius, 2, args.seed)
    count = max(1, round(rate * args.ceiling_hours))
    every = args.ceiling_hours * HOUR / count
    pick = random.Random(f"ceiling:{args.seed}:{rate}")
    posts = [
        Post(args.warmup + i * every, pick.randrange(args.ceiling_boards), p.text)
        for i, p in enumerate(schedule([0], count, 0.0, 1.0))
    ]
    ceiling_args = argparse.Namespace(**{**vars(args), "give_up_after": HOUR})
    figures, _ = run_meshboard(town, posts, ceiling_args, workdir)
    return CeilingRow(
        per_hour=rate,
        posted=count,
        stored=figures.bulletins,
        lost=round(figures.bulletins * (1.0 - figures.reached_all_fraction)),
        posts_unanswered=figures.posts_unanswered,
        peak_channel_utilisation=figures.peak_channel_utilisation,
        peak_sync_channel_utilisation=figures.peak_sync_channel_utilisation,
        p95_spread_s=figures.p95_spread_s,
        sync_airtime_per_bulletin_s=figures.airtime_per_bulletin_s,
    )


# -- the run -------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("node.sim").setLevel(logging.ERROR)  # queue-full drops: counted, not told
    logger.setLevel(logging.INFO)
    began = time.monotonic()
    town = place_town(args.boards, args.radius, args.min_hops, args.seed)
    publishers = publishers_of(town, args.publishers)
    posts = schedule(publishers, args.bulletins, args.warmup, args.post_every)
    logger.info(
        "town: %d boards, %d links, %d hops across (placement %d); publishers %s",
        args.boards, len(town.links), town.diameter, town.attempt, publishers,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="meshboard-town-") as scratch:
        work = Path(scratch)
        meshboard, bulletins = run_meshboard(town, posts, args, work / "town")
        logger.info("meshboard: %s (%.0f s)", summary(asdict(meshboard)), time.monotonic() - began)
        by_post = match_posts(posts, bulletins)
        flood_figures = run_baseline(town, posts, by_post, args, flood)
        logger.info("flood: %s", summary(asdict(flood_figures)))
        push_figures = run_baseline(town, posts, by_post, args, push)
        logger.info("push: %s", summary(asdict(push_figures)))
        ceiling = []
        for rate in args.ceiling_rates:
            row = run_ceiling(args, rate, work / f"ceiling-{rate:g}")
            logger.info("ceiling %g/h: %s", rate, summary(asdict(row)))
            ceiling.append(row)
    results = {
        "command": "python bench/town.py " + " ".join(args.argv),
        "boards": args.boards,
        "loss": args.loss,
        "seed": args.seed,
        "preset": "LongFast",
        "topology": {
            "kind": "random geometric, unit square",
            "radius": args.radius,
            "links": len(town.links),
            "hops_across": town.diameter,
            "placement": town.attempt,
            "publishers": publishers,
        },
        "bulletins_posted": len(posts),
        "post_every_s": args.post_every,
        "meshboard": without_series(asdict(meshboard)),
        "flood": without_series(asdict(flood_figures)),
        "push": without_series(asdict(push_figures)),
        "ratios": {
            "meshboard_to_flood_airtime": ratio(
                meshboard.airtime_per_bulletin_s, flood_figures.airtime_per_bulletin_s
            ),
            "meshboard_to_push_per_board_reached": ratio(
                meshboard.airtime_per_board_reached_s, push_figures.airtime_per_board_reached_s
            ),
        },
        "quiet_packets_per_board_hour": meshboard.quiet_packets_per_board_hour,
        "ceiling_boards": args.ceiling_boards,
        "ceiling_hours": args.ceiling_hours,
        "ceiling": [asdict(row) for row in ceiling],
        "wall_seconds": round(time.monotonic() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s in %.0f s", args.out, time.monotonic() - began)
    if args.plot is not None:
        from town_plot import draw  # matplotlib only when asked (pip install -e '.[plot]')

        draw(args.plot, town, meshboard, flood_figures, push_figures)


def match_posts(posts: list[Post], bulletins: list[Bulletin]) -> list[Bulletin]:
    """The bulletin each post made (by its text), so the baselines carry the same ones; a post
    no board stored is carried by a stand-in of the same size."""
    by_text = {b.text: b for b in bulletins}
    fallback = bulletins[0]
    return [by_text.get(post.text.split(" ", 2)[2], fallback) for post in posts]


def without_series(figures: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in figures.items() if k not in ("series", "first_held_s")}


def summary(figures: dict[str, object]) -> str:
    shown = without_series(figures)
    return ", ".join(
        f"{k}={round(v, 4) if isinstance(v, float) else v}"
        for k, v in shown.items()
        if not isinstance(v, dict | list)
    )


def parse_args() -> argparse.Namespace:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=50)
    parser.add_argument("--radius", type=float, default=0.2, help="link range, unit square")
    parser.add_argument("--min-hops", type=int, default=8, help="town at least this many across")
    parser.add_argument("--loss", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--publishers", type=int, default=10)
    parser.add_argument("--bulletins", type=int, default=20)
    parser.add_argument("--post-every", type=float, default=360.0, help="seconds between posts")
    parser.add_argument("--warmup", type=float, default=4 * HOUR, help="seconds before posts")
    parser.add_argument("--give-up-after", type=float, default=3 * HOUR)
    parser.add_argument("--ceiling-boards", type=int, default=6)
    parser.add_argument("--ceiling-radius", type=float, default=0.5)
    parser.add_argument("--ceiling-hours", type=float, default=2.0)
    parser.add_argument(
        "--ceiling-rates",
        type=lambda text: [float(x) for x in text.split(",") if x],
        default=[1, 2, 4, 8, 16, 32, 64],
        help="bulletins an hour, comma-separated",
    )
    defaults = SyncConfig()
    parser.add_argument(
        "--relay-window",
        type=float,
        default=defaults.relay_window,
        help="SyncConfig.relay_window, s: the random wait before a board relays",
    )
    parser.add_argument(
        "--news-check",
        type=float,
        default=defaults.news_check,
        help="SyncConfig.news_check, s: digests compared this soon after news at the latest",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "town.json")
    parser.add_argument("--plot", type=Path, default=None, help="directory for town-*.png")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    return args


if __name__ == "__main__":
    main()
