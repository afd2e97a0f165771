"""The store at scale: a board holding 100,000 bulletins, measured where people and boards feel it.

    python bench/store_scale.py [--bulletins 100000] [--commands 60] [--seed 1]

Builds a file database through the store's own insert path (`Store.merge`, one transaction per
10,000 bulletins; moderations and tool loans through their stores): bulletins on three rings and
every type, texts of 10 to 200 bytes (most around 60), about 10 % expired and not yet purged,
2 % deleted (tombstones), 1 % hidden by a moderator, a tenth of the tools lent. Then measures:

* `list` / `list TYPE` / `more` / `read` / `tally` / `post` through the command layer the daemon
  uses (`CommandHandler` with the daemon's extensions, no rate limiter), and the store queries
  under `list` and `read`;
* ingest: bulletins heard on the board plane as wire-encoded Announce packets, through the sync
  engine's receive path (and its poll, as the daemon's loop calls it), on a copy;
* purging the expired bulletins, on a copy; the first open of the database as a board on
  schema v1 would have it (backup copy and migration), on a copy;
* database size per bulletin (main file after a WAL checkpoint, plus the WAL);
* the real daemon (`python -m node run`) as a child process on that database, with a simulated
  radio: simulated handhelds send list/read/more/post/tally, and the bench samples the process's
  VmRSS/VmHWM (and, for comparison, the same daemon's on an empty database) and times each
  command from `SimulatedRadio.receive_text` to the moment the client hands the reply to the
  radio (`Transmission.at`). The daemon paces texts (1.5 s, or a packet's airtime if longer)
  and waits for the air after every packet it sends, digests included. A command is sent only
  once the air is free again by that reckoning, so the figure is the board's own work (reading
  the pty, the command, the outbox's disk write, the client's serial write), not pacing; a
  reply that still found a board packet on the air (a digest due just then) is counted and
  also reported apart. Each handheld sends at most five commands, inside the rate limiter's
  burst.

Figures go to bench/results/store_scale.json and are printed as a table, with the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from board.airtime import estimate_airtime
from board.bulletin import Bulletin, Tombstone, new_bulletin
from board.config import MeshboardConfig, RingSpec
from board.errors import BoardError
from board.handheld.asks import AskRouter
from board.handheld.commands import MAX_LIST_LINES, BoardConfig, CommandHandler
from board.handheld.subs import Subscriptions
from board.handheld.tools import ToolCommands
from board.messages import Inbound
from board.mod_policy import ModerationPolicy, sign_action
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.migrations import complete_v1
from board.store.moderation import ModerationStore
from board.store.tools import ToolStore
from board.sync.engine import SyncConfig, SyncEngine
from board.types import TypeRegistry
from board.wire.codec import Announce, encode
from board.wire.keys import bulletin_key, id_to_bytes
from board.wire.moderation import Action
from board.wire.tools import ToolStateMsg
from node.sim.radio import ChannelSpec, RadioProfile, SimulatedRadio

RESULTS = Path(__file__).parent / "results"
RINGS = ((0, "public", 0.5), (1, "garden", 0.3), (2, "elders", 0.2))
TYPES = (("meal", 0.25), ("tool", 0.15), ("skill", 0.15), ("childcare", 0.1), ("food", 0.15))
TYPES += (("notice", 0.2),)
EXPIRED, TOMBSTONED, HIDDEN, LENT_TOOLS = 0.10, 0.02, 0.01, 0.10
AUTHORS = 2000
BATCH = 10_000
MODERATOR = "!1234abcd"
_TEXT = """soup stew bread bake lend ladder drill saw hall garden street corner tuesday evening
kids swap lesson knitting soldering bike repair apples pears jam jars boxes pickup co-op share
bring bowl spoon tea cake table chairs help move sofa van saturday sunday morning noon free ask
at the number 12 door blue gate behind church school market tools seeds plants"""
WORDS = tuple(_TEXT.split())
CONFIG = """\
[[ring]]
name = "public"
channel = 0
serve = true

[[ring]]
name = "garden"
channel = 1
serve = true

