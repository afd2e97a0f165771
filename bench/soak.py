"""Soak: people several hops away send commands over a lossy mesh; count what they are shown.

    python bench/soak.py [--boards 4] [--commands 800] [--hops 3] [--loss 0.10] [--seed 1]
                         [--speed 20] [--people 8] [--pace 45] [--reset-every 0]
                         [--log-file FILE] [--air-log FILE]

Why: a board that answers every command on a radio that acknowledges everything at once proves
only that the daemon loses nothing between its serial line and its database. People meet the
board through relays on a lossy channel, with firmware that drops texts sent too soon, ignores
ids it has seen, encrypts direct messages, stops retrying when it hears a relay repeat its packet
and gives up after three tries; what counts is whether each person is shown the answer to each
command, once. So this soak runs the real daemons (`Neighbourhood.attach`: the unmodified
meshtastic client on a pty radio) on the simulated LoRa mesh (`node/sim/mesh.py`), and the
people are virtual handhelds that reach their board only through relays.

Topology, per board (`--boards` separate lines in one mesh, no link between lines):

    board radio -- relay -- ... -- relay -- { `--people` handhelds, all hearing each other }

`--hops` is the number of radio links between a person and the board (`--hops` - 1 relays),
default 3: board -- relay -- relay -- people, so the board's packets reach a person with
hops_away 2. Relays are virtual handhelds in role ROUTER (rooftop relays, no person); the
people are role CLIENT and hear the last relay and each other, so they rebroadcast each other's
packets as managed flooding does (the first rebroadcast heard cancels the others'). Relays in
role CLIENT do not work here: when a person's neighbour rebroadcasts first, the CLIENT relay
cancels its own rebroadcast and the packet dies among the people (in a trial, 2 of 20 commands
reached the board at 0 % loss). Every link loses each frame with probability `--loss` (default
0.10, dice from `--seed`); frames overlapping at a receiver collide (all links 0 dB SNR, no
capture), which with the last relay hearing both the line and the people makes hidden-terminal
collisions.
Every radio keeps the firmware default hop limit of 3, so a packet reaches at most 4 links
(`--hops` is at most 4). LongFast, EU_868 10 % duty cycle per radio. The mesh floods every
packet: no next-hop routing, so relays never retransmit a direct message (node/sim/mesh.py).

Firmware rules in force (every radio reports 2.7.26, `node/sim/rules.py`): a client's texts at
least 2 s apart (PhoneAPI; one sent sooner is dropped with a QueueStatus res 0, which the client
cannot tell from acceptance), the client's last 20 packet ids ignored, direct messages
PKI-encrypted and delivered on channel 0 (the people send with `pki_encrypted=True`; a legacy
channel-key DM would be dropped), a text DM's ACK asks for an ACK (2.7.12), three tries per
want_ack packet then a MAX_RETRANSMIT NAK, implicit ACKs (a packet's sender that hears any
node rebroadcast it stops retrying and reports it delivered to its client).

The people: each sends a command about every `--pace` x `--people` simulated seconds (+-25 %,
so one command per `--pace` s at each board), alternately `post notice soak-<board>-<n>` (the
reply `ok #ref notice: soak-<board>-<n>` names it) and `read #ref` of a distinct earlier
answered post (the reply quotes that post's text), so every reply names its command. That is
inside the board's per-sender limits (`board/ratelimit.py` HANDHELD_RATES: 5 at once then one
per 10 s, and 30 at once then one per 2 min), so the board never has to say `slow down`
(counted as `slow_down`; must be 0). When a person's radio reports a DM undelivered (its NAK
after three tries), the person sends it again, at most three sends in all, as
`node.demo.neighbourhood.ask` does. After an implicit or real ACK the radio reports nothing
more, and the person just waits.

With `--reset-every N` a board's radio reboots after every N commands sent to it (its LoRa side
off and its pty gone for the reboot; default 0: never).

After the last command the soak settles: it waits until every command is answered, or until no
board has a reply waiting and no person is waiting on a send (at most `--settle` simulated s),
then another LATE_WAIT simulated seconds, in which a late duplicate would still be shown.

Figures, per board and in total (printed as lines; bench/results/soak.json has them with the
settings):
- sent: commands the people sent (a person's resend of the same command counts once);
- answered: commands whose reply reached the person's inbox at least once;
- shown_twice: commands whose reply the person was shown more than once (under distinct packet
  ids: a radio shows an id once); shown_twice_after_resend: of those, commands the person had
  sent more than once, so the board rightly answered each;
- lost: sent - answered; lost_no_reply_on_air: of those, commands the board never put a reply
  on the air for (the command was lost on the way, or its reply is still queued);
  lost_reply_on_air: the board sent a reply that never reached the person;
- person_resent: sends again after the person's radio reported the DM undelivered;
  person_gave_up: commands still undelivered after three sends;
- refused_by_radio, given_up, possible_duplicates, replies_sent, replies_delivered: the board's
  `OutboxStats` (attempts the radio refused in its QueueStatus, replies dropped after the last
  attempt, resends after an attempt that may have been shown, attempts handed to the radio,
  replies settled by an ACK or an implicit ACK); settled_by_relay: of replies_delivered, those
  settled by an implicit ACK (a relay was heard repeating it; the person never confirmed);
- radio_rate_limited, radio_repeated_ids: packets from the board's client that its radio dropped
  at its PhoneAPI (text rate; an id among the last 20), which the client is not told about;
- slow_down, unexpected: replies that were `slow down`, or named no command;
- replies_not_pki: replies shown that were not PKI-encrypted; legacy_dms_dropped: channel-key
  direct messages the line's radios dropped (both must be 0: every DM here is PKI);
- radio_resets, reconnects; board_airtime_s (the board radio's transmissions, simulated s),
  line_peak_air_util_percent (the busiest radio of the line: its airtime in the last hour, as a
  percentage, sampled every 30 simulated s), dropped_duty_cycle (frames the line's radios
  dropped for the duty cycle);
- wall_s, sim_s (simulated seconds from the first command to the end), peak_rss_mib (max RSS of
  the process, all boards together), transmissions, frames_lost (link loss), collisions (frames
  garbled at a receiver, per receiver; whole mesh).

The default run (4 boards, 800 commands, 3 hops, 10 % loss, speed 20, seed 1) takes about
8 minutes of wall time on 2 cores (measured: 481 s, 9,500 simulated s, CPU about 10 % of one
core, peak RSS about 100 MiB); the time is simulated time / speed. A faster clock distorts the
mesh: the meshtastic client sleeps 100 real ms after every write, already 2 simulated s at
speed 20.

Reading the figures: a command or reply lost after the first relay is lost for good. Its
sender's firmware stopped retrying on hearing that relay (an implicit ACK), the board's outbox
counts such a reply delivered (`settled_by_relay`), and relays here never retransmit. So
`lost` mostly measures the mesh (link loss on the later hops, and hidden-terminal collisions at
the relays: the last relay hears the people, who rebroadcast others' DMs and ACKs, and the
relay before it, which cannot hear them), not the board; `given_up`, `refused_by_radio` and
`radio_rate_limited` are the board's own. `--air-log` writes every transmission for a
post-mortem of where a lost packet stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import re
import resource
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from meshtastic.protobuf import portnums_pb2

from board.ratelimit import HANDHELD_RATES
from node.clock import Clock
from node.demo.neighbourhood import SENDS, BoardNode, Neighbourhood
from node.sim.handheld import HeardText, VirtualHandheld
from node.sim.mesh import Member, Mesh
from node.sim.radio import REBOOT_PAUSE, RadioProfile, Role, SimulatedRadio
from node.sim.station import AirRecord

logger = logging.getLogger("soak")
RESULTS = Path(__file__).parent / "results"
POLL = 0.1  # real seconds between looks at the handhelds
HOP_LIMIT = 3  # the firmware default every radio here keeps
JITTER = 0.25  # a person's interval between commands varies by this fraction either way
PATIENCE = 300.0  # simulated s after a person's last send the soak still waits for its reply
LATE_WAIT = 150.0  # simulated s after settling, for anything still on its way to a person
SAMPLE_EVERY = 30.0  # simulated s between samples of the line's airtime
TEXT_PORT = portnums_pb2.PortNum.TEXT_MESSAGE_APP
POST_REPLY = re.compile(r"ok #(\w+) notice: soak-(\d+)-(\d+)")
READ_REPLY = re.compile(r"#(\w+) notice\nsoak-(\d+)-(\d+)\nby ")
SLOW_DOWN = "slow down"


@dataclass
class Command:
    """One command a person sent, and what became of it."""

    person: int  # index among the board's people
    number: int  # per board, from 0
    kind: str  # "post" or "read"
    text: str
    target: int  # the post (by number) its reply names: its own for a post
    sent_at: float  # simulated s
    packet_ids: list[int] = field(default_factory=list)  # one per send
    naks: int = 0  # sends the person's radio reported undelivered
    shown: int = 0  # times the reply reached the person's inbox

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.target)


@dataclass
class BoardFigures:
    sent: int = 0
    answered: int = 0
    shown_twice: int = 0
    shown_twice_after_resend: int = 0
    lost: int = 0
    lost_no_reply_on_air: int = 0
    lost_reply_on_air: int = 0
    person_resent: int = 0
    person_gave_up: int = 0
    refused_by_radio: int = 0
    given_up: int = 0
    possible_duplicates: int = 0
    replies_sent: int = 0
    replies_delivered: int = 0
    settled_by_relay: int = 0
    radio_rate_limited: int = 0
    radio_repeated_ids: int = 0
    slow_down: int = 0
    unexpected: int = 0
    replies_not_pki: int = 0
    legacy_dms_dropped: int = 0
    radio_resets: int = 0
    reconnects: int = 0
    board_airtime_s: float = 0.0
    line_peak_air_util_percent: float = 0.0
    dropped_duty_cycle: int = 0


@dataclass
class Line:
    """One board at the end of its line of relays, and its people."""

    index: int
    node: BoardNode
    relays: list[VirtualHandheld]
    people: list[VirtualHandheld]
    quota: int  # commands to send
    rng: random.Random
    gap: float  # mean simulated s between one person's commands
    reset_every: int
    commands: list[Command] = field(default_factory=list)
    by_key: dict[tuple[str, int], Command] = field(default_factory=dict)
    pending: dict[int, Command] = field(default_factory=dict)  # latest packet id → command
    next_at: list[float] = field(default_factory=list)  # per person, simulated s
    seen_texts: list[int] = field(default_factory=list)  # per person: inbox entries looked at
    seen_routing: list[int] = field(default_factory=list)
    refs: dict[int, str] = field(default_factory=dict)  # answered post number → its ref
    unread: list[int] = field(default_factory=list)  # answered posts nobody read yet
    figures: BoardFigures = field(default_factory=BoardFigures)
    back_online_at: float | None = None  # real monotonic s: the rebooted radio's pause ends

    @property
    def radio(self) -> SimulatedRadio:
        return self.node.radio

    @property
    def done_sending(self) -> bool:
        return len(self.commands) >= self.quota

    def start(self, now: float) -> None:
        count = len(self.people)
        self.next_at = [now + (i + self.rng.random()) * self.gap / count for i in range(count)]
        self.seen_texts = [0] * count
        self.seen_routing = [0] * count

    def step(self, mesh: Mesh, now: float) -> None:
        """Read what each person's radio showed; send what is due."""
        for i, person in enumerate(self.people):
            self._read_inbox(i, person)
            self._read_routing(i, person, now)
            if not self.done_sending and now >= self.next_at[i] and self.back_online_at is None:
                self._send_new(i, person, now)
                self.next_at[i] = now + self.gap * self.rng.uniform(1 - JITTER, 1 + JITTER)
                self._maybe_reboot(mesh)
        if self.back_online_at is not None and time.monotonic() >= self.back_online_at:
            mesh.set_online(self.radio, True)
            self.back_online_at = None

    def waiting(self, now: float) -> bool:
        """Whether a reply may still come: queued at the board, or a send still in flight."""
        daemon = self.node.daemon
        if daemon is not None and daemon.outbox.replies_waiting:
            return True
        if self.back_online_at is not None:
            return True
        return any(
            not c.shown and c.naks < SENDS and now - c.sent_at < PATIENCE
            for c in self.pending.values()
        )

    def _send_new(self, i: int, person: VirtualHandheld, now: float) -> None:
        number = len(self.commands)
        if number % 2 == 1 and self.unread:
            target = self.unread.pop(0)
            command = Command(i, number, "read", f"read #{self.refs[target]}", target, now)
        else:
            text = f"post notice soak-{self.index}-{number}"
            command = Command(i, number, "post", text, number, now)
        self.commands.append(command)
        self.by_key[command.key] = command
        self._send(command, person)

    def _send(self, command: Command, person: VirtualHandheld) -> None:
        packet_id = person.send_text(
            command.text, to=self.radio.node_num, pki_encrypted=True
        )  # a 2.7.14+ handheld: PKI, on channel 0
        command.packet_ids.append(packet_id)
        self.pending[packet_id] = command
        logger.debug(
            "board %d: %s sent %r as %#x", self.index, person.node_id, command.text, packet_id
        )

    def _read_inbox(self, i: int, person: VirtualHandheld) -> None:
        inbox = person.inbox
        for heard in inbox[self.seen_texts[i] :]:
            if heard.sender == self.radio.node_num and heard.direct:
                self._shown(heard)
        self.seen_texts[i] = len(inbox)

    def _shown(self, heard: HeardText) -> None:
        key = reply_key(heard.text, self.index)
        command = self.by_key.get(key) if key is not None else None
        if command is None:
            if heard.text.startswith(SLOW_DOWN):
                self.figures.slow_down += 1
            else:
                self.figures.unexpected += 1
            logger.warning("board %d: reply that names no command: %r", self.index, heard.text)
            return
        command.shown += 1
        if not heard.pki_encrypted:
            self.figures.replies_not_pki += 1
        if command.shown > 1:
            logger.info(
                "board %d: %r shown %d times (packet %#x)",
                self.index,
                heard.text,
                command.shown,
                heard.packet_id,
            )
        if command.kind == "post" and command.shown == 1:
            match = POST_REPLY.fullmatch(heard.text)
            assert match is not None
            self.refs[command.number] = match[1]
            self.unread.append(command.number)

    def _read_routing(self, i: int, person: VirtualHandheld, now: float) -> None:
        routing = person.routing
        for report in routing[self.seen_routing[i] :]:
            command = self.pending.get(report.request_id)
            if report.ok or command is None or command.packet_ids[-1] != report.request_id:
                continue
            command.naks += 1
            if command.shown:
                continue
            if len(command.packet_ids) < SENDS:
                logger.info(
                    "board %d: %s's radio says %r undelivered; sending it again",
                    self.index,
                    person.node_id,
                    command.text,
                )
                self.figures.person_resent += 1
                command.sent_at = now
                self._send(command, person)
            else:
                logger.warning(
                    "board %d: %s gives up on %r after %d sends",
                    self.index,
                    person.node_id,
                    command.text,
                    SENDS,
                )
                self.figures.person_gave_up += 1
        self.seen_routing[i] = len(routing)

    def _maybe_reboot(self, mesh: Mesh) -> None:
        sent = len(self.commands)
        if not self.reset_every or sent % self.reset_every or sent == self.quota:
            return
        logger.info("board %d: rebooting its radio after %d commands", self.index, sent)
        mesh.set_online(self.radio, False)  # the LoRa side forgets its queue and retries
        self.radio.reboot(pause=REBOOT_PAUSE)
        self.back_online_at = time.monotonic() + REBOOT_PAUSE
        self.figures.radio_resets += 1

    @property
    def members(self) -> list[Member]:
        return [self.radio, *self.relays, *self.people]

    def sample(self, mesh: Mesh) -> None:
        """Note the busiest radio of the line: its airtime in the last hour."""
        members = self.members
        peak = max(mesh.node_stats(m).air_util_tx_percent for m in members)
        figures = self.figures
        figures.line_peak_air_util_percent = max(figures.line_peak_air_util_percent, peak)

    def finish(self, mesh: Mesh, log: list[AirRecord], settlements: Settlements) -> BoardFigures:
        """The figures, once the run is over (the daemon still running)."""
        figures = self.figures
        commands = self.commands
        figures.sent = len(commands)
        figures.answered = sum(1 for c in commands if c.shown)
        figures.shown_twice = sum(1 for c in commands if c.shown > 1)
        figures.shown_twice_after_resend = sum(
            1 for c in commands if c.shown > 1 and len(c.packet_ids) > 1
        )
        figures.lost = figures.sent - figures.answered
        on_air = replies_on_air(log, self.radio.node_num, self.index)
        lost = [c for c in commands if not c.shown]
        figures.lost_reply_on_air = sum(1 for c in lost if c.key in on_air)
        figures.lost_no_reply_on_air = len(lost) - figures.lost_reply_on_air
        for command in lost:
            logger.warning(
                "board %d: never shown: %r from person %d (sends %d, NAKs %d, reply on air %d x)",
                self.index,
                command.text,
                command.person,
                len(command.packet_ids),
                command.naks,
                on_air.get(command.key, 0),
            )
        daemon = self.node.daemon
        assert daemon is not None
        stats = daemon.outbox.stats
        figures.refused_by_radio = stats.refused_by_radio
        figures.given_up = stats.given_up
        figures.possible_duplicates = stats.possible_duplicates
        figures.replies_sent = stats.replies_sent
        figures.replies_delivered = stats.replies_delivered
        figures.reconnects = daemon.link_health.reconnects
        figures.settled_by_relay = sum(settlements.by_relay[p.node_id] for p in self.people)
        counters = self.radio.counters
        figures.radio_rate_limited = counters.rate_limited
        figures.radio_repeated_ids = counters.repeated_ids
        figures.legacy_dms_dropped = counters.legacy_dms_dropped + sum(
            mesh.node_stats(m).dropped_legacy_dm for m in self.members
        )
        figures.board_airtime_s = round(mesh.node_stats(self.radio).airtime_tx, 1)
        figures.line_peak_air_util_percent = round(figures.line_peak_air_util_percent, 2)
        figures.dropped_duty_cycle = sum(
            mesh.node_stats(m).dropped_duty_cycle for m in self.members
        )
        return figures


