"""How long a board node takes from start to serving, on the simulated radio.

    python bench/connect.py [RUNS]

Starts the real daemon (MeshtasticLink over SerialInterface) against a fresh simulated radio RUNS
times and reports the time until the config handshake completes, and until the first reply to
a handheld's `help` leaves the daemon. Figures as JSON on stdout and in
bench/results/connect.json (with each run's times and the command that wrote them).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from board.store.bulletins import Store
from node.daemon import Daemon
from node.sim.radio import SimulatedRadio

RESULTS = Path(__file__).parent / "results"
HANDHELD = 0x1234ABCD


def one_run(scratch: Path, index: int) -> tuple[float, float]:
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        store = Store.open(scratch / f"run{index}.db")
        daemon = Daemon.assemble(radio.port, store)
        stop = threading.Event()
        started = time.monotonic()
        thread = threading.Thread(target=daemon.run, args=(stop,))
        thread.start()
        if not daemon.connected.wait(30):
            raise RuntimeError("daemon did not connect")
        connected = time.monotonic() - started
        asked = time.monotonic()
        radio.receive_text(HANDHELD, "help")
        radio.wait_for_texts(HANDHELD, 1, timeout=30)
        replied = time.monotonic() - asked
        stop.set()
        thread.join()
        return connected, replied


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        results = [one_run(Path(scratch), i) for i in range(runs)]
    connect = [c for c, _ in results]
    reply = [r for _, r in results]
    figures = {
        "runs": runs,
        "connect_s": {"median": statistics.median(connect), "max": max(connect)},
        "first_reply_s": {"median": statistics.median(reply), "max": max(reply)},
    }
    print(json.dumps(figures, indent=2))
    # The file also keeps each run, so a README figure can be traced to what it summarises.
    record = {
        "command": "python bench/connect.py " + " ".join(sys.argv[1:]),
        **figures,
        "each_run": [{"connect_s": c, "first_reply_s": r} for c, r in results],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "connect.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
