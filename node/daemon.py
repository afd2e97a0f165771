"""The board node daemon: radio in, `board/` decides, outbox out.

The link calls back on the meshtastic client's threads and the supervisor on its own; the daemon
only queues what it hears there and does all the work on the thread that calls `run()`, so the
store, the command handler and the sync engine are never used from two threads at once. The
radio may come and go (`node/supervisor.py`); the daemon keeps serving through it.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from board.airtime import AirtimeBudget, estimate_airtime
from board.config import DEFAULT_CONFIG, MeshboardConfig
from board.handheld.asks import AskRouter, Routed
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.membership import tag_of
from board.handheld.ring_news import RingNews
from board.handheld.subs import Subscriptions
from board.handheld.tools import ToolCommands
from board.messages import BROADCAST, Inbound, Outcome, Outgoing, Reply
from board.mod_policy import ModerationPolicy
from board.ratelimit import BOARD_RATES, HANDHELD_RATES, RateLimiter
from board.rings import RingGate, config_serving
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.outbox import OutboxStore
from board.store.storage import (
    STORAGE_ERRORS,
    DatabaseFile,
    can_write,
    rescue,
    storage_problem,
)
from board.store.tools import ToolStore
from board.sync.engine import ITEMS_MAX_AGE, SyncConfig, SyncEngine, SyncStats
from board.wire.codec import encode
from node.bridge.bridge import Bridge, BrokerPacket, EngineFactory
from node.clock import SYSTEM_CLOCK, Clock
from node.health import BrokerReport, Health
from node.link import (
    BOARD_PORT,
    Delivery,
    LinkError,
    LinkFactory,
    RadioMetrics,
    Received,
    ReceivedBoardPacket,
    ReceivedNodeInfo,
    ReceivedText,
)
from node.meshtastic_link import MeshtasticLink
from node.outbox import MIN_TEXT_INTERVAL, Outbox, OutboxTiming, Packet
from node.supervisor import LinkHealth, Supervisor, SupervisorConfig

logger = logging.getLogger(__name__)

PURGE_EVERY = timedelta(minutes=10)
RESCAN_EVERY = timedelta(seconds=ITEMS_MAX_AGE)
#: An outage longer than this restarts Trickle at its fastest interval when the radio is back:
#: the neighbours may have moved on. Shorter ones (a USB hiccup, a radio reboot) do not.
SYNC_RESTART_AFTER = 600.0
#: At most one NodeInfo request per person this often: their firmware answers a requester once
#: in 12 hours (`NodeInfoModule::handleReceivedProtobuf`), so asking more only spends airtime.
NODE_INFO_EVERY = 600.0
#: Seconds between looks at the database file (still the one at its path?) and, while the board
#: cannot store, between tries of a real write to learn that it can again.
STORAGE_CHECK = 5.0
#: What a person hears instead of `ok` while the board cannot store: never a false `ok`.
CANNOT_STORE = "board cannot store right now (its operator is told); try again later"
DRAIN_TIMEOUT = 5.0  # real seconds queued replies get to leave when the daemon stops
_MAX_REAL_WAIT = 0.5  # real seconds between looks at the stop event while idle


@dataclass(frozen=True)
class _LinkUp:
    """The supervisor (re)connected the radio: start serving it on the daemon's thread."""

    node_id: str


def packet_airtime(packet: Packet) -> float:
    """Estimated seconds on air for what the outbox is about to send."""
    if isinstance(packet, Reply):  # a direct message is PKI-encrypted; the ring digest is not
        return estimate_airtime(len(packet.text.encode("utf-8")), pki=packet.to != BROADCAST)
    return estimate_airtime(len(packet.payload), port=BOARD_PORT)


