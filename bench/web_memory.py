"""The web page's memory and speed: `meshboard web` as a child process over a busy board.

    python bench/web_memory.py [--bulletins 2000] [--requests 200] [--seed 1]

Builds a database through the store's own write paths (`bench/store_scale.py`'s `build`: three
rings, every type, some expired, deleted, hidden by a moderator or lent), starts the real
`meshboard web` on it (the public ring on the web), and fetches the week page, a bulletin page,
`/feed.xml` and `/bulletins.json` in turn, `--requests` times in all, over HTTP. It reports the
process's memory as Linux counts it (/proc/PID/status VmRSS and VmHWM, and from
/proc/PID/smaps_rollup the proportional and private parts: libraries shared with the daemon
count in RSS but only once on the Pi), before the first request and after the last, the
response sizes, and the median and worst time of each page. The issue's target is under 60 MB
resident on a Raspberry Pi Zero 2; this machine's architecture is in the figures, as pointers
and libraries differ in size between x86-64, arm64 and armhf.

Figures go to bench/results/web_memory.json and are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from store_scale import build  # the same busy board as the store bench

RESULTS = Path(__file__).parent / "results"
CONFIG = """\
[[ring]]
name = "public"
channel = 0
web = true

[[ring]]
name = "garden"
channel = 1

[[ring]]
name = "elders"
channel = 2
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bulletins", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def memory(pid: int) -> dict[str, float]:
    """The process's memory in MiB, from /proc."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    rollup = Path(f"/proc/{pid}/smaps_rollup")
    if rollup.exists():
        private = 0
        for line in rollup.read_text().splitlines()[1:]:
            name, _, value = line.partition(":")
            if name == "Pss":
                found["Pss"] = int(value.split()[0]) / 1024
            elif name in ("Private_Clean", "Private_Dirty"):
                private += int(value.split()[0])
        found["Private"] = private / 1024
    return {k: round(v, 1) for k, v in found.items()}


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"meshboard web exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"meshboard web did not answer {url} in {timeout} s")


def fetch(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as response:
        size = len(response.read())
    return time.perf_counter() - start, size


def main() -> None:
    args = parse_args()
    rng = random.Random(args.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "board.db"
        data = build(db, args.bulletins, now, rng)
        config = Path(tmp) / "meshboard.toml"
        config.write_text(CONFIG, encoding="utf-8")
        port = 18080 + os.getpid() % 1000
        public = data.active(0)
        command = [sys.executable, "-m", "node", "--config", str(config), "web"]
        command += ["--db", str(db), "--listen", f"127.0.0.1:{port}"]
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(base + "/feed.xml", process)
            before = memory(process.pid)
            pages = ["/", "/tools", "/notices", f"/b/{public[0].ref}" if public else "/"]
            pages += ["/feed.xml", "/bulletins.json"]
            times: dict[str, list[float]] = {page: [] for page in pages}
            sizes: dict[str, int] = {}
            for n in range(args.requests):
                page = pages[n % len(pages)]
                took, sizes[page] = fetch(base + page)
                times[page].append(took)
            after = memory(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)
    record: dict[str, Any] = {
        "command": " ".join(["python", "bench/web_memory.py", *sys.argv[1:]]),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "bulletins": args.bulletins,
        "public_active": len(public),
        "requests": args.requests,
        "memory_mib_before_requests": before,
        "memory_mib_after_requests": after,
        "pages": {
            page: {
                "bytes": sizes[page],
                "median_ms": round(statistics.median(t) * 1000, 1),
                "max_ms": round(max(t) * 1000, 1),
            }
            for page, t in times.items()
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "web_memory.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    json.dump(record, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
