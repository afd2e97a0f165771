"""Random and mutated frames on the serial line of a serving board: it must neither crash nor stop.

    python bench/fuzz_serial.py [COUNT] [--seed N] [--probe-every N]

A real daemon serves through the real meshtastic client on a simulated radio's pty while COUNT
random or mutated frames (valid FromRadio frames with bit flips, cut short, with wrong lengths,
stray start bytes, pure noise) go down the line, mixed with valid ones: texts and board-plane
packets from handhelds and neighbouring boards, telemetry, node info, logs. The valid ones are
what a 2.7.26 radio hands its client: a text direct message to the board arrives PKI-encrypted
on channel 0 with its sender's public key (a channel-key one is dropped by the radio since
2.7.14), a broadcast on its channel. Every PROBE_EVERY frames a new handheld, known to the radio,
sends `help` as such a direct message and must be answered. At the end the daemon must still be
serving, no exception may have come out of `board/` or `node/` on any thread, and the store must
pass `PRAGMA integrity_check`. Prints what was fed, how long it took, the crashes, and what the
outbox and the radio made of the replies (attempts, ACKs, what the radio refused: its rules for
clients, `node/sim/phone_api.py`, hold throughout) as JSON, and writes the same, with the
arguments and the command, to bench/results/fuzz_serial.json.

Two messages that the client acts on by design are not fed, and are counted instead: `rebooted`
(the client starts the handshake again and reports the connection lost, so the daemon exits for
its supervisor to restart it) and a `queueStatus` with no free slot (the client stops sending
until a QueueStatus reports room again). The simulated radio reports room after each packet the
client hands it, in answer to a heartbeat, and unasked once its queue drains after it reported
it full itself; a fed "full" is not the radio's own state, so nothing unasked would follow it,
and the client would stall until its next heartbeat, five minutes on. The client's reader is
modelled byte for byte (`ClientReader`) to know what it will parse, and the line is padded back
to idle after each frame, so that a cut-short frame never swallows the simulated radio's own
frames that follow it.

The daemon and the radio share one clock, run `--speed` times faster than real time: the radio
measures its 2 s between texts (and the LoRa airtime its TX queue drains at) in the same seconds
the daemon paces its replies in. A radio thread that falls behind the busy line reads two
replies at once, so a fast run counts a few as rate limited (their NAK goes to node 0 on the
air, so the outbox tries again after its ACK timeout). A mutated frame names senders the radio
never heard of: a reply to one is refused for want of its public key (PKI_SEND_FAIL_PUBLIC_KEY,
2.7.19+). The airtime budget is lifted for the run (the budget is not under test, and a long
run would exhaust an hour's worth); everything else is as `meshboard run` builds it, the reply
pacing (`node.outbox.MIN_TEXT_INTERVAL`) included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import meshtastic
from meshtastic.protobuf import mesh_pb2, portnums_pb2, telemetry_pb2

from board.airtime import AirtimeBudget
from board.bulletin import new_bulletin
from board.handheld.commands import BoardConfig, CommandHandler
from board.ratelimit import BOARD_RATES, HANDHELD_RATES, RateLimiter
from board.store.bulletins import Store
from board.sync.engine import SyncConfig, SyncEngine
from board.sync.reconcile import summarise
from board.types import TypeRegistry
from board.wire.codec import Announce, Request, encode
from node.clock import SYSTEM_CLOCK, Clock
from node.daemon import Daemon
from node.link import BOARD_PORT
from node.meshtastic_link import MeshtasticLink
from node.sim.framing import START1, START2, encode_frame
from node.sim.radio import BROADCAST_NUM, SimulatedRadio
from node.sim.router import stand_in_key

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent
OURS = (str(REPO / "board"), str(REPO / "node"))
CLIENT = str(Path(meshtastic.__file__).parent)
HANDHELDS = (0x1234ABCD, 0x0BADCAFE, 0x00C0FFEE)
BOARDS = (0x0B0A4D02, 0x0B0A4D03)
PROBE_BASE = 0x7E000000  # probes come from fresh handhelds, never limited by earlier probes
PROBE_TIMEOUT = 180.0  # seconds: replies wait behind what the fuzz provoked
MAX_FRAME = 512  # MAX_TO_FROM_RADIO_SIZE in the client
PORT = portnums_pb2.PortNum


class ClientReader:
    """The meshtastic 2.7.11 client's serial reader (`StreamInterface.__reader`), byte for byte.

    Unlike `node.sim.framing.FrameDecoder` it does not resynchronise: a stray 0x94 right before a
    frame makes it drop that frame, and a cut-short frame takes the next bytes as its own.
    """

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The payloads the client hands to `_handleFromRadio` for these bytes."""
        payloads = []
        for byte in data:
            ptr = len(self.buf)
            self.buf.append(byte)
            if ptr == 0:
                if byte != START1:
                    self.buf.clear()
            elif ptr == 1:
                if byte != START2:
                    self.buf.clear()
            elif ptr >= 3:
                length = (self.buf[2] << 8) | self.buf[3]
                if ptr == 3 and length > MAX_FRAME:
                    self.buf.clear()
                if self.buf and ptr + 1 >= length + 4:
                    payloads.append(bytes(self.buf[4:]))
                    self.buf.clear()
        return payloads

    def padding(self) -> bytes:
        """Zero bytes that bring the reader back to idle (completing or breaking a frame)."""
        pad = bytearray()
        probe = ClientReader()
        probe.buf = bytearray(self.buf)
        while probe.buf:
            probe.feed(b"\x00")
            pad.append(0)
        return bytes(pad)


