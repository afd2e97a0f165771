"""`meshboard demo`, run again and again: how long the post takes to cross the street, and the wall.

    python bench/demo_runs.py                 # 12 runs of the demo's defaults: about 2.5 minutes
    python bench/demo_runs.py --runs 2

Each run is `meshboard demo` with its default settings (6 boards in a line, each hearing only
its neighbours, 10 % of packets lost, seed 1), called in-process as the command calls it
(`node.demo.run.run_demo`): the production daemons through the real meshtastic client over
ptys to simulated radios on one mesh whose clock runs 40 times faster than real time. Per run:
`spread_s`, the simulated seconds from the first board storing the post to the last board
storing it (the `+N s` the demo prints for the last board, whole seconds of the boards'
stores), and `wall_s`, the real seconds of the run, from building the mesh to the demo's
summary. The wall time leaves out what `time meshboard demo` adds: the interpreter's start and
its imports, once per process.

Why runs differ although the seed is the same: the mesh replays the same losses only for the
same packets in the same order, and the packets are sent by real meshtastic clients, each on
its own threads; when a board's client hands a packet to its radio depends on when those
threads run, so the order on the air, and from it which packet a loss hits, changes from run
to run. The spread is therefore given as min, median and max of `--runs` runs.

Writes bench/results/demo.json (each run, min/median/max of both figures, the settings and the
command) and prints one line per run and a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from node.demo.run import SPEED, run_demo

RESULTS = Path(__file__).parent / "results"
# `meshboard demo`'s defaults (node/commands/simulation.py): the README's demo is run with these.
NODES = 6
LOSS = 0.1
SEED = 1

logger = logging.getLogger("bench.demo_runs")


def one_run(nodes: int, loss: float, seed: int) -> dict[str, Any]:
    """One demo: whether every board got the post, the spread and the wall time."""
    started = time.monotonic()
    # The demo's narration goes to the debug log (`-v`), not to the bench's output.
    result = run_demo(
        lambda line: logger.debug("%s", line), nodes=nodes, loss=loss, seed=seed, tz=ZoneInfo("UTC")
    )
    wall = time.monotonic() - started
    reached = result.spread.reached()
    return {
        "converged": result.converged,
        "boards_holding": result.boards_holding,
        # None when a board never got it: a run that did not converge has no spread.
        "spread_s": reached[-1][1] if result.converged else None,
        "wall_s": round(wall, 2),
    }


def spread_of(values: list[float]) -> dict[str, float] | None:
    """min, median and max, or None when there is nothing to summarise."""
    if not values:
        return None
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--nodes", type=int, default=NODES, help="boards in the street")
    parser.add_argument("--loss", type=float, default=LOSS, help="share of packets lost")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("-v", "--verbose", action="store_true", help="log the demo's lines")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)  # as `meshboard demo` logs without -v
    logger.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    runs: list[dict[str, Any]] = []
    for index in range(args.runs):
        run = one_run(args.nodes, args.loss, args.seed)
        runs.append(run)
        shown = "never" if run["spread_s"] is None else f"{run['spread_s']:.0f} s"
        print(f"run {index + 1}/{args.runs}: last board held the post after {shown}, "
              f"wall {run['wall_s']:.1f} s")  # fmt: skip
    spreads = [r["spread_s"] for r in runs if r["spread_s"] is not None]
    walls = [r["wall_s"] for r in runs]
    spread, wall = spread_of(spreads), spread_of(walls)
    record = {
        "command": "python bench/demo_runs.py " + " ".join(sys.argv[1:]),
        "nodes": args.nodes,
        "topology": "line",
        "loss": args.loss,
        "seed": args.seed,
        "preset": "LongFast",
        "speed": SPEED,
        "runs": args.runs,
        "converged": sum(r["converged"] for r in runs),
        "spread_s": spread,  # over the runs that converged
        "wall_s": wall,
        "each_run": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    spread_text = "never" if spread is None else "{min:g}/{median:g}/{max:g} s".format(**spread)
    wall_text = "none" if wall is None else "{min:.1f}/{median:.1f}/{max:.1f} s".format(**wall)
    print(
        f"{args.nodes} boards in a line, {args.loss:.0%} loss, seed {args.seed}: "
        f"{record['converged']}/{args.runs} runs converged; last board after "
        f"{spread_text} (min/median/max, simulated); wall {wall_text}"
    )


if __name__ == "__main__":
    main()