class Settlements(logging.Handler):
    """How the outbox settled each reply, per person: by the person's own ACK, or by a relay
    heard repeating it (an implicit ACK: the board's firmware stops retrying there, though the
    person's radio has not confirmed). Read from the outbox's INFO line "reply to %s %s, attempt
    %d" (`node/outbox.py` `_on_delivery`), the one place the daemon says which it was."""

    FORMAT = "reply to %s %s, attempt %d"

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_relay: Counter[str] = Counter()
        self.by_ack: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != self.FORMAT or not isinstance(record.args, tuple):
            return
        to, how = str(record.args[0]), str(record.args[1])
        (self.by_relay if how.startswith("relayed") else self.by_ack)[to] += 1


def reply_key(text: str, board: int) -> tuple[str, int] | None:
    """Which command a reply answers: ("post", n) or ("read", n of the post read)."""
    for kind, pattern in (("post", POST_REPLY), ("read", READ_REPLY)):
        match = pattern.fullmatch(text) if kind == "post" else pattern.match(text)
        if match is not None and int(match[2]) == board:
            return kind, int(match[3])
    return None


def replies_on_air(log: list[AirRecord], radio: int, board: int) -> dict[tuple[str, int], int]:
    """Per command, how many times the board's radio put a reply to it on the air (first
    transmissions of each attempt; the firmware's own retransmissions not counted)."""
    counts: dict[tuple[str, int], int] = {}
    for record in log:
        if record.sender != radio or record.origin != radio or record.port != TEXT_PORT:
            continue
        if record.kind != "origin":
            continue
        key = reply_key(record.payload.decode("utf-8", errors="replace"), board)
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return counts