def classify(payload: bytes) -> str:
    """What the client makes of one payload: 'unparsable', or the FromRadio variant it holds."""
    message = mesh_pb2.FromRadio()
    try:
        message.ParseFromString(payload)
    except Exception:  # protobuf's DecodeError, as the client itself catches it
        return "unparsable"
    kind = message.WhichOneof("payload_variant") or "empty"
    if kind == "queueStatus" and message.queueStatus.free == 0:
        return "queueStatus-full"
    if kind == "packet":
        port = message.packet.decoded.portnum
        name = PORT.Name(port) if port in PORT.values() else str(port)
        return f"packet:{name}" if message.packet.HasField("decoded") else "packet:encrypted"
    return kind


UNSAFE = frozenset({"rebooted", "queueStatus-full"})


def _packet(
    sender: int, to: int, port: int, payload: bytes, rng: random.Random, *, pki: bool = False
) -> bytes:
    """A packet as the radio hands it to its client; `pki`: a direct message it decrypted with
    the sender's public key, which always arrives on channel 0 (Router.cpp perhapsDecode)."""
    packet = mesh_pb2.MeshPacket(
        to=to,
        channel=0 if pki else rng.choice((0, 0, 0, 1)),
        id=rng.getrandbits(32) or 1,
        decoded=mesh_pb2.Data(portnum=port, payload=payload),
        rx_time=int(time.time()),
        hop_limit=3,
        hop_start=3,
        pki_encrypted=pki,
        public_key=stand_in_key(sender) if pki else b"",
    )
    setattr(packet, "from", sender)
    return mesh_pb2.FromRadio(packet=packet).SerializeToString()


