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
neighbour missing several; small checks after each flood close the gaps it can leave instead.

The engine takes what is heard and hands out what is due; the rest is in its parts:
`board.sync.state` (what it remembers of each ring, in memory only), `board.sync.flood` (when an
item is relayed, held back or sent again, and the checks after a flood) and `board.sync.accept`
(what is stored of each kind of item, and what is refused). The repair side, digests,
inventories and requests, is here.

Hostile or broken input changes nothing: a packet that does not decode is counted and dropped;
with a rate limiter (the daemon always has one) a board sending beyond a generous rate has its
packets dropped, logged once per stretch; and an item that would outlive anything a board could
post today is refused (`board.sync.accept`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain

from board.bulletin import Bulletin
from board.errors import ForeignPacket, MalformedPacket
from board.messages import Outgoing
from board.mod_policy import ModerationPolicy
from board.ratelimit import RateLimiter
from board.store.bulletins import Store
from board.store.members import MemberStore
from board.store.moderation import ModerationStore
from board.store.tools import ToolStore
from board.sync.accept import Acceptance
from board.sync.flood import AUDIT_TRIES as AUDIT_TRIES
from board.sync.flood import FRESH as FRESH
from board.sync.flood import HOLD_BACK_FACTOR as HOLD_BACK_FACTOR
from board.sync.flood import RESEND_TRIES as RESEND_TRIES
from board.sync.flood import SENT_AUDIT as SENT_AUDIT
from board.sync.flood import SUPPRESSED_AUDIT as SUPPRESSED_AUDIT
from board.sync.flood import Flood
from board.sync.keyset import KeySet
from board.sync.reconcile import consistent, differing, fold, inventories, prefix, summarise
from board.sync.state import MAX_REFUSED as MAX_REFUSED
from board.sync.state import NEIGHBOUR_MEMORY as NEIGHBOUR_MEMORY
from board.sync.state import Answer, Items, Pending, RingState
from board.sync.state import SyncConfig as SyncConfig
from board.sync.state import SyncStats as SyncStats
from board.sync.trickle import Trickle
from board.wire.codec import (
    MAX_ANNOUNCE_BULLETIN,
    MAX_REQUEST_PREFIXES,
    Announce,
    Digest,
    Inventory,
    Message,
    Request,
    TombstoneMsg,
    decode,
    encode,
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
from board.wire.members import MemberMsg
from board.wire.moderation import ModerationMsg
from board.wire.tombstone import SignedTombstone
from board.wire.tools import AskMsg, ToolStateMsg

logger = logging.getLogger(__name__)

#: How long a requested key prefix is remembered (in relay windows): what arrives for it in that
#: time is a repair, not news, and is not relayed.
REQUEST_MEMORY = 8.0

#: The item cache is re-read from the store at least this often (seconds), in case something
#: other than this engine changed the store without telling it.
ITEMS_MAX_AGE = 60.0

#: Seconds within which a digest we sent crossed a neighbour's asking digest on the air: the
#: asker hears ours after asking, so it needs no second answer (a digest is under 1 s on air).
ASK_CROSSING = 2.0

#: When an item made here is announced, in relay windows after it was made (`_announce_now`).
LOCAL_ANNOUNCE_DELAY = (1.0, 2.0)

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
        self._asks: list[AskMsg] = []  # heard from other boards, for the ask router
        self.moderation = ModerationStore(store.engine)
        self.members = MemberStore(store.engine)
        self.config = config
        self.stats = SyncStats()
        self._rng = rng
        self._limiter = limiter
        self._node_id: str | None = None
        k = config.redundancy_k
        self._rings = {
            ring: RingState(Trickle(config.imin, config.imax, k, rng))
            for ring in sorted(config.rings)
        }
        self._flood = Flood(store, config, rng, self.stats)
        self._accept = Acceptance(
            store,
            self.tools,
            self.moderation,
            self.members,
            policy or ModerationPolicy(),
            stats=self.stats,
            flood=self._flood,
            items=self._items,
        )

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
        state.cache_add(key, bulletin.expires_at)
        self._announce_now(state, key, now)
        state.quiet_from = now.timestamp() + 2 * self.config.relay_window

    def local_tombstone(self, bulletin_id: str, now: datetime) -> None:
        """A deletion made here (already in the store, signed by this board with
        `Store.delete(..., key=)`): announce the tombstone once, now.

        An unsigned one (a board without a key) is not announced: every other board would
        refuse it. It deletes here only; a neighbour that asks for it is sent it, refuses it
        and does not ask again.
        """
        tombstone = self.store.get_tombstone(bulletin_id)
        if tombstone is None or tombstone.ring not in self._rings:
            logger.info("no tombstone to sync for %s", bulletin_id)
            return
        state = self._rings[tombstone.ring]
        state.forget_items()
        state.announces.pop(bulletin_key(bulletin_id), None)
        state.saw.add(tombstone_key(bulletin_id))  # ours: not news from outside either
        if not isinstance(tombstone, SignedTombstone):
            logger.warning(
                "not syncing the deletion of %s: no board key signed it, so other boards "
                "would refuse it",
                bulletin_id,
            )
            return
        self._announce_now(state, tombstone_key(bulletin_id), now)

    def local_tool_state(self, msg: ToolStateMsg, now: datetime) -> None:
        """An owner's word on a tool, stored here: announce it once, now."""
        self._announce_local(msg.ring, msg.item_key(), "a tool's state", now)

    def take_learned(self) -> list[Bulletin]:
        """Bulletins stored from the air since the last call."""
        return self._accept.take_learned()

    def take_asks(self) -> list[AskMsg]:
        """Asks other boards passed on, heard since the last call (already ring-checked)."""
        asks, self._asks = self._asks, []
        return asks

    def local_moderation(self, msg: ModerationMsg, now: datetime) -> None:
        """A moderation this board verified and stored: announce it once, now."""
        self._announce_local(msg.ring, msg.key, "a moderation", now)

    def local_member(self, msg: MemberMsg, now: datetime) -> None:
        """A join or leave this board witnessed and stored: announce it once, now."""
        self._announce_local(msg.ring, msg.key, "a member record", now)

    def _announce_local(self, ring: int, key: bytes, what: str, now: datetime) -> None:
        """An item this board just stored (few per ring, held in dicts): the cached view is read
        again, the item is ours (not news from outside), and it goes out once, now."""
        state = self._rings.get(ring)
        if state is None:
            logger.info("not syncing %s: ring %d not served", what, ring)
            return
        state.forget_items()
        state.saw.add(key)
        self._announce_now(state, key, now)

    def _announce_now(self, state: RingState, key: bytes, now: datetime) -> None:
        """Announce an item made here soon, and compare notes with the neighbours within
        `news_check`: one that lost the announce cannot tell (see `board.sync.flood`).

        Soon, not at once: a person's command is answered by a direct message that the
        firmware floods along the line while it knows no next hop to the person (firmware
        src/mesh/NextHopRouter.cpp `NextHopRouter::send`, `getNextHop`), with the handheld's
        ACK, and an announce sent right after its `ok` met a neighbour's relay of them on the
        air: a hidden terminal two boards away, and the neighbour heard neither
        (bench/bridge.py, 0 % loss: every post waited for the audit's resend, 45 s).
        """
        low, high = LOCAL_ANNOUNCE_DELAY
        window = self.config.relay_window
        due = now.timestamp() + self._rng.uniform(low * window, high * window)
        state.announces[key] = Pending(due, news=True)
        state.trickle.hurry(now.timestamp(), self.config.news_check)

    def rescan(self, now: datetime) -> None:
        """Look for items another process put in the store (an imported bundle, a CLI post).

        The daemon calls this every ITEMS_MAX_AGE; the store is read again only when the cached
        view is that old. What is new to this engine is announced as news, after a random
        delay so that boards given the same bundle do not all speak at once.
        """
        for ring in self._rings:
            self._items(ring, now)

    def reread(self, now: datetime) -> None:
        """Items another engine of this board just stored (the bridge's from the broker, or
        the radio's from the air): read the rings now, not at the next `rescan`, and announce
        what is new here as `rescan` does, after a random delay."""
        for ring, state in self._rings.items():
            state.forget_items()
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
                self._accept.on_bulletin(state, msg.bulletin(), sender, now)
            case TombstoneMsg():
                self._accept.on_tombstone(state, msg, sender, now)
            case Digest():
                self._on_digest(state, msg, sender, now)
            case Inventory():
                self._on_inventory(state, msg, sender, now)
            case Request():
                self._on_request(state, msg, sender, now)
            case ToolStateMsg():
                self._accept.on_tool_state(state, msg, sender, now)
            case AskMsg():
                self._asks.append(msg)
            case ModerationMsg():
                self._accept.on_moderation(state, msg, sender, now)
            case MemberMsg():
                self._accept.on_member(state, msg, sender, now)
        state.requested = {p: until for p, until in state.requested.items() if until > t}

    # -- outputs --------------------------------------------------------------------------------

    def poll(self, now: datetime) -> list[Outgoing]:
        """Everything due for transmission now, in the order it should go out."""
        out: list[Outgoing] = []
        t = now.timestamp() + _SLACK
        for ring, state in self._rings.items():
            self._flood.resend_unshown(state, t)
            out.extend(self._due_announces(ring, state, now))
            out.extend(self._due_requests(ring, state, t))
            out.extend(self._due_answers(ring, state, now))
            # Every reason is looked at (each clears its own state); one digest serves them all.
            asks = self._flood.audit_asks(state, t)
            reasons = {
                "audit": asks is not None,
                "followup": self._flood.followup_wants_digest(state, t),
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

    # -- repair: digests, inventories, requests -------------------------------------------------

    def _on_digest(self, state: RingState, digest: Digest, sender: str, now: datetime) -> None:
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
            self._flood.postpone_same_asks(state, digest, sender, t)
            return
        # The sets differ somewhere; a bucket that agrees still shows the sender has its items.
        pairs = enumerate(zip(ours.buckets, digest.buckets, strict=True))
        agreeing = {bucket for bucket, (a, b) in pairs if a == b}
        for key, audit in state.audits.items():
            if bucket_of(key) in agreeing:
                audit.holders.add(sender)
        self._flood.postpone_same_asks(state, digest, sender, now.timestamp())
        window = self.config.relay_window
        answer = state.answers.get(sender)
        if answer is None:
            due = now.timestamp() + self._rng.uniform(2 * window, 3 * window)
            state.answers[sender] = Answer(due, digest)
        else:
            answer.digest, answer.since = digest, set()

    def _on_inventory(
        self, state: RingState, inventory: Inventory, sender: str, now: datetime
    ) -> None:
        items = self._items(inventory.ring, now)
        ours = {prefix(key): key for key in items.all_keys() if inventory.covers(key)}
        theirs = set(inventory.prefixes)
        skip = {prefix(key) for key in items.deleted} | state.refused.keys()
        missing = theirs - ours.keys() - skip
        extra = [key for p, key in ours.items() if p not in theirs]
        if extra:
            state.suspect(sender, now.timestamp())
        self._cancel_same_answers(state, inventory, items, agree=not missing and not extra)
        t = now.timestamp()
        for key in extra:
            self._flood.schedule(state, key, now)
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

    def _on_request(self, state: RingState, request: Request, sender: str, now: datetime) -> None:
        t = now.timestamp()
        state.suspect(sender, t)  # it missed something
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
                self._flood.schedule(state, key, now)

    def _cancel_same_answers(
        self, state: RingState, inventory: Inventory, items: Items, *, agree: bool
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

    # -- the item view --------------------------------------------------------------------------

    def _items(self, ring: int, now: datetime) -> Items:
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

    def _drop_expired(self, ring: int, items: Items, since: float, now: datetime) -> Items:
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
            members={k: m for k, m in items.members.items() if m.expires_at > now},
        )

    def _announce_outside(
        self, state: RingState, old: Items | None, new: Items, now: datetime
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
                state.announces[key] = Pending(due, news=True)

    def _read_items(self, ring: int, now: datetime) -> Items:
        runs = self.store.active_id_runs(ring, now, max_bytes=MAX_ANNOUNCE_BULLETIN)
        # A bulletin's key is its id's bytes, and ids come in ascending order, as keys sort.
        bulletins = KeySet.from_sorted(b"".join(ids_to_keys(run)) for run in runs)
        tombstones = {tombstone_key(t.bulletin_id): t for t in self.store.tombstones(ring, now)}
        deleted = frozenset(id_to_bytes(t.bulletin_id) for t in tombstones.values())
        tools = {s.item_key(): s for s in self.tools.active(ring, now)}
        moderations = {m.key: m for m in self.moderation.actions(ring, now)}
        members = {m.key: m for m in self.members.records(ring, now)}
        return Items(bulletins, tombstones, deleted, tools, moderations, members)

    # -- what is due ----------------------------------------------------------------------------

    def _send(self, ring: int, msg: Message) -> Outgoing:
        payload = encode(msg)
        self.stats.sent[kind_of(msg).name.lower()] += 1
        return Outgoing(ring, payload)

    def _due_announces(self, ring: int, state: RingState, now: datetime) -> list[Outgoing]:
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
                if pending.news and self.config.relay:
                    # A lost packet stops a flood: see that the neighbours pass it on.
                    self._flood.audit_later(
                        state,
                        key,
                        pending.holders(),
                        t,
                        held_back=False,
                        sent_from=pending.teacher or "",
                    )
        return out

    def _announcement(self, items: Items, key: bytes) -> Message | None:
        if key in items.moderations:
            return items.moderations[key]
        if key in items.members:
            return items.members[key]
        if key in items.bulletins:
            data = self.store.canonical(bytes_to_id(key))
            return None if data is None else Announce(data)
        if key in items.tools:
            return items.tools[key]
        tombstone = items.tombstones.get(key)
        if tombstone is None:
            return None  # expired or deleted since it was scheduled
        # Other boards check the deleting board's signature. An unsigned one (never announced
        # by `local_tombstone`) still answers a neighbour that asks: it refuses it for good.
        return TombstoneMsg.of(tombstone)

    def _due_requests(self, ring: int, state: RingState, t: float) -> list[Outgoing]:
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

    def _due_answers(self, ring: int, state: RingState, now: datetime) -> list[Outgoing]:
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
                state.suspect(sender, t)
        if not mask:
            self.stats.suppressed += 1  # the gap closed while we waited
            return []
        return [self._send(ring, inv) for inv in inventories(ring, items.all_keys(), mask)]
