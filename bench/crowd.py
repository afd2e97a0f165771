"""Crowd: how long a neighbour waits for the board after a crowd of new ids (issue 15).

    python bench/crowd.py [--crowd 60] [--speed 5] [--command list]

Why: limits per sender do nothing against many ids that send one command each. Sixty spoofed
ids once delayed a neighbour's answer by about two minutes, because replies left the outbox
first in, first out, one per 2.25 s. The outbox now takes replies in turns across senders and
lets new senders into the rotation at a capped rate (`node/outbox.py`); the target is the
neighbour's reply on the air within 20 s.

Setup, run once with the fair outbox and once with the old first-in-first-out order
(`Outbox.fifo`), each on a fresh board: the real daemon (`Daemon.assemble`, the unmodified
meshtastic client over a pty) on one `SimulatedRadio` with firmware 2.7.26's client rules
(texts 2 s apart, PKI direct messages), sharing a `Clock` that runs `--speed` times real time.
Topology: one radio, no mesh, no loss; every reply is ACKed as the radio takes it. The
neighbour sends `help` first and is answered, so the board knows them; then `--crowd` ids it
has never heard send `--command` once each (PKI DMs, as `SimulatedRadio.receive_text` makes
them), and once the board has taken the crowd's commands (their replies are queued), the
neighbour sends `--command`: the moment the old order made them wait longest. Sooner, the wait
would include the daemon's handling of the crowd's commands, which takes `--speed` times longer
in simulated seconds than on a board (`handled_s`).

Figures, in simulated seconds, from a command handed to the radio to its reply leaving it
(`Transmission.at`): the neighbour's wait; the crowd's median and longest; replies given up
and crowd ids never answered (both must be 0: the overflow is served later, not dropped);
`handled_s`, from the first crowd command to the board queueing the last crowd reply;
`drain_s`, from the first crowd command to the last reply. `wall_s` is real time.

A faster clock distorts the figures a little: the meshtastic client sleeps 100 real ms after
every write (0.5 simulated s at speed 5), and the daemon's handling of each command is slower
in simulated seconds too; `--speed 1` is exact and takes about five minutes.

Prints a table and writes bench/results/crowd.json: one object per run, the arguments and the
command that wrote it.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from board.messages import Reply
from board.store.bulletins import Store
from node.clock import Clock
from node.daemon import Daemon
from node.outbox import Outbox, Packet
from node.sim.radio import SimulatedRadio, node_id

RESULTS = Path(__file__).parent / "results"
NEIGHBOUR = 0x0BADCAFE
CROWD_BASE = 0x5EED0000  # the crowd's node numbers: CROWD_BASE + 0, + 1, ...
TARGET = 20.0  # simulated seconds: issue 15's bound on the neighbour's wait


@dataclass(frozen=True)
class Figures:
    order: str
    neighbour_wait_s: float
    crowd_median_s: float
    crowd_max_s: float
    crowd_unanswered: int
    given_up: int
    handled_s: float
    drain_s: float
    wall_s: float

    def as_json(self) -> dict[str, object]:
        """The row as the table heads it (`unanswered`), seconds to the millisecond."""
        row = asdict(self)
        row["unanswered"] = row.pop("crowd_unanswered")
        return {
            key: round(row[key], 3) if isinstance(row[key], float) else row[key]
            for key in ("order", "neighbour_wait_s", "crowd_median_s", "crowd_max_s",
                        "unanswered", "given_up", "handled_s", "drain_s", "wall_s")
        }  # fmt: skip


def one_run(scratch: Path, *, fifo: bool, crowd: int, speed: float, command: str) -> Figures:
    started = time.monotonic()
    clock = Clock(speed=speed)
    with SimulatedRadio() as radio:
        radio.use_clock(clock)  # the firmware's 2 s between texts, in the board's time
        radio.add_handheld(NEIGHBOUR, "Neighbour")
        store = Store.open(scratch / f"{'fifo' if fifo else 'fair'}.db")
        daemon = Daemon.assemble(radio.port, store, clock=clock)
        outbox = daemon.outbox
        outbox.fifo = fifo
        crowd_ids = {node_id(num) for num in range(CROWD_BASE, CROWD_BASE + crowd)}
        queued: list[float] = []  # when the board queued each crowd reply
        crowd_queued = threading.Event()

        def counting_put(packet: Packet) -> None:
            Outbox.put(outbox, packet)
            if isinstance(packet, Reply) and packet.to in crowd_ids:
                queued.append(clock.monotonic())
                if len(queued) == crowd:
                    crowd_queued.set()

        setattr(outbox, "put", counting_put)  # noqa: B010 (a method, replaced on the instance)
        stop = threading.Event()
        thread = threading.Thread(target=daemon.run, args=(stop,), name="crowd-daemon")
        thread.start()
        try:
            if not daemon.connected.wait(30):
                raise RuntimeError("the daemon did not connect to the simulated radio")
            radio.receive_text(NEIGHBOUR, "help")
            radio.wait_for_texts(NEIGHBOUR, 1, timeout=60)  # answered: the board knows them

            sent_at: dict[int, float] = {}
            for num in range(CROWD_BASE, CROWD_BASE + crowd):
                sent_at[num] = clock.monotonic()
                radio.receive_text(num, command)
            if not crowd_queued.wait(clock.to_real(crowd * 10.0)):
                raise RuntimeError("the board did not take the crowd's commands")
            neighbour_sent = clock.monotonic()
            radio.receive_text(NEIGHBOUR, command)

            drain_timeout = clock.to_real(crowd * 10.0 + 120.0)
            radio.wait_for(
                lambda sent: len([t for t in sent if t.text]) >= crowd + 2, drain_timeout
            )
            texts = [t for t in radio.transmissions if t.text is not None]
            [_, answer] = [t for t in texts if t.packet.to == NEIGHBOUR]
            answered = {t.packet.to: t.at for t in texts if t.packet.to in sent_at}
            waits = [answered[num] - sent_at[num] for num in answered]
            return Figures(
                order="fifo" if fifo else "fair",
                neighbour_wait_s=answer.at - neighbour_sent,
                crowd_median_s=statistics.median(waits),
                crowd_max_s=max(waits),
                crowd_unanswered=crowd - len(answered),
                given_up=outbox.stats.given_up,
                handled_s=max(queued) - min(sent_at.values()),
                drain_s=max(t.at for t in texts) - min(sent_at.values()),
                wall_s=time.monotonic() - started,
            )
        finally:
            stop.set()
            thread.join(timeout=30)
            store.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--crowd", type=int, default=60, help="new ids, one command each")
    parser.add_argument("--speed", type=float, default=5.0, help="simulated s per real s")
    parser.add_argument("--command", default="list", help="what everyone sends")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        runs = [
            one_run(
                Path(scratch), fifo=fifo, crowd=args.crowd, speed=args.speed, command=args.command
            )
            for fifo in (False, True)
        ]
    print(
        f"{args.crowd} new ids send {args.command!r} once each, then a known neighbour; one "
        f"simulated radio, no loss, clock at {args.speed:g}x (python bench/crowd.py "
        f"--crowd {args.crowd} --speed {args.speed:g} --command {args.command})"
    )
    header = (
        "order",
        "neighbour_wait_s",
        "crowd_median_s",
        "crowd_max_s",
        "unanswered",
        "given_up",
        "handled_s",
        "drain_s",
        "wall_s",
    )
    widths = [max(len(h), 6) for h in header]
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for r in runs:
        row = (
            r.order,
            f"{r.neighbour_wait_s:.1f}",
            f"{r.crowd_median_s:.1f}",
            f"{r.crowd_max_s:.1f}",
            str(r.crowd_unanswered),
            str(r.given_up),
            f"{r.handled_s:.1f}",
            f"{r.drain_s:.1f}",
            f"{r.wall_s:.0f}",
        )
        print(" ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)))
    fair = runs[0]
    verdict = "met" if fair.neighbour_wait_s <= TARGET else "MISSED"
    print(f"target: the neighbour's reply within {TARGET:g} s with the fair outbox: {verdict}")
    record = {
        "command": "python bench/crowd.py " + " ".join(sys.argv[1:]),
        "crowd": args.crowd,
        "speed": args.speed,
        "command_sent": args.command,
        "target_s": TARGET,
        "target_met": fair.neighbour_wait_s <= TARGET,
        "runs": [r.as_json() for r in runs],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "crowd.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