class Daemon:
    """Serves handheld commands and keeps the board in sync with its neighbours until stopped."""

    def __init__(
        self,
        connect: LinkFactory,
        store: Store,
        handler: CommandHandler,
        sync: SyncEngine,
        budget: AirtimeBudget,
        *,
        text_interval: float = MIN_TEXT_INTERVAL,
        outbox_timing: OutboxTiming | None = None,
        clock: Clock = SYSTEM_CLOCK,
        supervision: SupervisorConfig | None = None,
        router: AskRouter | None = None,
        subscriptions: Subscriptions | None = None,
        config: MeshboardConfig = DEFAULT_CONFIG,
        bridge_engine: EngineFactory | None = None,
    ) -> None:
        self.config = config  # the rings; pass the same served rings to the sync engine
        self._gate = RingGate(config)
        self._store = store
        self._router = router
        self._subscriptions = subscriptions
        self._ring_news = RingNews(config, clock.now())  # the opt-in broadcast per ring
        self._handler = handler
        self._sync = sync
        self._budget = budget
        self._clock = clock
        self._inbound: queue.Queue[Received | _LinkUp | BrokerPacket] = queue.Queue()
        # The rings that also meet through an MQTT broker (node/bridge), with `bridge_engine`
        # making the broker's sync engine over this store.
        self._bridge: Bridge | None = None
        if bridge_engine is not None and config.bridged:
            self._bridge = Bridge(config.bridged, bridge_engine, self._inbound.put)
        self.outbox_interval = text_interval
        self.outbox = Outbox(
            OutboxStore(store),
            self._send_reply,
            self._send_board,
            packet_airtime,
            budget,
            text_interval=text_interval,
            timing=outbox_timing,
            clock=clock,
            on_missing_key=self._ask_for_key,
        )
        self._asked_for_key: dict[str, float] = {}  # node id -> clock.monotonic() of the ask
        self._asked_lock = threading.Lock()
        self._supervisor = Supervisor(
            connect,
            self._inbound.put,
            on_up=self._on_link_up,
            on_down=self._on_link_down,
            config=supervision,
            clock=clock,
        )
        self.connected = threading.Event()  # serving a connected radio
        self.node_id: str | None = None
        self._sync_started = False
        self._down_since: datetime | None = None  # when the radio was lost, while it is away
        # Storage: the file the store opened, and why the board cannot store now (None: it can).
        self._db_file = DatabaseFile.of(store.engine)
        self._storage: str | None = None
        self._moved = False  # the file at the path is not ours: until a restart
        self._next_storage_check = 0.0
        # Health: what `meshboard status` shows; the CLI decides where it is written.
        self.health = Health(clock=clock)
        self.health.probe("outbox_depth", lambda: self.outbox.depth)
        if self._bridge is not None:
            self.health.probe("brokers", self._broker_reports)

    @classmethod
    def assemble(
        cls,
        radio: str | LinkFactory,
        store: Store,
        *,
        board: BoardConfig | None = None,
        sync: SyncConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        seed: int | None = None,
        text_interval: float = MIN_TEXT_INTERVAL,
        outbox_timing: OutboxTiming | None = None,
        supervision: SupervisorConfig | None = None,
        config: MeshboardConfig | None = None,
        key: BoardKey | None = None,
    ) -> Daemon:
        """A daemon with the standard parts, as `meshboard run`, the demo and the tests use.

        `radio` is the radio's serial port, or a function that makes a fresh link. Every sender
        gets a fair share: handhelds and neighbouring boards are rate-limited. The board serves
        exactly `config.served`, for commands and sync alike; without a config, the rings of
        `sync` (channel 0 by default). `key` is the board's signing key: without one it cannot
        vouch for a moderator's action.
        """
        connect = _serial_link(radio) if isinstance(radio, str) else radio
        sync = sync or SyncConfig()
        board = board or BoardConfig()
        if config is None and board.rings is not DEFAULT_CONFIG:
            config = board.rings
        if config is None:
            config = config_serving(sync.rings)
        else:
            sync = replace(sync, rings=config.served)
        board = replace(board, rings=config)
        policy = ModerationPolicy(config, None if key is None else key.public_bytes)
        tools, router = ToolStore(store), AskRouter(store)
        subscriptions = Subscriptions(store, board.types)
        extensions = (ToolCommands(store, tools, router, board.tz), subscriptions)
        seeds = iter([seed, None if seed is None else seed + 1])  # the air's, the broker's

        def sync_engine(rings: frozenset[int], timing: SyncConfig) -> SyncEngine:
            return SyncEngine(
                store,
                replace(timing, rings=rings),
                random.Random(next(seeds, None)),
                limiter=RateLimiter(BOARD_RATES),
                tools=tools,
                policy=policy,
            )

        return cls(
            connect,
            store,
            CommandHandler(
                store,
                board,
                limiter=RateLimiter(HANDHELD_RATES),
                extensions=extensions,
                key=key,
            ),
            sync_engine(sync.rings, sync),
            AirtimeBudget.load(store, clock.now()),
            text_interval=text_interval,
            outbox_timing=outbox_timing,
            clock=clock,
            supervision=supervision,
            router=router,
            subscriptions=subscriptions,
            config=config,
            bridge_engine=sync_engine,
        )

    @property
    def sync_stats(self) -> SyncStats:
        """What the board plane has heard, stored and dropped (hostile input is counted here)."""
        return self._sync.stats

    @property
    def link_health(self) -> LinkHealth:
        """The radio connection's record: connected since, reconnects, last error."""
        return self._supervisor.health

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set, through any number of radio losses, then close the link.

        Never raises for a radio fault: the supervisor reconnects while this thread keeps
        serving what already arrived.
        """
        self.outbox.start()
        self._supervisor.start()
        next_purge = next_rescan = self._clock.now()
        try:
            while not stop.is_set():
                self._supervisor.check()
                self.outbox.check()
                now = self._clock.now()
                self._check_storage()
                try:
                    if now >= next_purge:
                        next_purge = now + PURGE_EVERY
                        self._purge(now)
                    if self._sync_started and now >= next_rescan:
                        next_rescan = now + RESCAN_EVERY
                        for engine in self._engines():  # rows another process stored
                            engine.rescan(now)
                    self._send_due(now)
                except STORAGE_ERRORS as error:
                    self._cannot_store(error)
                try:
                    received = self._inbound.get(timeout=self._idle_wait(now, next_purge))
                except queue.Empty:
                    continue
                try:
                    self._dispatch(received)
                except STORAGE_ERRORS as error:  # a sync packet is left for repair
                    self._cannot_store(error)
        finally:
            # Replies get a few seconds to leave while the radio is still there. A send waiting
            # for a radio that stopped confirming its queue would hold the outbox up until the
            # watchdog fires, so the link closes when that time is up, whatever happens.
            closer = threading.Timer(DRAIN_TIMEOUT + 1.0, self._supervisor.stop)
            closer.start()
            self.outbox.stop(drain_timeout=DRAIN_TIMEOUT)
            closer.cancel()
            self._supervisor.stop()
            if self._bridge is not None:
                self._bridge.stop()
            self.connected.clear()
            logger.info("board stopped")

    def _send_due(self, now: datetime) -> None:
        """Queue what is due: sync packets, subscribers' news, ring digests."""
        if self._sync_started and self._supervisor.connected:
            for outgoing in self._sync.poll(now):
                self.outbox.put(outgoing)
        if self._subscriptions is not None:
            for news in self._subscriptions.due(now):
                self._put_news(news, now)
        for digest in self._ring_news.due(now):
            self.outbox.put(digest)
        if self._bridge is not None:
            self._bridge.poll(now)  # the broker is there whether or not the radio is

    # -- storage faults -------------------------------------------------------------------------

    def _check_storage(self) -> None:
        """Every STORAGE_CHECK: is the file at the path still ours, and can we store again?"""
        at = self._clock.monotonic()
        if at < self._next_storage_check:
            return
        self._next_storage_check = at + STORAGE_CHECK
        if self._file_moved() or self._storage is None:
            return
        problem = can_write(
            self._store.engine, None if self._db_file is None else self._db_file.path
        )
        if problem is None:
            logger.info("the board can store again (was: %s)", self._storage)
            self._storage = None
            self.health.storage(None)

    def _file_moved(self) -> bool:
        """Whether the database at the path is no longer the file we write; noticed once, it
        stays so until a restart, and what we held is copied beside it."""
        if self._moved:
            return True
        moved = None if self._db_file is None else self._db_file.moved()
        if moved is None:
            return False
        self._moved = True
        assert self._db_file is not None
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S")
        saved = rescue(self._store.engine, self._db_file, stamp)
        where = f"; what it held is saved in {saved}" if saved is not None else ""
        self._storage = f"{moved}: restart it{where}"
        logger.error("%s; acknowledging nothing more until it is restarted%s", moved, where)
        self.health.storage(self._storage)
        return True

    def _cannot_store(self, error: BaseException) -> None:
        """A storage fault while serving: one log line, status says why; serving goes on."""
        problem = storage_problem(error)
        if self._storage is None:
            logger.error("cannot store: %s; answering 'cannot store' until it can", problem)
            self._storage = problem
            self.health.storage(problem)
            self._next_storage_check = self._clock.monotonic() + STORAGE_CHECK

    def _apologise(self, received: ReceivedText) -> None:
        """Tell a person the board cannot store (one packet), if even that can be queued."""
        try:
            self.outbox.put(Reply(to=received.sender, ring=received.channel, text=CANNOT_STORE))
        except STORAGE_ERRORS as error:
            logger.info(
                "could not queue the 'cannot store' answer to %s: %s", received.sender, error
            )

    def _idle_wait(self, now: datetime, next_purge: datetime) -> float:
        news = None if self._subscriptions is None else self._subscriptions.next_due()
        digest = self._ring_news.next_due()
        bridged = None if self._bridge is None else self._bridge.next_wakeup()
        wake = min(filter(None, (self._sync.next_wakeup(), next_purge, news, digest, bridged)))
        return min(_MAX_REAL_WAIT, self._clock.to_real((wake - now).total_seconds()))

    def _dispatch(self, received: Received | _LinkUp | BrokerPacket) -> None:
        now = self._clock.now()
        if isinstance(received, _LinkUp):
            self._serve_radio(received.node_id, now)
            return
        if isinstance(received, BrokerPacket):
            self._from_broker(received, now)
            return
        if not isinstance(received, RadioMetrics):  # metrics come from our own radio
            self.health.heard()
        if isinstance(received, ReceivedText):
            self._serve(received, now)
        elif isinstance(received, ReceivedNodeInfo):
            self._key_learned(received, now)
        elif isinstance(received, ReceivedBoardPacket):
            self._from_air(received, now)
        elif isinstance(received, Delivery):
            self.outbox.report(received)
        elif isinstance(received, RadioMetrics):
            self._budget.note_channel_utilisation(now, received.channel_utilization)

    def _serve(self, received: ReceivedText, now: datetime) -> None:
        # A PKI direct message comes on channel 0 whatever ring it means: membership decides.
        if not received.verified and not self._gate.admits(received.channel):
            return  # not our ring: no answer on its airtime, nothing stored
        if self._file_moved():
            self._apologise(received)  # nothing it acknowledged now would survive a restart
            return
        try:
            self._handle_text(received, now)
        except STORAGE_ERRORS as error:  # no `ok` was queued: the transaction did not commit
            self._cannot_store(error)
            self._apologise(received)

    def _handle_text(self, received: ReceivedText, now: datetime) -> None:
        if self._router is not None:
            self._router.heard(received.sender, now)
        outcome = self._handler.handle(
            Inbound(
                sender=received.sender,
                ring=received.channel,
                text=received.text,
                direct=received.direct,
                now=now,
                verified=received.verified,
                public_key=received.public_key,
            )
        )
        for reply in outcome.replies:
            self.outbox.put(reply)
        for engine in self._engines():
            self._tell(engine, outcome, now)
        if received.public_key is None and self._handler.membership.pending(
            received.channel, received.sender
        ):
            self._request_key(received.sender, received.channel)  # its join waits for the key
        for ask in outcome.asks:
            self.outbox.put(Outgoing(ask.ring, encode(ask)))
        for bulletin in outcome.posted:
            self._ring_news.notice(bulletin, now)
            if self._subscriptions is not None:
                self._subscriptions.notice(bulletin, now)

    @staticmethod
    def _tell(engine: SyncEngine, outcome: Outcome, now: datetime) -> None:
        """What a person's command stored, for `engine` to announce on its plane."""
        for record in outcome.members:
            engine.local_member(record, now)
        for bulletin in outcome.posted:
            engine.local_bulletin(bulletin, now)
        for bulletin_id in outcome.deleted:
            engine.local_tombstone(bulletin_id, now)
        for state in outcome.tool_states:
            engine.local_tool_state(state, now)
        for action in outcome.moderated:
            engine.local_moderation(action, now)

    def _engines(self) -> list[SyncEngine]:
        """The air's sync engine, and the broker's once the bridge has joined."""
        bridged = None if self._bridge is None else self._bridge.engine
        return [self._sync] if bridged is None else [self._sync, bridged]

    def _from_air(self, packet: ReceivedBoardPacket, now: datetime) -> None:
        """A board-plane packet from the air; what it brings is news for a broker too."""
        stored = self._sync.stats.stored
        self._sync.receive(packet.payload, packet.channel, packet.sender, now)
        bridged = None if self._bridge is None else self._bridge.engine
        if bridged is not None and self._sync.stats.stored != stored:
            bridged.reread(now)
        self._after_sync(now)

    def _from_broker(self, packet: BrokerPacket, now: datetime) -> None:
        """A message from a broker; what it brings is news for the air too."""
        assert self._bridge is not None
        engine = self._bridge.engine
        stored = None if engine is None else engine.stats.stored
        refused = self._bridge.counts.refused
        self._bridge.receive(packet, now)
        if self._bridge.counts.refused != refused:  # sealed with another key, or not at all
            self.health.count("broker_payloads_refused")
        if engine is not None and engine.stats.stored != stored and self._sync_started:
            self._sync.reread(now)
        self._after_sync(now)

    def _broker_reports(self) -> list[BrokerReport]:
        assert self._bridge is not None
        return [BrokerReport.of(status) for status in self._bridge.statuses()]

    def _after_sync(self, now: datetime) -> None:
        """Tell subscribers of bulletins learned from the air or a broker; route asks other
        boards passed on."""
        learned = [b for engine in self._engines() for b in engine.take_learned()]
        for bulletin in learned:
            self._ring_news.notice(bulletin, now)
            if self._subscriptions is not None:
                self._subscriptions.notice(bulletin, now)
        for ask in [a for engine in self._engines() for a in engine.take_asks()]:
            routed = self._router.from_board(ask, now) if self._router is not None else Routed()
            for reply in routed.deliver:
                self._put_news(reply, now)
            if routed.forward is not None:
                self.outbox.put(Outgoing(routed.forward.ring, encode(routed.forward)))

    def _put_news(self, reply: Reply, now: datetime) -> None:
        """Queue news a person asked for earlier, named by its ring as replies are; never a
        private ring's to a non-member (one who left, or whose record expired, since they
        subscribed or lent the tool)."""
        if not self._handler.membership.may_read(reply.to, reply.ring, now):
            logger.info("not sending %s's news of ring %d: not a member now", reply.to, reply.ring)
            return
        spec = self.config.by_channel(reply.ring)
        tag = "" if spec is None else tag_of(spec)
        self.outbox.put(replace(reply, text=tag + reply.text) if tag else reply)

    def _key_learned(self, received: ReceivedNodeInfo, now: datetime) -> None:
        """The radio holds `received.sender`'s key now: joins that waited for it are made, and
        replies that waited for it go."""
        outcome = self._handler.key_learned(received.sender, received.public_key, now)
        for engine in self._engines():
            for record in outcome.members:
                engine.local_member(record, now)
        self.outbox.key_known(received.sender)

    def _ask_for_key(self, reply: Reply) -> None:
        """The radio refused a reply for want of the person's key (on the outbox's thread)."""
        self._request_key(reply.to, reply.ring)

    def _request_key(self, node: str, channel: int) -> None:
        """Ask `node` for its node info on `channel`, at most once per NODE_INFO_EVERY."""
        at = self._clock.monotonic()
        with self._asked_lock:
            last = self._asked_for_key.get(node)
            if last is not None and at - last < NODE_INFO_EVERY:
                return
            self._asked_for_key = {
                n: t for n, t in self._asked_for_key.items() if at - t < NODE_INFO_EVERY
            }
            self._asked_for_key[node] = at
        logger.info("asking %s for its node info: the radio has no key for it", node)
        try:
            self._supervisor.send(lambda link: link.request_node_info(node, channel))
        except LinkError as error:
            logger.info("could not ask %s for its node info: %s", node, error)

    def _serve_radio(self, node_id: str, now: datetime) -> None:
        if self.node_id is not None and node_id != self.node_id:
            logger.warning("the radio is now %s, was %s", node_id, self.node_id)
        if self._sync_started:
            self.health.count("reconnects")
        away = None if self._down_since is None else (now - self._down_since).total_seconds()
        # After a long outage (or on a new radio) Trickle starts over, so neighbours compare
        # notes soon; a short one changes nothing the timers have not allowed for, and
        # restarting them would spend airtime on digests a quiet neighbourhood does not need.
        if not self._sync_started or node_id != self.node_id or (away or 0.0) > SYNC_RESTART_AFTER:
            self._sync.start(now, node_id)
        self.node_id = node_id
        self._down_since = None
        self._sync_started = True
        if self._bridge is not None:
            self._join_brokers(node_id, now)
        if self._supervisor.connected:  # not lost again already
            self.connected.set()
            self.health.connected(node_id)
        logger.info("board %s serving", node_id)

    def _join_brokers(self, node_id: str, now: datetime) -> None:
        """Start the bridge with the radio's channel keys (again if they changed)."""
        assert self._bridge is not None
        try:
            channels = self._supervisor.send(lambda link: link.channels())
        except LinkError as error:
            logger.info("cannot read the radio's channels for the bridge yet: %s", error)
            return
        self._bridge.start(node_id, channels, now)

    def _send_reply(self, reply: Reply) -> int:
        return self._supervisor.send(lambda link: link.send_text(reply.text, reply.to, reply.ring))

    def _send_board(self, outgoing: Outgoing) -> None:
        self._supervisor.send(lambda link: link.send_board(outgoing.payload, outgoing.ring))

    def _purge(self, now: datetime) -> None:
        removed = self._store.purge_expired(now)
        if removed:
            logger.info("purged %d expired bulletins", removed)

    def _on_link_up(self, node_id: str) -> None:
        self._inbound.put(_LinkUp(node_id))
        self.outbox.link_up()

    def _on_link_down(self, reason: str | None) -> None:
        """The radio is gone (`reason`), or the daemon is stopping (None)."""
        self.connected.clear()
        if reason is not None:
            self.health.disconnected(reason)
            if self._down_since is None:
                self._down_since = self._clock.now()


def _serial_link(port: str) -> LinkFactory:
    return lambda: MeshtasticLink(port)