def templates(board: int, rng: random.Random) -> list[bytes]:
    """Valid FromRadio payloads of every kind a radio sends, to be fed and mutated.

    Text direct messages to the board come PKI-encrypted from the handhelds the radio knows
    (`run` adds them with the same stand-in keys), as a 2.7.14+ radio passes no other."""
    now = datetime.now(UTC)
    text = PORT.TEXT_MESSAGE_APP
    out = []
    for sender in HANDHELDS:
        for words in ("anyone at the hall?", "!weather", "soup's on", "list", "help"):
            out.append(_packet(sender, BROADCAST_NUM, text, words.encode(), rng))
        for words in ("help", "list", "post meal tue 18:00 Soup", "read #a3f0", "more", "x"):
            out.append(_packet(sender, board, text, words.encode(), rng, pki=True))
        out.append(_packet(sender, board, PORT.POSITION_APP, b"\x0d\x00\x00\x00\x00", rng))
        user = mesh_pb2.User(id=f"!{sender:08x}", long_name="Ana", short_name="Ana")
        out.append(_packet(sender, BROADCAST_NUM, PORT.NODEINFO_APP, user.SerializeToString(), rng))
        out.append(
            mesh_pb2.FromRadio(
                node_info=mesh_pb2.NodeInfo(num=sender, user=user)
            ).SerializeToString()
        )
    for n, sender in enumerate(BOARDS):
        bulletin = new_bulletin(
            TypeRegistry(),
            type="tool",
            text=f"Ladder {n} to lend, ask at the hall",
            author=f"!{sender:08x}",
            ring=0,
            now=now - timedelta(minutes=n),
        )
        for message in (
            Announce.of(bulletin),
            summarise(0, []),
            Request(0, (b"\x00\x01\x02\x03",)),
        ):
            out.append(_packet(sender, BROADCAST_NUM, BOARD_PORT, encode(message), rng))
    metrics = telemetry_pb2.Telemetry(
        device_metrics=telemetry_pb2.DeviceMetrics(channel_utilization=12.5, air_util_tx=1.5)
    )
    out.append(_packet(board, BROADCAST_NUM, PORT.TELEMETRY_APP, metrics.SerializeToString(), rng))
    out.append(
        mesh_pb2.FromRadio(
            log_record=mesh_pb2.LogRecord(message="radio log line", level=20)
        ).SerializeToString()
    )
    out.append(
        mesh_pb2.FromRadio(
            queueStatus=mesh_pb2.QueueStatus(res=0, free=16, maxlen=16, mesh_packet_id=1)
        ).SerializeToString()
    )
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three edits: bit flips, overwrites, cuts, insertions, repeats."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(out)) if out else 0
        op = rng.randrange(5)
        if op == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[at] = rng.randrange(256)
        elif op == 2:
            del out[at : at + rng.randint(1, 8)]
        elif op == 3:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            out[at:at] = out[at : at + rng.randint(1, 16)]
    return bytes(out[:MAX_FRAME])


def fuzz_frame(payloads: list[bytes], rng: random.Random) -> tuple[str, bytes]:
    """One random or mutated frame, and what kind of damage it carries."""
    payload = rng.choice(payloads)
    frame = encode_frame(payload)
    kind = rng.choices(
        ["payload", "frame", "truncated", "length", "stray", "noise", "concatenated"],
        weights=[35, 20, 10, 10, 8, 12, 5],
    )[0]
    if kind == "payload":  # a damaged protobuf in a well-formed frame
        return kind, encode_frame(mutate(payload, rng))
    if kind == "frame":  # damage anywhere, the header included
        return kind, mutate(frame, rng)
    if kind == "truncated":
        return kind, frame[: rng.randrange(1, len(frame))]
    if kind == "length":
        length = rng.choice([len(payload) + rng.randint(-8, 8), rng.randrange(0x10000)])
        return kind, bytes([START1, START2, (length >> 8) & 0xFF, length & 0xFF]) + payload
    if kind == "stray":
        stray = rng.choice([b"\x94", b"\xc3", b"\x94\xc3", b"\x94\x94", b"\xc3\x94"])
        return kind, stray + frame if rng.random() < 0.5 else frame + stray
    if kind == "noise":
        return kind, rng.randbytes(rng.randint(1, 300))
    other = encode_frame(rng.choice(payloads))
    return kind, frame[: rng.randrange(len(frame))] + other


@dataclass
class FuzzReport:
    frames: int = 0  # random or mutated frames fed
    valid_frames: int = 0  # unmutated frames interleaved
    bytes_fed: int = 0
    seconds: float = 0.0
    crashes: int = 0
    crash_details: list[str] = field(default_factory=list)
    probes: int = 0
    probes_answered: int = 0
    damage: Counter[str] = field(default_factory=Counter)  # fed frames by kind of damage
    client_parsed: Counter[str] = field(default_factory=Counter)  # what the client will read
    not_fed: Counter[str] = field(default_factory=Counter)  # UNSAFE frames left out
    client_parse_errors: int = 0  # payloads dropped as undecodable (cf. client_parsed)
    client_other_errors: int = 0  # other errors the client caught and logged itself
    replies_sent: int = 0  # replies the radio took and put in its TX queue
    outbox: dict[str, int] = field(default_factory=dict)  # the daemon's OutboxStats
    # What the radio did not take from the client, by reason (rate limited, repeated id,
    # refused by its Router: an unknown key, a full queue): node/sim/phone_api.py, router.py.
    radio_refused: Counter[str] = field(default_factory=Counter)
    board_plane: dict[str, Any] = field(default_factory=dict)
    stored_bulletins: int = 0
    integrity_check: str = ""

    def as_json(self) -> dict[str, Any]:
        """Plain values (dataclasses.asdict would rebuild each Counter from (key, count) pairs)."""
        return {
            name: dict(value.most_common()) if isinstance(value, Counter) else value
            for name, value in vars(self).items()
        }