[[ring]]
name = "elders"
channel = 2
serve = true
"""
#: The radio's channels 1 and 2 have keys of their own, as private rings do.
CHANNELS = (
    ChannelSpec(),
    ChannelSpec("garden", bytes(range(32))),
    ChannelSpec("elders", bytes(range(1, 33))),
)
BOARD_NODE = 0x5B0A4D01
FIRST_HANDHELD = 0x0A000001
PER_HANDHELD = 5  # inside the handheld rate limiter's burst
AIR_MARGIN = 0.3
PAGE_FETCH = (
    MAX_LIST_LINES + 1
)  # what `list` reads for one page  # seconds after the air is free again before the next command


def pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


def text_of(rng: random.Random, serial: int) -> str:
    """10 to 200 bytes, most around 60: what people type on a handheld."""
    size = max(10, min(200, int(rng.lognormvariate(math.log(60), 0.5))))
    words = [f"#{serial}"]
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:size].strip()


@dataclass
class Dataset:
    """What was built, for the measurements to aim at."""

    now: datetime
    stored: list[Bulletin] = field(default_factory=list)  # in the database, expired or not
    tombstoned: int = 0
    hidden: set[str] = field(default_factory=set)
    lent: int = 0

    _active: dict[int, list[Bulletin]] = field(default_factory=dict)

    def active(self, ring: int) -> list[Bulletin]:
        """The ring's bulletins a person can list and read."""
        if ring not in self._active:
            self._active[ring] = [
                b
                for b in self.stored
                if b.ring == ring and b.expires_at > self.now and b.id not in self.hidden
            ]
        return self._active[ring]


def make_bulletin(rng: random.Random, types: TypeRegistry, now: datetime, serial: int) -> Bulletin:
    ring = pick(rng, tuple((r[0], r[2]) for r in RINGS))
    type_name = pick(rng, TYPES)
    rule = types.get(type_name)
    author = f"!{rng.randrange(1, AUTHORS + 1):08x}"
    event = None
    if rng.random() < EXPIRED:
        created = now - rule.lifetime - timedelta(seconds=rng.randrange(3600, 3 * 86400))
    else:
        created = now - timedelta(seconds=rng.randrange(int(rule.lifetime.total_seconds() * 0.9)))
        if type_name in ("meal", "skill", "childcare") and rng.random() < 0.5:
            event = now + timedelta(seconds=rng.randrange(3600, 6 * 86400))
    return new_bulletin(
        types,
        type=type_name,
        text=text_of(rng, serial),
        author=author,
        ring=ring,
        now=created,
        event_time=event,
    )


def build(path: Path, count: int, now: datetime, rng: random.Random) -> Dataset:
    """The database, through the stores' own write paths."""
    types = TypeRegistry()
    data = Dataset(now)
    store = Store.open(path)
    bulletins = [make_bulletin(rng, types, now, n) for n in range(count)]
    doomed = [b for b in bulletins if b.expires_at > now and rng.random() < TOMBSTONED]
    deleted_at = timedelta(minutes=5)
    tombstones = [
        Tombstone(b.id, b.ring, b.author, b.author, b.created_at + deleted_at, b.expires_at)
        for b in doomed
    ]
    gone = {t.bulletin_id for t in tombstones}
    # A merge refuses what expired by its clock: store each bulletin as it arrived, long ago.
    long_ago = now - timedelta(days=60)
    for start in range(0, count, BATCH):
        batch = bulletins[start : start + BATCH]
        store.merge(batch, tombstones if start == 0 else [], long_ago)
    data.stored = [b for b in bulletins if b.id not in gone]
    data.tombstoned = len(tombstones)
    key = BoardKey.generate()
    moderation = ModerationStore(store.engine)
    live = [b for b in data.stored if b.expires_at > now]
    for b in rng.sample(live, int(len(live) * HIDDEN)):
        target = id_to_bytes(b.id)
        msg = sign_action(key, Action.REMOVE, target, b.ring, MODERATOR, now, b.expires_at)
        moderation.apply(msg, now)
        data.hidden.add(b.id)
    tools = ToolStore(store)
    live_tools = [b for b in live if b.type == "tool" and b.id not in data.hidden]
    for b in rng.sample(live_tools, int(len(live_tools) * LENT_TOOLS)):
        stamp = int(now.timestamp()) - rng.randrange(86400)
        state = ToolStateMsg(bulletin_key(b.id), b.ring, True, stamp, 0, "Ben")
        tools.apply(state)
        data.lent += 1
    store.close()
    return data


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0, "p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def timed(samples: list[float], action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    samples.append(time.perf_counter() - started)
    return result


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def rings_config() -> MeshboardConfig:
    return MeshboardConfig(rings=tuple(RingSpec(name, channel) for channel, name, _ in RINGS))


