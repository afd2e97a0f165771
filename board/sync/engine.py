"""The sync engine: what a board sends on the board plane, and when, so that boards agree.

Two mechanisms, because a new bulletin and a lost packet need different things (the full
reasoning and the arithmetic are in docs/wire-format.md):

* **Relay flood for news.** A board that learns an item it did not ask for announces it once,
  after a random delay in [0, relay_window), unless `redundancy_k` other boards (not the one it
  learned from) announce it first: counter-based suppression, Trickle's k applied to data.
  Packets go out with hop limit 0, so this *is* the flood: each board transmits each new item at
  most once, and boards beyond the firmware's hop limit still get it.
* **Trickle-paced digests for repair.** Each ring has a Trickle timer (RFC 6206). A digest that
  differs from ours is answered after 2 to 3 relay windows, and only if it still differs once
  what its sender announced since is folded in (a flood in progress usually closes the gap
  first), by an Inventory of the differing buckets; that tells both sides what to Request and
  what to push.

News never touches Trickle: resetting every board's timer on every post would cost more airtime
than the flood. Trickle goes back to imin only when a board finds itself missing items, or a
neighbour missing several. Small checks close the gaps a flood can leave instead:
a board that held its relay back sends one digest after the flood (so a neighbour only it reaches
gets repaired); a board that sent an item, or got it by asking, sends one later if a neighbour it
knows has still not shown the item (retried a few times: that is what makes a lossy line
converge); and a board that pushed items sends one unless it hears them passed on. A board
whose item no neighbour has shown at all by then (none relayed it, none showed it in a digest)
sends the item itself again, at most twice: its packet was lost, and the flood waits for it.

Items learned by asking (a Request we sent or heard) are not relayed when older than FRESH: they
are repairs, usually for a board that was away, whose neighbours already have them. A younger
one was asked for because a packet upstream was lost, and the flood goes on from here.

All scheduling state lives in memory; a restart just restarts Trickle at imin. Everything
stored goes through `Store`, one transaction per item.

Hostile or broken input changes nothing: a packet that does not decode is counted and dropped;
with a rate limiter (the daemon always has one) a board sending beyond a generous rate has its
packets dropped, logged once per stretch; and an item that would outlive anything a board could
post today (it expires more than MAX_LIFETIME from our clock: a forged time, or a clock off by
more than a year) is refused, as is one already expired.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import chain

from board.bulletin import MAX_LIFETIME, Bulletin, Tombstone
from board.errors import ForeignPacket, MalformedPacket
from board.messages import Outgoing
from board.mod_policy import ModerationPolicy
from board.ratelimit import RateLimiter
from board.store.applied import Applied
from board.store.bulletins import Store
from board.store.moderation import ModerationStore
from board.store.tools import ToolStore
from board.sync.keyset import KeySet
from board.sync.reconcile import consistent, differing, fold, inventories, prefix, summarise
from board.sync.trickle import Trickle
from board.wire.codec import (
    DIGEST_BYTES,
    HEADER_BYTES,
    MAX_ANNOUNCE_BULLETIN,
    MAX_DIGEST_ASKS,
    MAX_REQUEST_PREFIXES,
    TOMBSTONE_BYTES,
    Announce,
    Digest,
    Inventory,
    Message,
    Request,
    TombstoneMsg,
    decode,
    encode,
    is_node_id,
    kind_of,
)
from board.wire.keys import (
    bucket_of,
    bulletin_key,
    bytes_to_id,
    id_to_bytes,
    ids_to_keys,
    tombstone_key,
)
from board.wire.moderation import ModerationMsg
from board.wire.tools import AskMsg, ToolStateMsg

logger = logging.getLogger(__name__)

#: How long a requested key prefix is remembered (in relay windows): what arrives for it in that
#: time is a repair, not news, and is not relayed.
REQUEST_MEMORY = 8.0


@dataclass(frozen=True)
class SyncConfig:
    rings: frozenset[int] = frozenset({0})  # rings this board serves; anything else is dropped
    imin: float = 15.0  # Trickle, seconds
    imax: float = 7200.0  # two hours: a radio neighbourhood hears about one digest an hour
    redundancy_k: int = 1  # consistent digests, or other announces of an item, that suppress ours
    relay_window: float = 8.0  # ≫ one packet's airtime, so a neighbour's relay can suppress ours


@dataclass
class SyncStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dropped_foreign: int = 0
    dropped_malformed: int = 0
    dropped_wrong_ring: int = 0
    dropped_rate_limited: int = 0  # the sending board was over its rate
    dropped_expired: int = 0  # a bulletin already expired by our clock
    dropped_implausible: int = 0  # an item expiring more than MAX_LIFETIME from now
    dropped_orphan_states: int = 0  # a tool state for a tool not held here (yet)
    dropped_unverified: int = 0  # a moderation whose signature, key or moderator we refuse
    suppressed: int = 0  # scheduled transmissions cancelled because others already sent them
    resent: int = 0  # items announced again because no neighbour showed them (see RESEND_TRIES)
    sent: Counter[str] = field(default_factory=Counter)  # by message kind: "announce", "digest"…
    digest_reasons: Counter[str] = field(default_factory=Counter)  # "trickle", "audit", "followup"


@dataclass
class _Pending:
    """An announce we mean to make; others who announce the item first may make it pointless.

    Hearings count once per sender, and never the board we learned the item from, so a packet
    received twice, or the teaching packet itself, does not suppress the relay.
    """

    due: float
    teacher: str | None = None
    heard: set[str] = field(default_factory=set)
    news: bool = False  # a local post or a relay (not an answer to a request or inventory)

    def holders(self) -> set[str]:
        """The boards known to have the item: who taught us, and who announced it since."""
        return self.heard | ({self.teacher} if self.teacher is not None else set())


@dataclass
class _Answer:
    """An Inventory we owe a neighbour whose digest differed from ours."""

    due: float
    digest: Digest
    since: set[bytes] = field(default_factory=set)  # keys the sender announced after its digest


@dataclass
class _Audit:
    """A digest we may owe after a flood: unless every neighbour shows it has the item."""

    due: float
    holders: set[str]
    proof: bool  # we held back our relay: a digest shows neighbours we have the item after all
    tries: int = 0  # digests sent asking neighbours that have not shown it
    sent_from: str | None = None  # we sent the item, learned from this board ("" for our own)
    resent: int = 0  # announces sent again because no neighbour showed the item


@dataclass
class _Ring:
    trickle: Trickle
    announces: dict[bytes, _Pending] = field(default_factory=dict)  # by item key
    answers: dict[str, _Answer] = field(default_factory=dict)  # by digest sender
    wanted: set[bytes] = field(default_factory=set)  # key prefixes to request
    request_due: float | None = None
    requested: dict[bytes, float] = field(default_factory=dict)  # prefix -> remembered until
    refused: dict[bytes, None] = field(default_factory=dict)  # prefixes of items we would not
    # store, oldest first (at most MAX_REFUSED, so a hostile neighbour cannot grow it for ever)
    items: _Items | None = None  # the last view of the store, valid until `items_until`
    items_from: float = 0.0
    items_until: float = 0.0  # the next expiry, or `read_due`
    read_due: float = 0.0  # when the whole ring is read again, for changes from outside
    saw: set[bytes] = field(default_factory=set)  # keys this engine stored since that view
    audits: dict[bytes, _Audit] = field(default_factory=dict)  # by item key
    neighbours: dict[str, float] = field(default_factory=dict)  # board heard -> when, last
    missers: dict[str, float] = field(default_factory=dict)  # board seen missing items -> until
    followups: dict[str, set[bytes]] = field(default_factory=dict)  # pushed to -> not yet heard
    followup_due: float | None = None
    asked_due: float | None = None  # a neighbour's digest asked us to show we agree
    digest_sent: float = float("-inf")  # when we last sent a digest
    introduced: bool = False  # sent a digest since start, so neighbours know this board
    quiet_from: float = 0.0  # no digest before this: news was moving here until lately

    def forget_items(self) -> None:
        """Read the store again next time; the old view stays, to tell what came from outside."""
        self.items_until = self.read_due = float("-inf")

    def busy(self, t: float) -> bool:
        """News is still moving here, so a digest now would report a difference about to close."""
        return bool(self.announces or self.wanted or self.answers) or t < self.quiet_from


@dataclass(frozen=True)
class _Items:
    """A ring's active items as sync sees them, read from the store at one moment."""

    # The ring's bulletin keys, packed. A key is its id's bytes: `bytes_to_id` gives the id
    # back, so the id strings are not kept.
    bulletins: KeySet
    tombstones: dict[bytes, Tombstone]  # key -> tombstone
    deleted: frozenset[bytes]  # keys of tombstoned bulletins: never worth asking for
    tools: dict[bytes, ToolStateMsg] = field(default_factory=dict)  # key -> a tool's state
    moderations: dict[bytes, ModerationMsg] = field(default_factory=dict)  # key -> winning action

    def all_keys(self) -> Iterator[bytes]:
        """Every key, made as it is needed: a ring's full list would be 30,000 objects."""
        return chain(self.bulletins, self.tombstones, self.tools, self.moderations)

    def others(self) -> Iterator[bytes]:
        """The keys of tombstones, tool states and moderations (few, and held in dicts)."""
        return chain(self.tombstones, self.tools, self.moderations)

    def __contains__(self, key: bytes) -> bool:
        return (
            key in self.tombstones
            or key in self.tools
            or key in self.moderations
            or key in self.bulletins  # last: a bisection, where the others are a hash lookup
        )