class _Watch(logging.Handler):
    """Counts what the client catches and logs; any exception out of our code is a crash."""

    def __init__(self, report: FuzzReport) -> None:
        # node.meshtastic_link notes each undecodable frame at DEBUG
        super().__init__(logging.DEBUG)
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        if record.levelno < logging.WARNING:
            # node.meshtastic_link notes it before the client sees it
            if record.getMessage().startswith("undecodable frame"):
                self.report.client_parse_errors += 1
            return
        # The client logs inside its `except` blocks, so the exception is still at hand.
        exc = record.exc_info or sys.exc_info()
        if record.name.startswith("meshtastic") and record.levelno >= logging.ERROR:
            self.report.client_other_errors += 1
        if exc[2] is not None and _from_our_code(exc[2]):
            self.report.crashes += 1
            self.report.crash_details.append(
                "".join(traceback.format_exception(exc[0], exc[1], exc[2]))[-2000:]
            )


def _from_our_code(tb: TracebackType) -> bool:
    """Whether the deepest frame that is ours or the client's is ours.

    A client failure that merely passed through our override of its frame handler
    (node.meshtastic_link) is the client's; one raised in a library our code called is ours.
    """
    owner = ""
    for frame, _ in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if filename.startswith(OURS):
            owner = "ours"
        elif filename.startswith(CLIENT):
            owner = "client"
    return owner == "ours"