def write_air_log(path: Path, log: list[AirRecord], mesh: Mesh, lines: list[Line]) -> None:
    """Every transmission as a JSON line, nodes named as in the topology, for a post-mortem."""
    names: dict[int, str] = {}
    for line in lines:
        names[line.radio.node_num] = f"B{line.index}"
        names.update({r.node_num: f"R{line.index}.{i + 1}" for i, r in enumerate(line.relays)})
        names.update({p.node_num: f"P{line.index}.{i}" for i, p in enumerate(line.people)})
    with path.open("w") as out:
        for r in log:
            text = r.payload.decode("utf-8", errors="replace") if r.port == TEXT_PORT else None
            entry = {
                "at": round(r.at, 3),
                "sender": names.get(r.sender, hex(r.sender)),
                "origin": names.get(r.origin, hex(r.origin)),
                "to": names.get(r.to, "all"),
                "id": f"{r.packet_id:#x}",
                "kind": r.kind,
                "port": r.port,
                "hop_limit": r.hop_limit,
                "airtime": round(r.airtime, 3),
                "text": text,
            }
            out.write(json.dumps(entry) + "\n")
    logger.info("air log of %d transmissions in %s (mesh ran %.0f s)", len(log), path, mesh.now())


def build_line(
    mesh: Mesh,
    hood: Neighbourhood,
    index: int,
    *,
    hops: int,
    people: int,
    loss: float,
) -> tuple[BoardNode, list[VirtualHandheld], list[VirtualHandheld]]:
    """board radio -- relay x (hops - 1) -- a cluster of people."""
    radio = mesh.add_radio(profile=RadioProfile(long_name=f"Board {index}", short_name=f"B{index}"))
    relays = [
        mesh.add_handheld(
            profile=RadioProfile(long_name=f"Relay {index}.{r}", short_name="rly", role=Role.ROUTER)
        )
        for r in range(hops - 1)
    ]
    crowd = [
        mesh.add_handheld(
            profile=RadioProfile(long_name=f"Neighbour {index}.{p}", short_name=f"n{p}")
        )
        for p in range(people)
    ]
    chain: list[SimulatedRadio | VirtualHandheld] = [radio, *relays]
    for a, b in itertools.pairwise(chain):
        mesh.link(a, b, loss)
    for person in crowd:
        mesh.link(chain[-1], person, loss)
    for a, b in itertools.combinations(crowd, 2):
        mesh.link(a, b, loss)
    node = hood.attach(radio, name=f"board-{index}")
    return node, relays, crowd