def handler_like_the_daemon(store: Store) -> CommandHandler:
    """The command handler `Daemon.assemble` builds, without its rate limiter."""
    board = BoardConfig(rings=rings_config())
    tools = ToolStore(store)
    extensions = (ToolCommands(store, tools, AskRouter(store), board.tz), Subscriptions(store))
    return CommandHandler(store, board, extensions=extensions)


def measure_store(path: Path, data: Dataset, rng: random.Random) -> dict[str, Any]:
    """The store queries beneath `list` (first page) and `read`."""
    store = Store.open(path)
    lists: list[float] = []
    reads: list[float] = []
    for _ in range(200):
        ring = rng.choice(RINGS)[0]
        type_name = rng.choice([None, None, "meal", "tool", "notice"])
        timed(lists, lambda r=ring, t=type_name: store.page(data.now, r, t, limit=PAGE_FETCH))
    for _ in range(200):
        ring = rng.choice(RINGS)[0]
        target = rng.choice(data.active(ring))

        def read(target: Bulletin = target, ring: int = ring) -> None:
            with contextlib.suppress(BoardError):  # a 4-character ref may be ambiguous
                store.get(target.ref, ring, now=data.now)

        timed(reads, read)
    store.close()
    return {"store_list_page": percentiles(lists), "store_get": percentiles(reads)}


def measure_commands(path: Path, data: Dataset, rng: random.Random, rounds: int) -> dict[str, Any]:
    """Handheld commands through the command layer, as the daemon's thread runs them."""
    store = Store.open(path)
    handler = handler_like_the_daemon(store)
    samples: dict[str, list[float]] = {}
    answers: dict[str, list[str]] = {}
    ambiguous = 0
    for n in range(rounds):
        ring = rng.choice(RINGS)[0]
        sender = f"!{0x0B000000 + n:08x}"
        ref = rng.choice(data.active(ring)).ref
        for name, text in (
            ("list", "list"),
            ("list type", f"list {rng.choice(['meal', 'tool', 'notice', 'childcare'])}"),
            ("more", "more"),
            ("read", f"read #{ref}"),
            ("tally", "tally"),
            ("post", f"post notice Bench notice {n} at the hall"),
        ):
            inbound = Inbound(sender, ring, text, True, data.now)
            outcome = timed(samples.setdefault(name, []), lambda i=inbound: handler.handle(i))
            answer = outcome.replies[0].text
            answers.setdefault(name, []).append(answer)
            ambiguous += name == "read" and "send more of it" in answer
    store.close()
    figures: dict[str, Any] = {f"command_{k}": percentiles(v) for k, v in samples.items()}
    figures["read_refs_ambiguous"] = ambiguous
    figures["example_list_reply"] = answers["list"][0]
    return figures


def measure_ingest(path: Path, data: Dataset, rng: random.Random, count: int) -> dict[str, Any]:
    """Fresh bulletins heard as Announce packets from two neighbouring boards."""
    store = Store.open(path)
    config = rings_config()
    engine = SyncEngine(
        store,
        SyncConfig(rings=config.served),
        random.Random(1),
        tools=ToolStore(store),
        policy=ModerationPolicy(config),
    )
    now = data.now
    engine.start(now, "!5b0a4d01")
    types = TypeRegistry()
    packets = []
    for n in range(count):
        b = make_bulletin(rng, types, now, 10_000_000 + n)
        while b.expires_at <= now:
            b = make_bulletin(rng, types, now, 10_000_000 + n)
        packets.append((encode(Announce.of(b)), b.ring))
    per_packet: list[float] = []
    started = time.perf_counter()
    for n, (payload, ring) in enumerate(packets):
        moment = now + timedelta(seconds=n * 0.1)
        sender = "!b0a4d002" if n % 2 else "!b0a4d003"

        def one(
            payload: bytes = payload,
            ring: int = ring,
            moment: datetime = moment,
            sender: str = sender,
        ) -> None:
            engine.receive(payload, ring, sender, moment)
            engine.poll(moment)

        timed(per_packet, one)
    elapsed = time.perf_counter() - started
    stored = engine.stats.stored
    store.close()
    return {
        "ingest_packets": count,
        "ingest_stored": stored,
        "ingest_per_s": round(stored / elapsed, 1),
        "ingest_packet": percentiles(per_packet),
    }