#: The item cache is re-read from the store at least this often (seconds), in case something
#: other than this engine changed the store without telling it.
ITEMS_MAX_AGE = 60.0

#: Boards heard on a ring within this many seconds count as its neighbours.
NEIGHBOUR_MEMORY = 86400.0

#: When an audit digest is due, in relay windows after the relay was held back or sent. Boards
#: that held back speak first: their digests show they have the item, so the boards that sent
#: it usually find every neighbour accounted for and stay silent.
SUPPRESSED_AUDIT = (2, 4)
SENT_AUDIT = (5, 6)
#: Digests one flood may cost a board while a neighbour it knows has not shown the item.
AUDIT_TRIES = 3
#: An item made this recently is relayed even when it came in answer to a request: a lost
#: packet upstream, not a board that was away, is why it was asked for, and if the boards that
#: repair it do not pass it on, every further hop waits for its own repair (a post took up to
#: 18 minutes to cross the demo's street of six boards).
FRESH = timedelta(minutes=10)
#: Times a board sends an item again when no neighbour but the one it learned it from has
#: shown it by the audit: a lost packet then stops a flood only for an audit's wait (40 to 48 s
#: at LongFast), where it waited for Trickle's next digests, minutes later.
RESEND_TRIES = 2
#: An announce must be this many times a digest's size before holding it back saves airtime.
HOLD_BACK_FACTOR = 1.5
#: Seconds within which a digest we sent crossed a neighbour's asking digest on the air: the
#: asker hears ours after asking, so it needs no second answer (a digest is under 1 s on air).
ASK_CROSSING = 2.0

#: Refused item prefixes remembered per ring (4 bytes each, so never worth asking for again).
MAX_REFUSED = 4096

#: Seconds of slack when deciding what is due: `next_wakeup` rounds to microseconds, and a
#: clock that wakes exactly then must still find the work due.
_SLACK = 1e-3