@dataclass
class Result:
    settings: dict[str, float | int]
    total: dict[str, float | int]
    boards: list[BoardFigures]

    def as_json(self) -> str:
        data = {"settings": self.settings, "total": self.total}
        return json.dumps({**data, "boards": [asdict(b) for b in self.boards]}, indent=2)


def check_failures(hood: Neighbourhood) -> None:
    """Stop the soak if a daemon died: its figures would mean nothing."""
    for node in hood.boards:
        if node.failures:
            raise RuntimeError(f"{node.name} failed") from node.failures[0]


def soak(args: argparse.Namespace, workdir: Path) -> Result:
    started = time.monotonic()
    gap = args.pace * args.people
    share = [args.commands // args.boards] * args.boards
    share[0] += args.commands - sum(share)
    settlements = Settlements()
    outbox_logger = logging.getLogger("node.outbox")
    outbox_logger.addHandler(settlements)
    outbox_logger.setLevel(logging.INFO)
    with (
        Mesh(clock=Clock(speed=args.speed), seed=args.seed) as mesh,
        Neighbourhood(mesh, workdir) as hood,
    ):
        lines: list[Line] = []
        for index in range(args.boards):
            node, relays, people = build_line(
                mesh, hood, index, hops=args.hops, people=args.people, loss=args.loss
            )
            rng = random.Random(f"{args.seed}:soak:{index}")
            line = Line(index, node, relays, people, share[index], rng, gap, args.reset_every)
            lines.append(line)
        logger.info("%d boards connected after %.1f s", args.boards, time.monotonic() - started)
        began = mesh.now()
        for line in lines:
            line.start(began)
        run(mesh, hood, lines, args.settle)
        for line in lines:
            line.sample(mesh)
        log = mesh.log
        boards = [line.finish(mesh, log, settlements) for line in lines]
        if args.air_log is not None:
            write_air_log(args.air_log, log, mesh, lines)
        stats = mesh.stats()
        sim_s = mesh.now() - began
    outbox_logger.removeHandler(settlements)
    total: dict[str, float | int] = {}
    for f in fields(BoardFigures):
        values = [getattr(b, f.name) for b in boards]
        if f.name == "line_peak_air_util_percent":
            total[f.name] = max(values)
        elif isinstance(values[0], float):
            total[f.name] = round(sum(values), 1)
        else:
            total[f.name] = sum(values)
    total.update(
        wall_s=round(time.monotonic() - started, 1),
        sim_s=round(sim_s, 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        transmissions=stats.transmissions,
        frames_lost=stats.lost,
        collisions=stats.collisions,
    )
    settings: dict[str, float | int] = {
        "boards": args.boards,
        "commands": args.commands,
        "hops": args.hops,
        "people_per_board": args.people,
        "loss": args.loss,
        "speed": args.speed,
        "seed": args.seed,
        "pace_s": args.pace,
        "reset_every": args.reset_every,
        "settle_s": args.settle,
    }
    return Result(settings, total, boards)


def run(mesh: Mesh, hood: Neighbourhood, lines: list[Line], settle: float) -> None:
    """Send every command, then settle, then wait LATE_WAIT for late duplicates."""
    began = mesh.now()
    next_sample = began
    settled_at: float | None = None
    deadline: float | None = None
    while True:
        check_failures(hood)
        now = mesh.now()
        for line in lines:
            line.step(mesh, now)
        if now >= next_sample:
            for line in lines:
                line.sample(mesh)
            next_sample = now + SAMPLE_EVERY
        if settled_at is None and all(line.done_sending for line in lines):
            if deadline is None:
                deadline = now + settle
                logger.info("all commands sent at %.0f simulated s; settling", now - began)
            everything = all(c.shown for line in lines for c in line.commands)
            quiet = not any(line.waiting(now) for line in lines)
            if everything or quiet or now >= deadline:
                if not (everything or quiet):
                    logger.error("replies still expected after %.0f simulated s", settle)
                settled_at = now
                logger.info("settled at %.0f simulated s", now - began)
        if settled_at is not None and now >= settled_at + LATE_WAIT:
            return
        time.sleep(POLL)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--boards", type=int, default=4)
    parser.add_argument("--commands", type=int, default=800, help="in all, shared by the boards")
    parser.add_argument("--hops", type=int, default=3, help="links from a person to the board")
    parser.add_argument("--loss", type=float, default=0.10, help="per link, per frame")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=20.0, help="simulated s per real s")
    parser.add_argument("--people", type=int, default=8, help="handhelds per board")
    parser.add_argument(
        "--pace", type=float, default=45.0, help="mean simulated s between commands at a board"
    )
    parser.add_argument(
        "--reset-every", type=int, default=0, help="reboot a board's radio every N commands"
    )
    parser.add_argument(
        "--settle", type=float, default=1800.0, help="simulated s to wait for the last replies"
    )
    parser.add_argument("--log-file", type=Path, help="diagnostics (INFO and up) go here too")
    parser.add_argument("--air-log", type=Path, help="every transmission, as JSON lines, here")
    args = parser.parse_args()
    if not 1 <= args.hops <= HOP_LIMIT + 1:
        parser.error(f"--hops must be 1 to {HOP_LIMIT + 1}: the hop limit is {HOP_LIMIT}")
    slowest = max(rate.every.total_seconds() for rate in HANDHELD_RATES)
    if args.pace * args.people * (1 - JITTER) < slowest:
        parser.error(
            f"a person would send faster than one command per {slowest:.0f} s, which the "
            "board's rate limit refuses in the long run: raise --pace or --people"
        )
    return args


def main() -> None:
    args = parse_args()
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.ERROR)
    handlers: list[logging.Handler] = [stderr]
    if args.log_file is not None:
        to_file = logging.FileHandler(args.log_file, mode="w")
        to_file.setLevel(logging.INFO)
        handlers.append(to_file)
    logging.basicConfig(
        level=logging.INFO if args.log_file else logging.ERROR,
        format="%(relativeCreated)9.0f %(threadName)s %(name)s %(levelname)s %(message)s",
        handlers=handlers,
    )
    with tempfile.TemporaryDirectory() as scratch:
        result = soak(args, Path(scratch))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "soak.json"
    out.write_text(result.as_json() + "\n")
    print("settings: " + " ".join(f"{k}={v}" for k, v in result.settings.items()))
    for index, board in enumerate(result.boards):
        print(f"board {index}: " + " ".join(f"{k}={v}" for k, v in asdict(board).items()))
    for key, value in result.total.items():
        print(f"{key:27} {value}")
    print(f"written {out}")


if __name__ == "__main__":
    main()