def measure_purge(path: Path, now: datetime) -> dict[str, Any]:
    store = Store.open(path)
    expired = store.count() - store.count(now=now)
    started = time.perf_counter()
    removed = store.purge_expired(now)
    elapsed = time.perf_counter() - started
    store.close()
    return {"purge_expired": expired, "purge_removed": removed, "purge_s": round(elapsed, 3)}


def measure_migration(path: Path) -> dict[str, Any]:
    """Opening the database as a board still on schema v1 would have it: the first start
    after an upgrade (the backup copy, then the v2 indexes), through `Store.open`.
    """
    with sqlite3.connect(path) as db:
        v2 = db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        for (name,) in v2.fetchall():
            db.execute(f"DROP INDEX {name}")
        complete_v1(db)
        db.execute("PRAGMA user_version = 0")
    db.close()
    started = time.perf_counter()
    Store.open(path).close()
    return {"migrate_v1_s": round(time.perf_counter() - started, 2)}


def measure_size(path: Path, bulletins: int) -> dict[str, Any]:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    wal = Path(f"{path}-wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return {
        "db_bytes": size,
        "db_bulletins": bulletins,
        "db_bytes_per_bulletin": round(size / bulletins, 1),
    }


class Sampler:
    """VmRSS and VmHWM of a process, read from /proc every quarter second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_kib: list[int] = []
        self.hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self) -> tuple[int, int]:
        return self.read_of(self.pid)

    @staticmethod
    def read_of(pid: int) -> tuple[int, int]:
        """VmRSS and VmHWM in KiB."""
        fields = {}
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                fields[name] = value
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                rss, hwm = self.read()
            except (OSError, KeyError):
                return
            self.rss_kib.append(rss)
            self.hwm_kib = max(self.hwm_kib, hwm)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def air_free_at(radio: SimulatedRadio) -> float:
    """When the daemon's outbox may send the next text, by its own pacing rules."""
    free = 0.0
    for t in radio.transmissions:
        airtime = estimate_airtime(len(t.packet.decoded.payload))
        gap = max(1.5, airtime) if t.text is not None else airtime
        free = max(free, t.at + gap)
    return free


def on_air_before(radio: SimulatedRadio, asked: float, replied: float) -> bool:
    """Whether a board-plane packet (a digest, an announce) held the air between a command
    arriving and its reply: the outbox waits for its airtime before it sends the reply.
    """
    return any(
        t.text is None and asked - estimate_airtime(len(t.packet.decoded.payload)) < t.at < replied
        for t in radio.transmissions
    )