class SyncEngine:
    """Board-plane sync for one board: feed it what is heard, send what `poll` returns."""

    def __init__(
        self,
        store: Store,
        config: SyncConfig,
        rng: random.Random,
        *,
        limiter: RateLimiter | None = None,
        tools: ToolStore | None = None,
        policy: ModerationPolicy | None = None,
    ) -> None:
        self.store = store
        self.tools = tools if tools is not None else ToolStore(store)
        self._learned_bulletins: list[Bulletin] = []  # stored from the air, for subscriptions
        self._asks: list[AskMsg] = []  # heard from other boards, for the ask router
        self.moderation = ModerationStore(store.engine)
        self._policy = policy or ModerationPolicy()
        self.config = config
        self.stats = SyncStats()
        self._rng = rng
        self._limiter = limiter
        self._node_id: str | None = None
        k = config.redundancy_k
        self._rings = {
            ring: _Ring(Trickle(config.imin, config.imax, k, rng)) for ring in sorted(config.rings)
        }

    # -- inputs ---------------------------------------------------------------------------------

    def start(self, now: datetime, node_id: str | None = None) -> None:
        """Begin Trickle on every ring at imin: a restarted board compares notes soon.

        `node_id` is this board's own id, so it knows when a neighbour's digest asks it.
        """
        self._node_id = node_id
        for ring, state in self._rings.items():
            state.trickle.start(now.timestamp())
            state.introduced = False
            state.forget_items()
            self._items(ring, now)  # what is in the store now is known (see `rescan`)

    def local_bulletin(self, bulletin: Bulletin, now: datetime) -> None:
        """A bulletin stored from a handheld or the CLI: announce it once, now."""
        state = self._rings.get(bulletin.ring)
        if state is None:
            logger.info("not syncing bulletin %s: ring %d not served", bulletin.id, bulletin.ring)
            return
        if len(bulletin.canonical_bytes()) > MAX_ANNOUNCE_BULLETIN:
            logger.warning("bulletin %s is too long for one packet; it stays local", bulletin.id)
            return
        key = bulletin_key(bulletin.id)
        # Now in the store: add it to the cached view rather than read a busy ring again.
        self._cache_add(state, key, bulletin.expires_at)
        state.announces[key] = _Pending(now.timestamp(), news=True)
        state.quiet_from = now.timestamp() + 2 * self.config.relay_window

    def local_tombstone(self, bulletin_id: str, now: datetime) -> None:
        """A deletion made here (already in the store): announce the tombstone once, now."""
        tombstone = self.store.get_tombstone(bulletin_id)
        if tombstone is None or tombstone.ring not in self._rings:
            logger.info("no tombstone to sync for %s", bulletin_id)
            return
        state = self._rings[tombstone.ring]
        state.forget_items()
        state.announces.pop(bulletin_key(bulletin_id), None)
        self._saw(state, tombstone_key(bulletin_id))
        state.announces[tombstone_key(bulletin_id)] = _Pending(now.timestamp(), news=True)

    def local_tool_state(self, msg: ToolStateMsg, now: datetime) -> None:
        """An owner's word on a tool, stored here: announce it once, now."""
        state = self._rings.get(msg.ring)
        if state is None:
            return
        state.forget_items()
        self._saw(state, msg.item_key())
        state.announces[msg.item_key()] = _Pending(now.timestamp(), news=True)

    def take_learned(self) -> list[Bulletin]:
        """Bulletins stored from the air since the last call."""
        learned, self._learned_bulletins = self._learned_bulletins, []
        return learned

    def take_asks(self) -> list[AskMsg]:
        """Asks other boards passed on, heard since the last call (already ring-checked)."""
        asks, self._asks = self._asks, []
        return asks

    def local_moderation(self, msg: ModerationMsg, now: datetime) -> None:
        """A moderation this board verified and stored: announce it once, now."""
        state = self._rings.get(msg.ring)
        if state is None:
            logger.info("not syncing a moderation: ring %d not served", msg.ring)
            return
        state.forget_items()
        self._saw(state, msg.key)
        state.announces[msg.key] = _Pending(now.timestamp(), news=True)

    def rescan(self, now: datetime) -> None:
        """Look for items another process put in the store (an imported bundle, a CLI post).

        The daemon calls this every ITEMS_MAX_AGE; the store is read again only when the cached
        view is that old. What is new to this engine is announced as news, after a random
        delay so that boards given the same bundle do not all speak at once.
        """
        for ring in self._rings:
            self._items(ring, now)

    def receive(self, payload: bytes, ring: int, sender: str, now: datetime) -> None:
        """A board-plane packet heard on channel `ring`; bad input is logged and counted only."""
        self.stats.received += 1
        if self._limiter is not None:
            verdict = self._limiter.check(sender, now)
            if not verdict.allowed:
                self.stats.dropped_rate_limited += 1
                if verdict.first_refusal:
                    logger.warning(
                        "board %s is sending too fast: dropping its packets for %d s",
                        sender,
                        verdict.retry_seconds,
                    )
                return
        try:
            msg = decode(payload)
        except ForeignPacket as exc:
            self.stats.dropped_foreign += 1
            logger.debug("dropped a packet from %s: %s", sender, exc)
            return
        except MalformedPacket as exc:
            self.stats.dropped_malformed += 1
            logger.info("dropped a malformed packet from %s: %s", sender, exc)
            return
        state = self._rings.get(ring)
        if state is None or msg.ring != ring:
            self.stats.dropped_wrong_ring += 1
            logger.info("dropped a %s from %s heard on ring %d", kind_of(msg).name, sender, ring)
            return
        t = now.timestamp()
        state.neighbours[sender] = t
        match msg:
            case Announce():
                self._on_announce(state, msg.bulletin(), sender, now)
            case TombstoneMsg():
                self._on_tombstone(state, msg, sender, now)
            case Digest():
                self._on_digest(state, msg, sender, now)
            case Inventory():
                self._on_inventory(state, msg, sender, now)
            case Request():
                self._on_request(state, msg, sender, now)
            case ToolStateMsg():
                self._on_tool_state(state, msg, sender, now)
            case AskMsg():
                self._asks.append(msg)
            case ModerationMsg():
                self._on_moderation(state, msg, sender, now)
        state.requested = {p: until for p, until in state.requested.items() if until > t}

    # -- outputs --------------------------------------------------------------------------------

    def poll(self, now: datetime) -> list[Outgoing]:
        """Everything due for transmission now, in the order it should go out."""
        out: list[Outgoing] = []
        t = now.timestamp() + _SLACK
        for ring, state in self._rings.items():
            self._resend_unshown(state, t)
            out.extend(self._due_announces(ring, state, now))
            out.extend(self._due_requests(ring, state, t))
            out.extend(self._due_answers(ring, state, now))
            # Every reason is looked at (each clears its own state); one digest serves them all.
            asks = self._audit_asks(state, t)
            reasons = {
                "audit": asks is not None,
                "followup": self._followup_wants_digest(state, t),
                "asked": state.asked_due is not None and state.asked_due <= t,
                "trickle": False,
            }
            if state.trickle.should_transmit(t, force=not state.introduced):
                if state.busy(t):
                    self.stats.suppressed += 1  # news is still moving: this digest would lie
                else:
                    reasons["trickle"] = True
            if any(reasons.values()):
                logger.debug(
                    "ring %d: digest for %s", ring, ", ".join(r for r, on in reasons.items() if on)
                )
                self.stats.digest_reasons.update(r for r, on in reasons.items() if on)
                digest = summarise(ring, self._items(ring, now).all_keys())
                out.append(self._send(ring, replace(digest, asks=asks or ())))
                state.asked_due = None
                state.introduced = True
                state.digest_sent = t
        return out

    def next_wakeup(self) -> datetime | None:
        """When `poll` next has something to do."""
        times: list[float] = []
        for state in self._rings.values():
            times.extend(p.due for p in state.announces.values())
            times.extend(a.due for a in state.answers.values())
            if state.request_due is not None:
                times.append(state.request_due)
            times.extend(a.due for a in state.audits.values())
            if state.followup_due is not None:
                times.append(state.followup_due)
            if state.asked_due is not None:
                times.append(state.asked_due)
            event = state.trickle.next_event()
            if event is not None:
                times.append(event)
        return datetime.fromtimestamp(min(times), UTC) if times else None

    # -- handlers -------------------------------------------------------------------------------

    def _on_announce(self, state: _Ring, bulletin: Bulletin, sender: str, now: datetime) -> None:
        key = bulletin_key(bulletin.id)
        if bulletin.expires_at > now + MAX_LIFETIME:
            self.stats.dropped_implausible += 1
            self._refuse(state, key)
            logger.warning(
                "refused bulletin %s from %s: it expires %s, beyond anything a board posts today",
                bulletin.id,
                sender,
                bulletin.expires_at.isoformat(),
            )
            return
        self._heard(state, key, sender, now.timestamp())
        if key in self._items(bulletin.ring, now).bulletins:
            self.stats.duplicates += 1  # the common case in a flood: no need to ask the database
            return
        if self.store.add(bulletin, now):
            self._cache_add(state, key, bulletin.expires_at)
            self._learned_bulletins.append(bulletin)
            self._learned(state, key, sender, now, bulletin.created_at)
            return
        if self.store.get_tombstone(bulletin.id) is not None:
            self.stats.duplicates += 1
            # Someone still has a bulletin we deleted: tell them, once per neighbourhood.
            self._schedule(state, tombstone_key(bulletin.id), now)
        elif bulletin.expires_at <= now:
            self.stats.dropped_expired += 1
            self._refuse(state, key)
            logger.info(
                "refused bulletin %s from %s: it expired %s",
                bulletin.id,
                sender,
                bulletin.expires_at.isoformat(),
            )
        else:
            self.stats.duplicates += 1

    def _on_tombstone(self, state: _Ring, msg: TombstoneMsg, sender: str, now: datetime) -> None:
        bulletin_id = bytes_to_id(msg.target)
        key = tombstone_key(bulletin_id)
        if msg.expires_at > now + MAX_LIFETIME:
            self.stats.dropped_implausible += 1
            self._refuse(state, key)
            logger.warning(
                "refused tombstone for %s from %s: it expires %s, beyond any bulletin's life",
                bulletin_id,
                sender,
                msg.expires_at.isoformat(),
            )
            return
        self._heard(state, key, sender, now.timestamp())
        state.announces.pop(bulletin_key(bulletin_id), None)
        tombstone = Tombstone(
            bulletin_id, msg.ring, msg.author, msg.deleted_by, msg.deleted_at, msg.expires_at
        )
        if self.store.apply_tombstone(tombstone, now):
            state.forget_items()  # a deletion: rare, so simply read the store again
            self._saw(state, key)
            self._learned(state, key, sender, now, msg.deleted_at)
        else:
            self.stats.duplicates += 1

    def _on_tool_state(self, state: _Ring, msg: ToolStateMsg, sender: str, now: datetime) -> None:
        """Last-writer-wins: a newer state replaces ours and floods on; an older one is refused,
        and its sender is told ours (it missed the owner's later word).
        """
        key = msg.item_key()
        self._heard(state, key, sender, now.timestamp())
        items = self._items(msg.ring, now)
        if key in items.tools:
            self.stats.duplicates += 1
            return
        result = self.tools.apply(msg)
        if result.applied is Applied.ORPHAN:
            # The tool itself has not reached us yet; a later repair brings both.
            self.stats.dropped_orphan_states += 1
            return
        if result.applied is Applied.STALE:
            self.stats.duplicates += 1
            self._refuse(state, key)
            ours = next((k for k, s in items.tools.items() if s.target == msg.target), None)
            if ours is not None:
                self._schedule(state, ours, now)
            return
        state.forget_items()
        if result.replaced is not None:
            old = result.replaced.item_key()
            self._refuse(state, old)  # superseded: never worth asking for again
            state.announces.pop(old, None)
        self._learned(state, key, sender, now, datetime.fromtimestamp(msg.stamp, UTC))

    def _on_moderation(self, state: _Ring, msg: ModerationMsg, sender: str, now: datetime) -> None:
        """Keep a moderation that a trusted board verified; refuse, count and log any other."""
        key, bulletin_id = msg.key, bytes_to_id(msg.target)
        if msg.expires_at > now + MAX_LIFETIME:
            self.stats.dropped_implausible += 1
            self._refuse(state, key)
            return
        if key in self._items(msg.ring, now).moderations:
            self._heard(state, key, sender, now.timestamp())
            self.stats.duplicates += 1
            return
        reason = self._policy.refusal(msg, now)
        if reason is not None:
            self.stats.dropped_unverified += 1
            if prefix(key) not in state.refused:  # log (and audit) each forgery once
                logger.warning(
                    "refused a moderation of %s from %s: %s", bulletin_id, sender, reason
                )
                self._audit_air(msg, sender, now, refused=reason)
            self._refuse(state, key)
            return
        self._heard(state, key, sender, now.timestamp())
        result = self.moderation.apply(msg, now)
        if result is Applied.NEW:
            state.forget_items()  # rare: simply read the store again
            self._audit_air(msg, sender, now)
            self._learned(state, key, sender, now, msg.at)
            return
        self.stats.duplicates += 1
        if result is Applied.STALE:
            # We hold a later action on this bulletin: never ask for this one again, and let
            # its sender hear ours (once per neighbourhood, like a tombstone).
            self._refuse(state, key)
            held = self.moderation.current(bulletin_id)
            if held is not None and held.ring == msg.ring and held.expires_at > now:
                self._schedule(state, held.key, now)

    def _audit_air(self, msg: ModerationMsg, sender: str, now: datetime, refused: str = "") -> None:
        """One audit-log row for a moderation heard from `sender` over the air."""
        self.moderation.log(
            at=now,
            ring=msg.ring,
            moderator=msg.moderator,
            action=msg.action,
            bulletin=bytes_to_id(msg.target),
            source=f"air:{sender}",
            board_key=msg.board_key,
            refused=refused,
        )

    def _on_digest(self, state: _Ring, digest: Digest, sender: str, now: datetime) -> None:
        ours = summarise(digest.ring, self._items(digest.ring, now).all_keys())
        if consistent(ours, digest):
            state.trickle.heard_consistent()
            state.answers.pop(sender, None)
            for audit in state.audits.values():
                audit.holders.add(sender)
            state.followups.pop(sender, None)
            t = now.timestamp()
            crossed = t - state.digest_sent < ASK_CROSSING  # ours went out as it asked
            if self._node_id in digest.asks and state.asked_due is None and not crossed:
                # The sender cannot tell that we have what it sent us: show it, soon.
                state.asked_due = t + self._rng.uniform(0, self.config.relay_window)
            self._postpone_same_asks(state, digest, sender, t)
            return
        # The sets differ somewhere; a bucket that agrees still shows the sender has its items.
        pairs = enumerate(zip(ours.buckets, digest.buckets, strict=True))
        agreeing = {bucket for bucket, (a, b) in pairs if a == b}
        for key, audit in state.audits.items():
            if bucket_of(key) in agreeing:
                audit.holders.add(sender)
        self._postpone_same_asks(state, digest, sender, now.timestamp())
        window = self.config.relay_window
        answer = state.answers.get(sender)
        if answer is None:
            due = now.timestamp() + self._rng.uniform(2 * window, 3 * window)
            state.answers[sender] = _Answer(due, digest)
        else:
            answer.digest, answer.since = digest, set()

    def _on_inventory(self, state: _Ring, inventory: Inventory, sender: str, now: datetime) -> None:
        items = self._items(inventory.ring, now)
        ours = {prefix(key): key for key in items.all_keys() if inventory.covers(key)}
        theirs = set(inventory.prefixes)
        skip = {prefix(key) for key in items.deleted} | state.refused.keys()
        missing = theirs - ours.keys() - skip
        extra = [key for p, key in ours.items() if p not in theirs]
        if extra:
            self._suspect(state, sender, now.timestamp())
        self._cancel_same_answers(state, inventory, items, agree=not missing and not extra)
        t = now.timestamp()
        for key in extra:
            self._schedule(state, key, now)
        if extra:
            # Check that the pushes arrived, unless we hear the neighbour relay them on.
            state.followups.setdefault(sender, set()).update(extra)
            if state.followup_due is None:
                window = self.config.relay_window
                state.followup_due = t + self._rng.uniform(3 * window, 4 * window)
        fresh = missing - state.wanted
        if fresh:
            state.wanted |= fresh
            due = t + self._rng.uniform(0, self.config.relay_window / 2)
            state.request_due = due if state.request_due is None else min(state.request_due, due)
        if missing or len(extra) > 1:
            # Someone has been missing traffic (lost packets, or a board was away): compare
            # notes often for a while. One item that a neighbour lacks is what a hole in a flood
            # looks like; the push fixes it, and resetting Trickle there would cost more airtime
            # than the flood itself.
            state.trickle.heard_inconsistent(t)

    def _on_request(self, state: _Ring, request: Request, sender: str, now: datetime) -> None:
        t = now.timestamp()
        self._suspect(state, sender, t)  # it missed something
        memory = t + REQUEST_MEMORY * self.config.relay_window
        asked = set(request.key_prefixes)
        for p in asked:
            state.requested[p] = memory
        state.wanted -= asked  # someone asked already; we will hear the answer too
        if not state.wanted:
            state.request_due = None
        by_prefix: dict[bytes, list[bytes]] = {}
        for key in self._items(request.ring, now).all_keys():
            by_prefix.setdefault(prefix(key), []).append(key)
        for p in sorted(asked):  # sorted: the random delays must not depend on hash order
            for key in by_prefix.get(p, []):
                self._schedule(state, key, now)

    # -- helpers --------------------------------------------------------------------------------

    def _heard(self, state: _Ring, key: bytes, sender: str, now: float) -> None:
        """`sender` announced `key`: count it against our own pending announce of it."""
        answer = state.answers.get(sender)
        if answer is not None:
            answer.since.add(key)
        if key in state.audits:
            state.audits[key].holders.add(sender)
        if sender in state.followups:
            state.followups[sender].discard(key)
            if not state.followups[sender]:
                del state.followups[sender]
        pending = state.announces.get(key)
        if pending is None or sender == pending.teacher:
            return
        pending.heard.add(sender)
        known = self._known(state, now)
        # Counting copies alone leaves holes in a sparse mesh, where the two boards that heard
        # the same pair of relays may be the only way to a third group: hold back only when at
        # least half the neighbours we know have shown the item too.
        covered = 2 * len(known & pending.holders()) >= len(known)
        if len(pending.heard) >= self.config.redundancy_k and covered and self._worth_holding(key):
            del state.announces[key]
            self.stats.suppressed += 1
            if pending.news:
                # Counting copies cannot see a neighbour that only we reach.
                self._audit_later(state, key, pending.holders(), now, held_back=True)

    def _learned(
        self, state: _Ring, key: bytes, teacher: str, now: datetime, made_at: datetime
    ) -> None:
        """A new item is stored: relay it, unless it answered a request for an item older than
        FRESH (a repair, for a board that was away: its other neighbours have it already).
        """
        self.stats.stored += 1
        self._saw(state, key)  # ours now: a later read of the store must not announce it again
        state.quiet_from = now.timestamp() + 2 * self.config.relay_window
        p = prefix(key)
        state.wanted.discard(p)
        if not state.wanted:
            state.request_due = None
        if p in state.requested and now - made_at > FRESH:
            # A repair: not relayed, but a neighbour we know that lacks it too should hear of it.
            self._audit_later(state, key, {teacher}, now.timestamp(), held_back=False)
            return
        self._schedule(state, key, now, teacher)

    def _schedule(
        self, state: _Ring, key: bytes, now: datetime, teacher: str | None = None
    ) -> None:
        """Announce `key` after a random delay in the relay window, unless others do first."""
        if key not in state.announces:
            due = now.timestamp() + self._rng.uniform(0, self.config.relay_window)
            state.announces[key] = _Pending(due, teacher, news=teacher is not None)

    def _cancel_same_answers(
        self, state: _Ring, inventory: Inventory, items: _Items, *, agree: bool
    ) -> None:
        """Drop Inventories we owe when this one already lists what ours would."""
        if not agree:
            return
        ours = summarise(inventory.ring, items.all_keys())
        for sender, answer in list(state.answers.items()):
            mask = differing(ours, answer.digest)
            if inventory.low == 0 and inventory.high == 0xFFFF and mask & ~inventory.mask == 0:
                del state.answers[sender]
                self.stats.suppressed += 1

    def _items(self, ring: int, now: datetime) -> _Items:
        """The ring's active items, cached until something changes or the next expiry."""
        state = self._rings[ring]
        t = now.timestamp()
        if state.items is not None and state.items_from <= t < state.items_until:
            return state.items
        if state.items is not None and state.items_from <= t < state.read_due:
            state.items = self._drop_expired(ring, state.items, state.items_from, now)
        else:
            items = self._read_items(ring, now)
            self._announce_outside(state, state.items, items, now)
            state.items, state.saw = items, set()
            state.read_due = t + ITEMS_MAX_AGE
        state.items_from = t
        expiry = self.store.next_expiry(ring, now)
        state.items_until = state.read_due
        if expiry is not None:
            state.items_until = min(state.items_until, expiry.timestamp())
        return state.items

    def _drop_expired(self, ring: int, items: _Items, since: float, now: datetime) -> _Items:
        """The view less what expired after `since`, without reading the ring again: a ring
        of 40,000 bulletins loses one every few seconds, and a full read takes 50 ms.
        """
        gone = set(
            ids_to_keys(self.store.ids_expired(ring, datetime.fromtimestamp(since, UTC), now))
        )
        items.bulletins.discard_all(gone)
        tombstones = {k: v for k, v in items.tombstones.items() if v.expires_at > now}
        return replace(
            items,
            tombstones=tombstones,
            deleted=frozenset(id_to_bytes(t.bulletin_id) for t in tombstones.values()),
            tools={k: s for k, s in items.tools.items() if s.target not in gone},
            moderations={k: m for k, m in items.moderations.items() if m.expires_at > now},
        )

    @staticmethod
    def _saw(state: _Ring, key: bytes) -> None:
        """This engine put `key` in the store: reading it back later is not news from outside."""
        state.saw.add(key)

    def _announce_outside(
        self, state: _Ring, old: _Items | None, new: _Items, now: datetime
    ) -> None:
        """Announce items that appeared in the store without this engine (see `rescan`): in
        this read, and neither in the last one nor stored by this engine since.
        """
        if old is None:
            return  # the first read since start: what is in the store is known
        fresh = sorted(
            key
            for key in chain(new.bulletins.not_in(old.bulletins), new.others())
            if key not in state.saw and key not in old
        )
        if fresh:
            logger.info("%d items appeared in the store from outside; announcing them", len(fresh))
        for key in fresh:  # sorted: the random delays must not depend on hash order
            if key not in state.announces:
                due = now.timestamp() + self._rng.uniform(0, self.config.relay_window)
                state.announces[key] = _Pending(due, news=True)

    @classmethod
    def _cache_add(cls, state: _Ring, key: bytes, expires_at: datetime) -> None:
        """Keep the cached item view current after storing a bulletin (a flood's common case)."""
        cls._saw(state, key)
        if state.items is not None:
            state.items.bulletins.add(key)
            state.items_until = min(state.items_until, expires_at.timestamp())

    def _read_items(self, ring: int, now: datetime) -> _Items:
        runs = self.store.active_id_runs(ring, now, max_bytes=MAX_ANNOUNCE_BULLETIN)
        # A bulletin's key is its id's bytes, and ids come in ascending order, as keys sort.
        bulletins = KeySet.from_sorted(b"".join(ids_to_keys(run)) for run in runs)
        tombstones = {tombstone_key(t.bulletin_id): t for t in self.store.tombstones(ring, now)}
        deleted = frozenset(id_to_bytes(t.bulletin_id) for t in tombstones.values())
        tools = {s.item_key(): s for s in self.tools.active(ring, now)}
        moderations = {m.key: m for m in self.moderation.actions(ring, now)}
        return _Items(bulletins, tombstones, deleted, tools, moderations)

    def _audit_asks(self, state: _Ring, t: float) -> tuple[str, ...] | None:
        """The neighbours to ask in a digest owed after a flood, or None if none is owed.

        A digest is owed while a neighbour we know has not shown an item we relayed, held back
        or were given: it names those neighbours, and each that agrees answers with its own
        digest. A neighbour that never answers is forgotten until it speaks again, so a board
        switched off for good stops costing digests.
        """
        due = [key for key, audit in state.audits.items() if audit.due <= t]
        if not due:
            return None
        if state.busy(t):
            for key in due:
                state.audits[key].due = max(t, state.quiet_from) + self.config.relay_window
            return None
        for key in due:
            audit = state.audits[key]
            if audit.tries >= AUDIT_TRIES:
                for silent in self._checked(state, t) - audit.holders:
                    logger.info("neighbour %s never showed %s; forgetting it", silent, key.hex())
                    state.neighbours.pop(silent, None)
                del state.audits[key]
        known = self._checked(state, t)
        due = [key for key in due if key in state.audits]
        if not any(state.audits[key].proof or known - state.audits[key].holders for key in due):
            for key in due:
                del state.audits[key]
            self.stats.suppressed += 1
            return None
        # One digest serves every audit, due or not: it asks everyone not yet heard from.
        unshown: set[str] = set()
        window = self.config.relay_window
        for key, audit in list(state.audits.items()):
            audit.proof = False
            missing = known - audit.holders
            if not missing:
                del state.audits[key]
                continue
            unshown |= missing
            # Ask again later: our digest, or the answer to it, may be lost too.
            low, high = SENT_AUDIT
            audit.due = t + self._rng.uniform(low * window, high * window)
            audit.tries += 1
        askable = sorted(n for n in unshown if is_node_id(n) and n != "!00000000")
        return tuple(askable[:MAX_DIGEST_ASKS])

    def _postpone_same_asks(self, state: _Ring, digest: Digest, sender: str, t: float) -> None:
        """Another board asked the neighbours we were about to ask: their answers reach us too."""
        if not digest.asks:
            return
        known = self._checked(state, t)
        asked = set(digest.asks)
        for audit in state.audits.values():
            missing = known - audit.holders - {sender}
            if missing and missing <= asked:
                audit.due = max(audit.due, t + self.config.relay_window)

    def _worth_holding(self, key: bytes) -> bool:
        """Whether holding back our relay of `key` saves airtime.

        A board that holds back later sends a digest to show it has the item, so holding back
        trades an announce for a digest (and risks a hole a repair must close): worth it only
        when the announce is clearly the longer packet. Short bulletins and tombstones are
        simply relayed by every board, and the relay itself shows the neighbours.
        """
        data = self.store.canonical(bytes_to_id(key))
        size = TOMBSTONE_BYTES if data is None else HEADER_BYTES + len(data)
        return size > HOLD_BACK_FACTOR * DIGEST_BYTES

    @staticmethod
    def _known(state: _Ring, t: float) -> set[str]:
        """The boards heard on this ring lately: our neighbours."""
        return {n for n, heard in state.neighbours.items() if heard > t - NEIGHBOUR_MEMORY}

    def _checked(self, state: _Ring, t: float) -> set[str]:
        """The neighbours a flood should check on: those that have missed items lately.

        A board that has missed nothing is trusted to have heard what every board around it
        relayed: asking it after every bulletin, when it was only we who failed to hear its
        relay (two boards we hear, hidden from each other, sent at once), costs more airtime
        than the flood. One that missed something is asked for a day.
        """
        state.missers = {n: until for n, until in state.missers.items() if until > t}
        return self._known(state, t) & state.missers.keys()

    @staticmethod
    def _refuse(state: _Ring, key: bytes) -> None:
        """Never ask for this item again (nor for long: the oldest refusals are forgotten)."""
        state.refused[prefix(key)] = None
        while len(state.refused) > MAX_REFUSED:
            del state.refused[next(iter(state.refused))]

    @staticmethod
    def _suspect(state: _Ring, board: str, t: float) -> None:
        """`board` showed it missed an item: check on it after floods for a day."""
        state.missers[board] = t + NEIGHBOUR_MEMORY

    def _followup_wants_digest(self, state: _Ring, t: float) -> bool:
        """Whether a digest is owed after pushing items we have not heard the neighbour pass on."""
        if state.followup_due is None or state.followup_due > t:
            return False
        if state.busy(t):
            state.followup_due = max(t, state.quiet_from) + self.config.relay_window
            return False
        state.followup_due = None
        if not state.followups:
            self.stats.suppressed += 1
            return False
        state.followups.clear()
        return True

    def _send(self, ring: int, msg: Message) -> Outgoing:
        payload = encode(msg)
        self.stats.sent[kind_of(msg).name.lower()] += 1
        return Outgoing(ring, payload)

    def _due_announces(self, ring: int, state: _Ring, now: datetime) -> list[Outgoing]:
        t = now.timestamp() + _SLACK
        due = sorted((p.due, key) for key, p in state.announces.items() if p.due <= t)
        if not due:
            return []
        items = self._items(ring, now)
        out = []
        for _, key in due:
            pending = state.announces.pop(key)
            msg = self._announcement(items, key)
            if msg is not None:
                out.append(self._send(ring, msg))
                if pending.news:
                    # A lost packet stops a flood: see that the neighbours pass it on.
                    self._audit_later(
                        state,
                        key,
                        pending.holders(),
                        t,
                        held_back=False,
                        sent_from=pending.teacher or "",
                    )
        return out

    def _audit_later(
        self,
        state: _Ring,
        key: bytes,
        holders: set[str],
        now: float,
        *,
        held_back: bool,
        sent_from: str | None = None,
    ) -> None:
        """Owe a digest once the flood of `key` has passed.

        A board that held its relay back sends one regardless: it shows the neighbours that it
        has the item after all, and a neighbour only it reaches (which counting copies cannot
        see) finds the difference and is repaired. Held-back boards speak first, so the boards
        that sent the item usually find every neighbour accounted for. A neighbour we know that
        has still not shown the item (announced it, or sent a digest agreeing on its bucket)
        may have lost the packet: our digest asks it by name, and it answers.
        """
        audit = state.audits.get(key)
        if audit is not None:
            audit.holders |= holders
            return
        low, high = SUPPRESSED_AUDIT if held_back else SENT_AUDIT
        due = now + self._rng.uniform(
            low * self.config.relay_window, high * self.config.relay_window
        )
        state.audits[key] = _Audit(due, holders, proof=held_back, sent_from=sent_from)

    def _resend_unshown(self, state: _Ring, t: float) -> None:
        """Announce again, instead of auditing, what we sent and no neighbour has shown since.

        Nobody passing an item on, when we know a neighbour besides the board we learned it
        from, means our packet was lost: every neighbour that got it relays it or, holding
        back, sends a digest that shows it. A board at the end of a line, or alone, has nobody
        to send it to and stays quiet.
        """
        for key, audit in state.audits.items():
            if audit.due > t or audit.sent_from is None or audit.resent >= RESEND_TRIES:
                continue
            if audit.holders - {audit.sent_from} or not self._known(state, t) - {audit.sent_from}:
                continue
            audit.resent += 1
            low, high = SENT_AUDIT
            audit.due = t + self._rng.uniform(low, high) * self.config.relay_window
            self.stats.resent += 1
            logger.debug("no neighbour showed %s; announcing it again", key.hex())
            if key not in state.announces:
                state.announces[key] = _Pending(t, audit.sent_from or None)

    def _announcement(self, items: _Items, key: bytes) -> Message | None:
        if key in items.moderations:
            return items.moderations[key]
        if key in items.bulletins:
            data = self.store.canonical(bytes_to_id(key))
            return None if data is None else Announce(data)
        if key in items.tools:
            return items.tools[key]
        tombstone = items.tombstones.get(key)
        if tombstone is None:
            return None  # expired or deleted since it was scheduled
        return TombstoneMsg(
            id_to_bytes(tombstone.bulletin_id),
            tombstone.ring,
            tombstone.author,
            tombstone.deleted_by,
            tombstone.deleted_at,
            tombstone.expires_at,
        )

    def _due_requests(self, ring: int, state: _Ring, t: float) -> list[Outgoing]:
        if state.request_due is None or state.request_due > t:
            return []
        wanted = sorted(state.wanted)
        state.wanted.clear()
        state.request_due = None
        memory = t + REQUEST_MEMORY * self.config.relay_window
        out = []
        for start in range(0, len(wanted), MAX_REQUEST_PREFIXES):
            chunk = tuple(wanted[start : start + MAX_REQUEST_PREFIXES])
            for p in chunk:
                state.requested[p] = memory
            out.append(self._send(ring, Request(ring, chunk)))
        return out

    def _due_answers(self, ring: int, state: _Ring, now: datetime) -> list[Outgoing]:
        t = now.timestamp() + _SLACK
        due = [sender for sender, a in state.answers.items() if a.due <= t]
        if not due:
            return []
        items = self._items(ring, now)
        ours = summarise(ring, items.all_keys())
        mask = 0
        for sender in due:
            answer = state.answers.pop(sender)
            updated = fold(answer.digest, answer.since)
            if not consistent(ours, updated):
                mask |= differing(ours, answer.digest)
                self._suspect(state, sender, t)
        if not mask:
            self.stats.suppressed += 1  # the gap closed while we waited
            return []
        return [self._send(ring, inv) for inv in inventories(ring, items.all_keys(), mask)]
