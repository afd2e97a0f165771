"""Boards without a serial line: the daemon's deciding parts on a virtual-clock mesh.

A pty radio and the meshtastic client cost real threads and real milliseconds per packet, so
fifty of them cannot run hours of simulated time in minutes. An `InProcessBoard` keeps the parts
that decide what goes on the air and when, built as `Daemon.assemble` builds them: the SQLite
store (a real file), the command handler, the sync engine, the outbox and the airtime budget.
Its radio is a station of the simulated mesh (a `VirtualHandheld`), so the firmware's rules
still apply to everything it sends: airtime, carrier sense, collisions, the duty cycle, the TX
queue, hop limits, PKI for direct messages, ACKs and retries (`node/sim/mesh.py`).

What it leaves out is the serial line and the daemon's threads:

* The client's PhoneAPI door (`node/sim/phone_api.py`): its 2 s rule binds texts only, which the
  outbox already paces at `MIN_TEXT_INTERVAL`, and every packet id here is fresh.
* The client's wait for TX queue space (`MeshInterface._sendToRadio` polls the QueueStatus every
  0.5 s): a full queue is a `LinkDown` here, which the outbox retries after `link_retry`.
* Device-metrics telemetry: the budget never hears channel utilisation, so it never pauses sync
  for a busy channel (it pauses above 25 %, far above anything a bench here reaches).
* Rescans, purges, subscriptions, asks and NodeInfo requests: the daemon's other duties, which
  a sync bench does not exercise.

Everything runs on the mesh's scheduler: a packet heard is handled a moment later, as a daemon
reading its serial line would, and the board wakes when its engine or outbox has work due.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from board.airtime import AirtimeBudget
from board.bulletin import Bulletin
from board.handheld.commands import BoardConfig, CommandHandler
from board.messages import Inbound, Outgoing, Reply
from board.ratelimit import BOARD_RATES, HANDHELD_RATES, RateLimiter
from board.rings import config_serving
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.outbox import OutboxStore
from board.sync.engine import SyncConfig, SyncEngine
from node.daemon import packet_airtime
from node.link import BOARD_HOP_LIMIT, BOARD_PORT, Delivery, LinkDown, node_num
from node.outbox import Outbox
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.scheduler import Timer

logger = logging.getLogger(__name__)

#: Simulated seconds between a packet reaching the radio and the daemon handling it (the serial
#: line and the client's thread): small next to any airtime, but never zero, so a board never
#: answers inside the callback that delivered the packet.
HANDLING_DELAY = 0.05

RoutingError = mesh_pb2.Routing.Error


@dataclass
class BoardFigures:
    """What one in-process board did, for a bench's tables."""

    board_packets_sent: int = 0
    queue_full: int = 0  # board-plane sends that found the radio's TX queue full
    replies_sent: int = 0
    stored_at: dict[str, float] = field(default_factory=dict)  # bulletin id → first held (s)