@contextmanager
def daemon_process(port: str, db: Path, config: Path) -> Iterator[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "node", "--config", str(config), "run"]
    command += ["--port", port, "--db", str(db), "--tz", "UTC"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        errors = [line for line in log if " ERROR " in line or "Traceback" in line]
        if errors:
            print("daemon errors:\n" + "".join(errors), file=sys.stderr)


def measure_daemon(
    path: Path, refs: dict[int, list[str]], rng: random.Random, commands: int, scratch: Path
) -> dict[str, Any]:
    config = scratch / "meshboard.toml"
    config.write_text(CONFIG, encoding="utf-8")
    handhelds = [FIRST_HANDHELD + n for n in range(math.ceil(commands / PER_HANDHELD))]
    profile = RadioProfile(channels=CHANNELS)
    latencies: dict[str, list[float]] = {}
    timeline: list[tuple[float, str, float]] = []  # seconds after start, command, ms
    gated: list[float] = []
    with SimulatedRadio(BOARD_NODE, profile) as radio:
        for num in handhelds:
            radio.add_handheld(num, f"Neighbour {num & 0xFF}")
        with daemon_process(radio.port, path, config) as process:
            started = time.monotonic()
            sampler = Sampler(process.pid)
            radio.wait_connected(timeout=120)
            connected_s = time.monotonic() - started
            # Start-up work (the first purge, sync reading the store) is over once a first
            # command is answered; that one is reported on its own.
            first_at = time.monotonic()
            radio.receive_text(handhelds[0], "help")
            radio.wait_for_texts(handhelds[0], 1, timeout=120)
            first_reply_s = radio.transmissions[-1].at - first_at
            idle_rss, _ = sampler.read()
            for n in range(commands):
                who = handhelds[n // PER_HANDHELD]
                ring = n % len(RINGS)
                name, text = rng.choice(
                    (
                        ("list", "list"),
                        ("list type", f"list {rng.choice(['meal', 'tool', 'notice'])}"),
                        ("more", "more"),
                        ("read", f"read #{rng.choice(refs[ring])}"),
                        ("post", f"post notice Bench notice {n} at the hall"),
                        ("tally", "tally"),
                    )
                )
                # A digest may go out while we wait: wait again until the air is free.
                while (wait := air_free_at(radio) + AIR_MARGIN - time.monotonic()) > 0:
                    time.sleep(wait)
                before = len(radio.texts_to(who))
                asked = time.monotonic()
                radio.receive_text(who, text, channel=ring)
                radio.wait_for_texts(who, before + 1, timeout=60)
                reply = [t for t in radio.transmissions if t.packet.to == who and t.text][before]
                latency = reply.at - asked
                latencies.setdefault(name, []).append(latency)
                if on_air_before(radio, asked, reply.at):
                    gated.append(latency)  # the reply waited for a board packet's airtime
                timeline.append(
                    (round(asked - started, 2), text, round(1000 * (reply.at - asked), 1))
                )
            sampler.stop()
    everything = [x for v in latencies.values() for x in v]
    clear = list(everything)
    for latency in gated:
        clear.remove(latency)
    return {
        "daemon_connect_s": round(connected_s, 2),
        "daemon_first_reply_s": round(first_reply_s, 3),
        "daemon_commands": commands,
        "daemon_reply": percentiles(everything),
        "daemon_reply_clear_air": percentiles(clear),
        "daemon_reply_by_command": {k: percentiles(v) for k, v in sorted(latencies.items())},
        "daemon_replies_behind_a_board_packet": len(gated),
        "daemon_slowest": sorted(timeline, key=lambda t: -t[2])[:5],
        "daemon_idle_rss_mib": round(idle_rss / 1024, 1),
        "daemon_max_rss_mib": round(max(sampler.rss_kib, default=idle_rss) / 1024, 1),
        "daemon_hwm_mib": round(sampler.hwm_kib / 1024, 1),
    }


def measure_daemon_baseline(scratch: Path) -> dict[str, Any]:
    """The same daemon on an empty database, answering `help`: what its imports cost."""
    config = scratch / "meshboard.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with SimulatedRadio(BOARD_NODE, RadioProfile(channels=CHANNELS)) as radio:
        radio.add_handheld(FIRST_HANDHELD, "Neighbour")
        with daemon_process(radio.port, scratch / "empty.db", config) as process:
            radio.wait_connected(timeout=120)
            radio.receive_text(FIRST_HANDHELD, "help")
            radio.wait_for_texts(FIRST_HANDHELD, 1, timeout=120)
            rss, _ = Sampler.read_of(process.pid)
    return {"daemon_empty_db_rss_mib": round(rss / 1024, 1)}


def table(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    def pp(key: str) -> str:
        f = figures[key]
        return f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms (n={f['n']})"

    rows = [
        (
            "bulletins stored / tombstones / hidden",
            f"{figures['db_bulletins']:,} / {figures['tombstoned']:,} / {figures['hidden']:,}",
            "",
        ),
        ("build (merge in 10k batches + moderation, loans)", f"{figures['build_s']} s", ""),
        (f"store: list page (Store.page, {PAGE_FETCH} bulletins)", pp("store_list_page"), ""),
        ("store: get by ref", pp("store_get"), ""),
    ]
    for name in ("list", "list type", "more", "read", "tally", "post"):
        target = "p50 < 5 ms" if name == "list" else ""
        rows.append((f"command `{name}`", pp(f"command_{name}"), target))
    rows += [
        (
            "ingest (Announce via SyncEngine.receive + poll)",
            f"{figures['ingest_per_s']} bulletins/s ({figures['ingest_stored']} stored)",
            "",
        ),
        ("purge expired", f"{figures['purge_removed']:,} in {figures['purge_s']} s", ""),
        (
            "first open after the upgrade: v1 -> v2 (backup + indexes)",
            f"{figures['migrate_v1_s']} s",
            "",
        ),
        (
            "database size",
            f"{figures['db_bytes_per_bulletin']} bytes/bulletin "
            f"({figures['db_bytes'] / 1e6:.1f} MB)",
            "",
        ),
    ]
    if "daemon_reply" in figures:
        reply, clear = figures["daemon_reply"], figures["daemon_reply_clear_air"]
        rows += [
            (
                "daemon: start to connected / first reply",
                f"{figures['daemon_connect_s']} s / {figures['daemon_first_reply_s']} s",
                "",
            ),
            (
                "daemon: command -> reply handed to radio",
                f"p50 {reply['p50_ms']} ms, p99 "
                f"{reply['p99_ms']} ms, max {reply['max_ms']} ms (n={reply['n']})",
                "< 100 ms",
            ),
            (
                "  of which the air was clear (no board packet before the reply)",
                f"p50 {clear['p50_ms']} ms, p99 "
                f"{clear['p99_ms']} ms, max {clear['max_ms']} ms (n={clear['n']})",
                "< 100 ms",
            ),
            (
                "daemon: VmRSS idle / max, VmHWM (on an empty database)",
                f"{figures['daemon_idle_rss_mib']} / {figures['daemon_max_rss_mib']} MiB, "
                f"{figures['daemon_hwm_mib']} MiB = {figures['daemon_hwm_mib'] * 1.048576:.1f} MB "
                f"({figures['daemon_empty_db_rss_mib']} MiB)",
                "< 100 MB, either kind",
            ),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bulletins", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=60, help="sent to the daemon process")
    parser.add_argument("--ingest", type=int, default=2000, help="Announce packets to ingest")
    parser.add_argument("--rounds", type=int, default=150, help="of each command, in process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-daemon", action="store_true", help="skip the daemon process")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    load_before = os.getloadavg()
    now = datetime.now(UTC).replace(microsecond=0)
    figures: dict[str, Any] = {"command": " ".join(["python", *sys.argv])}
    scratch = Path(tempfile.mkdtemp(prefix="meshboard-scale-"))
    try:
        db = scratch / "board.db"
        started = time.perf_counter()
        data = build(db, args.bulletins, now, rng)
        figures["build_s"] = round(time.perf_counter() - started, 1)
        figures.update(tombstoned=data.tombstoned, hidden=len(data.hidden), lent=data.lent)
        figures.update(measure_size(db, len(data.stored)))
        figures.update(measure_store(db, data, rng))
        figures.update(measure_commands(db, data, rng, args.rounds))
        copy_database(db, scratch / "ingest.db")
        figures.update(measure_ingest(scratch / "ingest.db", data, rng, args.ingest))
        copy_database(db, scratch / "purge.db")
        figures.update(measure_purge(scratch / "purge.db", now))
        copy_database(db, scratch / "v1.db")
        figures.update(measure_migration(scratch / "v1.db"))
        if not args.no_daemon:
            refs = {
                ring: [b.ref for b in rng.sample(data.active(ring), 50)] for ring, _, _ in RINGS
            }
            # The simulated radio's thread stamps each transmission: a collection of the
            # dataset's 100,000 objects in this process must not pause it mid-measurement.
            del data
            gc.collect()
            gc.freeze()
            figures.update(measure_daemon(db, refs, rng, args.commands, scratch))
            figures.update(measure_daemon_baseline(scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures["load_average"] = {"before": load_before, "after": os.getloadavg()}
    figures["cpus"] = os.cpu_count()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store_scale.json").write_text(json.dumps(figures, indent=2) + "\n")
    rows = table(figures)
    width = max(len(r[0]) for r in rows)
    for what, figure, target in rows:
        print(f"{what:<{width}}  {figure}" + (f"   [target {target}]" if target else ""))
    before, after = figures["load_average"]["before"], figures["load_average"]["after"]
    print(f"load average before {before[0]:.2f}, after {after[0]:.2f} on {os.cpu_count()} cores")
    print(f"command: {figures['command']}; figures in {RESULTS / 'store_scale.json'}")


if __name__ == "__main__":
    main()
