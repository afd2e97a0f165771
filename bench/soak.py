"""Soak: thousands of handheld commands while the radios keep rebooting; count what is lost.

    python bench/soak.py [--commands 10000] [--boards 4] [--reset-every 300] [--speed 10]

Each board is the real daemon on a simulated radio over a real pty, with the real meshtastic
client. A neighbourhood of virtual handhelds sends `help`, `post`, `list`, `read` and nonsense in
bursts of ten, each command answered by exactly one reply. Every `--reset-every` commands a
board's radio reboots right after a burst, while its replies are still queued, and the daemon
has to reconnect and deliver them. A burst goes out only once the daemon has the radio, and a
reboot only once the daemon has read the burst: a radio loses what it holds for the client when
it reboots, and these figures count what the daemon loses, not what a radio does.

The daemon's clock runs `--speed` times faster than real time, so the real 1.5 s between
replies and the per-sender rate limits hold in simulated time while the run takes minutes.
The airtime budget is opened to the whole hour: one board answering 2,500 commands an hour
would exceed any region's duty cycle, and the soak is about losing nothing, not about airtime.

Reports commands sent and answered, replies lost (should be 0), duplicated (shown twice, under
two packet ids) and resent (under the first attempt's id, which the handheld does not show
again), radio resets,
reconnects, wall time and peak memory (max RSS of the process, all boards together). Writes
bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from board.airtime import AirtimeBudget
from board.handheld.commands import BoardConfig, CommandHandler
from board.ratelimit import BOARD_RATES, HANDHELD_RATES, RateLimiter
from board.store.bulletins import Store
from board.sync.engine import SyncConfig, SyncEngine
from node.clock import Clock
from node.daemon import Daemon
from node.meshtastic_link import MeshtasticLink
from node.sim.radio import SimulatedRadio
from node.supervisor import SupervisorConfig

logger = logging.getLogger("soak")
RESULTS = Path(__file__).parent / "results"
BURST = 10
POLL = 0.1  # seconds between looks at the radio while waiting
HANDHELDS_PER_BOARD = 40  # a neighbourhood: no one person sends more than the rate limit allows
#: One reply each; `read` names a bulletin this board stored earlier.
COMMANDS = ("help", "post notice Soup {n} at the hall", "list", "read {ref}", "what is {n}?")


@dataclass
class BoardFigures:
    sent: int = 0
    answered: int = 0
    duplicated: int = 0  # replies a person saw twice (under two packet ids)
    resent: int = 0  # resends under the first attempt's id: ACKed again, not shown again
    radio_resets: int = 0
    reconnects: int = 0
    given_up: int = 0


def soak_board(
    index: int, commands: int, reset_every: int, speed: float, timeout: float, workdir: Path
) -> BoardFigures:
    """Send `commands` commands to one board, rebooting its radio every `reset_every`."""
    figures = BoardFigures()
    people = [0x20000000 + index * 0x1000 + i for i in range(HANDHELDS_PER_BOARD)]
    sent_to = dict.fromkeys(people, 0)
    with SimulatedRadio(node_num=0x50AC0000 + index) as radio:
        for num in people:
            radio.add_handheld(num, f"neighbour {num:x}")
        store = Store.open(workdir / f"board-{index}.db")
        daemon = Daemon(
            lambda: MeshtasticLink(radio.port),
            store,
            CommandHandler(store, BoardConfig(), limiter=RateLimiter(HANDHELD_RATES)),
            SyncEngine(store, SyncConfig(), random.Random(index), limiter=RateLimiter(BOARD_RATES)),
            AirtimeBudget(limit_fraction=1.0, hard_fraction=1.0),
            clock=Clock(speed=speed),
            supervision=SupervisorConfig(first_delay=0.05, max_delay=1.0),
        )
        stop = threading.Event()
        thread = threading.Thread(target=daemon.run, args=(stop,), name=f"soak-{index}")
        thread.start()
        ref = "0000"
        try:
            while figures.sent < commands:
                if not daemon.connected.wait(timeout):
                    raise RuntimeError(f"board {index} did not (re)connect within {timeout} s")
                for _ in range(min(BURST, commands - figures.sent)):
                    person = people[figures.sent % len(people)]
                    template = COMMANDS[figures.sent % len(COMMANDS)]
                    radio.receive_text(person, template.format(n=figures.sent, ref=ref))
                    sent_to[person] += 1
                    figures.sent += 1
                if figures.sent % reset_every < BURST:
                    # Reboot once the daemon has read the burst, with its replies still queued.
                    wait_until(lambda: handled(daemon) >= figures.sent, timeout)
                    reconnects = daemon.link_health.reconnects + 1
                    radio.reboot(pause=0.2)
                    figures.radio_resets += 1
                    wait_until(reconnected(daemon, reconnects), timeout)
                else:
                    settle(radio, sent_to, figures.sent, timeout, index)
                ref = latest_ref(radio, people) or ref
            settle(radio, sent_to, figures.sent, timeout, index)
            time.sleep(2.0)  # a duplicate would arrive about now
        finally:
            stop.set()
            thread.join(timeout=30)
            store.close()
        for person in people:
            # A handheld's firmware shows a packet id once: a resend under the same id (only
            # its ACK was lost) is ACKed again, not shown again.
            texts = [t for t in radio.transmissions if t.packet.to == person and t.text]
            shown = len({t.packet.id for t in texts})
            figures.answered += min(shown, sent_to[person])
            figures.duplicated += max(0, shown - sent_to[person])
            figures.resent += len(texts) - shown
        figures.reconnects = daemon.link_health.reconnects
        figures.given_up = daemon.outbox.stats.given_up
    return figures


def handled(daemon: Daemon) -> int:
    """Commands the daemon has answered or queued an answer for (one reply each)."""
    stats = daemon.outbox.stats
    return stats.replies_delivered + stats.given_up + daemon.outbox.replies_waiting


def settle(
    radio: SimulatedRadio, sent_to: dict[int, int], sent: int, timeout: float, index: int
) -> None:
    """Wait for every command's reply; one still missing after `timeout` is counted as lost
    at the end, rather than ending the run without figures."""
    try:
        wait_until(lambda: answered(radio, sent_to) >= sent, timeout)
    except TimeoutError:
        missing = sent - answered(radio, sent_to)
        logger.error("board %d: %d replies still missing after %.0f s", index, missing, timeout)


def reconnected(daemon: Daemon, times: int) -> Callable[[], bool]:
    return lambda: daemon.link_health.reconnects >= times


def answered(radio: SimulatedRadio, sent_to: dict[int, int]) -> int:
    """Commands answered, person by person: a duplicate must not stand in for a missing reply.

    One pass over what the radio sent: this runs every poll, and a pass per person would
    starve the daemons under test of the interpreter once thousands of packets have gone out.
    """
    texts = Counter(t.packet.to for t in radio.transmissions if t.text is not None)
    return sum(min(texts[person], sent) for person, sent in sent_to.items())


def latest_ref(radio: SimulatedRadio, people: list[int]) -> str | None:
    for sent in reversed(radio.transmissions):
        text = sent.text or ""
        if sent.packet.to in people and text.startswith("ok #"):
            return text.split()[1].removeprefix("#")
    return None


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"soak: not reached within {timeout} s")
        time.sleep(POLL)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--boards", type=int, default=4)
    parser.add_argument("--reset-every", type=int, default=300)
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per second")
    parser.add_argument("--timeout", type=float, default=120.0, help="real seconds per wait")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    share = [args.commands // args.boards] * args.boards
    share[0] += args.commands - sum(share)
    results: list[BoardFigures | BaseException] = [BoardFigures()] * args.boards
    with tempfile.TemporaryDirectory() as scratch:

        def run(index: int) -> None:
            try:
                results[index] = soak_board(
                    index, share[index], args.reset_every, args.speed, args.timeout, Path(scratch)
                )
            except BaseException as error:  # reported below, not swallowed
                results[index] = error

        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.boards)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise SystemExit(f"soak failed: {failures!r}")
    boards = [r for r in results if isinstance(r, BoardFigures)]
    total = {
        "commands_sent": sum(b.sent for b in boards),
        "answered": sum(b.answered for b in boards),
        "lost": sum(b.sent - b.answered for b in boards),
        "duplicated": sum(b.duplicated for b in boards),
        "resent": sum(b.resent for b in boards),
        "given_up": sum(b.given_up for b in boards),
        "radio_resets": sum(b.radio_resets for b in boards),
        "reconnects": sum(b.reconnects for b in boards),
        "wall_s": round(time.monotonic() - started, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "boards": [asdict(b) for b in boards],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "soak.json"
    out.write_text(json.dumps(total, indent=2) + "\n")
    for key, value in total.items():
        if key != "boards":
            print(f"{key:14} {value}")
    print(f"written {out}")


if __name__ == "__main__":
    main()