class _Sink:
    """Where the client's print() and traceback.print_exc() go during a run."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _watching(report: FuzzReport, quiet: bool) -> Iterator[None]:
    watch = _Watch(report)
    root = logging.getLogger()
    root.addHandler(watch)
    link_logger = logging.getLogger("node.meshtastic_link")
    link_level = link_logger.level
    link_logger.setLevel(logging.DEBUG)  # its per-frame note of what it could not decode
    old_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        report.crashes += 1
        report.crash_details.append(f"thread {args.thread}: {args.exc_type.__name__}")
        old_hook(args)

    threading.excepthook = hook
    try:
        with contextlib.ExitStack() as stack:
            if quiet:
                stack.enter_context(contextlib.redirect_stdout(_Sink()))  # type: ignore[type-var]
                stack.enter_context(contextlib.redirect_stderr(_Sink()))  # type: ignore[type-var]
            yield
    finally:
        threading.excepthook = old_hook
        root.removeHandler(watch)
        link_logger.setLevel(link_level)


def run(
    count: int,
    *,
    seed: int = 1,
    probe_every: int = 2000,
    speed: float = 1.0,
    quiet: bool = True,
) -> FuzzReport:
    """Feed `count` random or mutated frames to a serving daemon; see the module docstring.

    `speed` runs the clock the daemon and the radio share faster (replies are paced 2.25 s
    apart and by their airtime, so a short run in the tests would otherwise mostly wait); the
    board's rate limits then refill, and the radio's 2 s text rule and TX queue pass, as much
    faster.
    """
    rng = random.Random(seed)
    report = FuzzReport()
    clock = Clock(speed=speed) if speed != 1.0 else SYSTEM_CLOCK
    with (
        tempfile.TemporaryDirectory() as scratch,
        SimulatedRadio(clock=clock) as radio,
        _watching(report, quiet),
    ):
        for num in HANDHELDS:
            radio.add_handheld(num, f"h{num:x}")
        db_path = Path(scratch) / "board.db"
        store = Store.open(db_path)
        daemon = Daemon(
            lambda: MeshtasticLink(radio.port),
            store,
            CommandHandler(store, BoardConfig(), limiter=RateLimiter(HANDHELD_RATES)),
            SyncEngine(store, SyncConfig(), random.Random(seed), limiter=RateLimiter(BOARD_RATES)),
            AirtimeBudget(limit_fraction=1.0, hard_fraction=1.0),
            clock=clock,
        )
        stop = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                daemon.run(stop)
            except BaseException as error:
                failure.append(error)
                raise

        thread = threading.Thread(target=serve, name="fuzz-daemon")
        thread.start()
        if not daemon.connected.wait(30):
            raise RuntimeError("the daemon did not connect to the simulated radio")
        payloads = templates(radio.node_num, rng)
        reader = ClientReader()
        started = time.monotonic()
        while report.frames < count and thread.is_alive():
            if rng.random() < 0.1:
                kind, data = "valid", encode_frame(rng.choice(payloads))
            else:
                kind, data = fuzz_frame(payloads, rng)
            probe = ClientReader()
            probe.buf = bytearray(reader.buf)
            parsed = [classify(p) for p in probe.feed(data)]
            pad = probe.padding()
            parsed += [classify(p) for p in probe.feed(pad)]
            unsafe = [p for p in parsed if p in UNSAFE]
            if unsafe:
                report.not_fed.update(unsafe)
                continue
            reader = probe
            radio.write_raw(data + pad)
            report.bytes_fed += len(data) + len(pad)
            report.client_parsed.update(parsed)
            if kind == "valid":
                report.valid_frames += 1
            else:
                report.frames += 1
                report.damage[kind] += 1
                if report.frames % probe_every == 0:
                    _probe(radio, report)
        if thread.is_alive():
            _probe(radio, report)
        report.seconds = time.monotonic() - started
        if not thread.is_alive():
            report.crashes += 1
            report.crash_details.append(f"the daemon stopped: {failure!r}")
        stop.set()
        thread.join(timeout=30)
        report.replies_sent = len([t for t in radio.transmissions if t.text is not None])
        report.outbox = asdict(daemon.outbox.stats)
        report.radio_refused.update(r.reason for r in radio.refused)
        stats = daemon.sync_stats
        report.board_plane = {
            k: v for k, v in asdict(stats).items() if isinstance(v, int) and not isinstance(v, bool)
        }
        report.stored_bulletins = store.count()
        store.close()
        with contextlib.closing(sqlite3.connect(db_path)) as db:
            report.integrity_check = db.execute("PRAGMA integrity_check").fetchone()[0]
    return report


def _probe(radio: SimulatedRadio, report: FuzzReport) -> None:
    """A new handheld asks for help: the board must answer, however busy the line has been.

    Its radio has heard its NodeInfo (so the board's answer can be PKI-encrypted to it), and it
    sends as 2.7.14+ firmware does: a PKI direct message, which reaches the board on channel 0.
    """
    sender = PROBE_BASE + report.probes
    report.probes += 1
    radio.add_handheld(sender, f"probe {report.probes}")
    radio.receive_text(sender, "help", direct=True, pki_encrypted=True)
    try:
        radio.wait_for_texts(sender, 1, timeout=PROBE_TIMEOUT)
    except TimeoutError:
        report.crash_details.append(f"probe {report.probes} unanswered")
        return
    report.probes_answered += 1
    # Progress on the real stderr (the client's own output goes to a sink during a run).
    print(f"{report.frames} frames, probe {report.probes} answered", file=sys.__stderr__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--probe-every", type=int, default=2000)
    parser.add_argument("--speed", type=float, default=1.0, help="the daemon's clock speed")
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)  # the run's own handler counts what is logged
    report = run(args.count, seed=args.seed, probe_every=args.probe_every, speed=args.speed)
    print(json.dumps(report.as_json(), indent=2))
    ok = report.crashes == 0 and report.probes_answered == report.probes
    passed = ok and report.integrity_check == "ok"
    given = sys.argv[1:] if argv is None else argv
    record = {
        "command": "python bench/fuzz_serial.py " + " ".join(given),
        "count": args.count,
        "seed": args.seed,
        "probe_every": args.probe_every,
        "speed": args.speed,
        "passed": passed,  # no crash, every probe answered, integrity_check ok: the exit status
        **report.as_json(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz_serial.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
