"""How long a board node is deaf after its radio comes back: python bench/reconnect.py [RUNS]

Runs the real daemon (default supervisor settings: 1 s first retry, doubling to 60 s) against a
simulated radio, unplugs the radio for OUTAGE seconds, plugs it in again and sends `help` at
that moment; reports the seconds from the replug to the answer. The answer can only come after
the backoff's next attempt and the config handshake (about 0.5 s over a pty). Figures as JSON
on stdout and in bench/results/reconnect.json (with each run's time and the command).
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
OUTAGES = (0.0, 5.0)  # seconds unplugged


def one_run(scratch: Path, index: int, outage: float) -> float:
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        store = Store.open(scratch / f"run{index}-{outage}.db")
        daemon = Daemon.assemble(radio.port, store)
        stop = threading.Event()
        thread = threading.Thread(target=daemon.run, args=(stop,))
        thread.start()
        try:
            if not daemon.connected.wait(30):
                raise RuntimeError("daemon did not connect")
            radio.unplug()
            time.sleep(outage)  # the outage itself is what is measured against
            radio.replug()
            back = time.monotonic()
            radio.receive_text(HANDHELD, "help")
            radio.wait_for_texts(HANDHELD, 1, timeout=120)
            return time.monotonic() - back
        finally:
            stop.set()
            thread.join()
            store.close()


def main(runs: int) -> None:
    figures: dict[str, dict[str, dict[str, float]]] = {}
    each_run: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for outage in OUTAGES:
            times = [one_run(Path(scratch), i, outage) for i in range(runs)]
            figures[f"unplugged_{outage:g}s"] = {
                "replug_to_answer_s": {"median": statistics.median(times), "max": max(times)}
            }
            each_run[f"unplugged_{outage:g}s"] = times
    print(json.dumps({"runs": runs, **figures}, indent=2))
    record = {
        "command": "python bench/reconnect.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        **figures,
        "each_run_replug_to_answer_s": each_run,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reconnect.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