class InProcessBoard:
    """One board on a `Mesh` with a `VirtualClock`; its radio is `station`."""

    def __init__(
        self,
        mesh: Mesh,
        station: VirtualHandheld,
        db_path: Path,
        *,
        sync: SyncConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.mesh = mesh
        self.station = station
        self.node_id = station.node_id
        self.clock = mesh.clock
        sync = sync or SyncConfig()
        config = config_serving(sync.rings)
        self.store = Store.open(db_path)
        self.handler = CommandHandler(
            self.store,
            BoardConfig(rings=config),
            limiter=RateLimiter(HANDHELD_RATES),
            key=BoardKey.generate(),
        )
        self.sync = SyncEngine(
            self.store, sync, random.Random(seed), limiter=RateLimiter(BOARD_RATES)
        )
        self.budget = AirtimeBudget.load(self.store, self.clock.now())
        self.outbox = Outbox(
            OutboxStore(self.store),
            self._send_reply,
            self._send_board,
            packet_airtime,
            self.budget,
            clock=self.clock,
        )
        self.figures = BoardFigures()
        self._wake: Timer | None = None
        self._inbox: list[mesh_pb2.MeshPacket] = []
        station.on_packet(self._heard)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start sync (as the daemon does once its radio is connected) and its timers."""
        self.sync.start(self.clock.now(), self.node_id)
        self._schedule(self.mesh.now())

    def close(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
        self.store.engine.dispose()

    # -- what the radio hands the board ---------------------------------------------------

    def _heard(self, packet: mesh_pb2.MeshPacket) -> None:
        """The radio delivered a packet (inside the mesh's callback): handle it shortly, with
        any others that arrive meanwhile (one drain for all of them)."""
        if not self._inbox:
            self.mesh.call_at(self.mesh.now() + HANDLING_DELAY, self._drain)
        self._inbox.append(packet)

    def _drain(self) -> None:
        while self._inbox:
            self._dispatch(self._inbox.pop(0))
        self._work()

    def _dispatch(self, packet: mesh_pb2.MeshPacket) -> None:
        now = self.clock.now()
        decoded = packet.decoded
        sender = f"!{getattr(packet, 'from'):08x}"
        if decoded.portnum == BOARD_PORT:
            self.sync.receive(decoded.payload, packet.channel, sender, now)
            self._held(self.sync.take_learned())
            self.sync.take_asks()
        elif decoded.portnum == portnums_pb2.PortNum.TEXT_MESSAGE_APP:
            self._serve_text(packet, sender)
        elif decoded.portnum == portnums_pb2.PortNum.ROUTING_APP and decoded.request_id:
            routing = mesh_pb2.Routing()
            routing.ParseFromString(decoded.payload)
            own = getattr(packet, "from") == self.station.node_num
            self.outbox.report(
                Delivery(
                    decoded.request_id,
                    RoutingError.Name(routing.error_reason),
                    implicit=own and routing.error_reason == RoutingError.NONE,
                )
            )

    def _serve_text(self, packet: mesh_pb2.MeshPacket, sender: str) -> None:
        """A handheld's command: the parts of `Daemon._handle_text` a sync bench needs."""
        now = self.clock.now()
        direct = packet.to == self.station.node_num
        outcome = self.handler.handle(
            Inbound(
                sender=sender,
                ring=packet.channel,
                text=packet.decoded.payload.decode("utf-8", errors="replace"),
                direct=direct,
                now=now,
                verified=direct and packet.pki_encrypted,
                public_key=self.station.nodedb.key_of(getattr(packet, "from")),
            )
        )
        for reply in outcome.replies:
            self.outbox.put(reply)
        for bulletin in outcome.posted:
            self.sync.local_bulletin(bulletin, now)
        for bulletin_id in outcome.deleted:
            self.sync.local_tombstone(bulletin_id, now)
        self._held(outcome.posted)

    # -- what the board hands the radio ---------------------------------------------------

    def _send_reply(self, reply: Reply) -> int:
        self.figures.replies_sent += 1
        return self.station.send_text(reply.text, to=node_num(reply.to), channel=reply.ring)

    def _send_board(self, outgoing: Outgoing) -> None:
        free, _ = self.mesh.queue_status(self.station)
        if free <= 0:
            self.figures.queue_full += 1
            raise LinkDown("the radio's TX queue is full")
        self.figures.board_packets_sent += 1
        self.station.send_data(
            outgoing.payload, BOARD_PORT, channel=outgoing.ring, hop_limit=BOARD_HOP_LIMIT
        )

    # -- timers ---------------------------------------------------------------------------

    def _work(self) -> None:
        """Queue what the engine has due, let the outbox send what it may, and sleep until the
        next of their timers."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        now = self.clock.now()
        for outgoing in self.sync.poll(now):
            self.outbox.put(outgoing)
        self.outbox.check()
        next_send = self.outbox.run_due()
        wake = self.sync.next_wakeup()
        due = [self.clock.seconds_at(wake)] if wake is not None else []
        if next_send is not None:
            due.append(next_send)
        if due:
            self._schedule(min(due))

    def _schedule(self, when: float) -> None:
        when = max(when, self.mesh.now())
        if self._wake is not None:
            if self._wake.when <= when and not self._wake.cancelled:
                return
            self._wake.cancel()
        self._wake = self.mesh.call_at(when, self._work)

    def _held(self, bulletins: list[Bulletin]) -> None:
        """Record when this board first held each bulletin, in the mesh's seconds."""
        for bulletin in bulletins:
            self.figures.stored_at.setdefault(bulletin.id, self.mesh.now())
