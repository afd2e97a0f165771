"""The relay flood's bookkeeping: when a board passes an item on, and the checks after a flood.

A board that learns an item it did not ask for announces it once, after a random delay in
[0, relay_window), unless `redundancy_k` other boards (not the one it learned from) announce it
first: counter-based suppression, Trickle's k applied to data (docs/wire-format.md has the
reasoning and the arithmetic). News never touches Trickle, so small checks close the gaps a
flood can leave instead: a board that held its relay back sends one digest after the flood (so
a neighbour only it reaches gets repaired); a board that sent an item, or got it by asking,
sends one later if a neighbour it knows has still not shown the item (retried a few times: that
is what makes a lossy line converge); and a board that pushed items sends one unless it hears
them passed on. A board whose item no neighbour has shown at all by then (none relayed it, none
showed it in a digest) sends the item itself again, at most twice: its packet was lost, and the
flood waits for it. And every board that stores news makes sure its ring's digests are compared
within `news_check` (`Trickle.hurry`): a neighbour that trusted to hear everything (it missed
nothing lately, so no audit asks it) and lost the one packet that would have brought it the
item is repaired then, not at Trickle's longest interval two hours later.

Items learned by asking (a Request we sent or heard) are not relayed when older than FRESH: they
are repairs, usually for a board that was away, whose neighbours already have them. A younger
one was asked for because a packet upstream was lost, and the flood goes on from here.

`Flood` keeps no state of its own: it works on the `RingState` it is given, and the engine
decides when to call it (`board.sync.engine`: what is heard, and what `poll` sends).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from board.store.bulletins import Store
from board.sync.reconcile import prefix
from board.sync.state import Audit, Pending, RingState, SyncConfig, SyncStats
from board.wire.codec import DIGEST_BYTES, MAX_DIGEST_ASKS, TOMBSTONE_BYTES, Digest
from board.wire.frame import HEADER_BYTES, is_node_id
from board.wire.keys import bytes_to_id

logger = logging.getLogger(__name__)

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


class Flood:
    """Relay and audit decisions for one board's rings, on the state the engine hands in."""

    def __init__(
        self, store: Store, config: SyncConfig, rng: random.Random, stats: SyncStats
    ) -> None:
        self.store = store  # read for an announce's size: is holding it back worth a digest?
        self.config = config
        self.stats = stats
        self._rng = rng  # the engine's own: one seeded sequence for every random delay

    def heard(self, state: RingState, key: bytes, sender: str, now: float) -> None:
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
        known = state.known(now)
        # Counting copies alone leaves holes in a sparse mesh, where the two boards that heard
        # the same pair of relays may be the only way to a third group: hold back only when at
        # least half the neighbours we know have shown the item too.
        covered = 2 * len(known & pending.holders()) >= len(known)
        if len(pending.heard) >= self.config.redundancy_k and covered and self._worth_holding(key):
            del state.announces[key]
            self.stats.suppressed += 1
            if pending.news:
                # Counting copies cannot see a neighbour that only we reach.
                self.audit_later(state, key, pending.holders(), now, held_back=True)

    def learned(
        self, state: RingState, key: bytes, teacher: str, now: datetime, made_at: datetime
    ) -> None:
        """A new item is stored: relay it, unless it answered a request for an item older than
        FRESH (a repair, for a board that was away: its other neighbours have it already).
        """
        self.stats.stored += 1
        state.saw.add(key)  # ours now: a later read of the store must not announce it again
        state.trickle.hurry(now.timestamp(), self.config.news_check)
        state.quiet_from = now.timestamp() + 2 * self.config.relay_window
        p = prefix(key)
        state.wanted.discard(p)
        if not state.wanted:
            state.request_due = None
        if not self.config.relay:
            return  # every board heard the packet that brought it
        if p in state.requested and now - made_at > FRESH:
            # A repair: not relayed, but a neighbour we know that lacks it too should hear of it.
            self.audit_later(state, key, {teacher}, now.timestamp(), held_back=False)
            return
        self.schedule(state, key, now, teacher)

    def schedule(
        self, state: RingState, key: bytes, now: datetime, teacher: str | None = None
    ) -> None:
        """Announce `key` after a random delay in the relay window, unless others do first."""
        if key not in state.announces:
            due = now.timestamp() + self._rng.uniform(0, self.config.relay_window)
            state.announces[key] = Pending(due, teacher, news=teacher is not None)

    def audit_later(
        self,
        state: RingState,
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
        state.audits[key] = Audit(due, holders, proof=held_back, sent_from=sent_from)

    def resend_unshown(self, state: RingState, t: float) -> None:
        """Announce again, instead of auditing, what we sent and no neighbour has shown since.

        Nobody passing an item on, when we know a neighbour besides the board we learned it
        from, means our packet was lost: every neighbour that got it relays it or, holding
        back, sends a digest that shows it. A board at the end of a line, or alone, has nobody
        to send it to and stays quiet.
        """
        for key, audit in state.audits.items():
            if audit.due > t or audit.sent_from is None or audit.resent >= RESEND_TRIES:
                continue
            if audit.holders - {audit.sent_from} or not state.known(t) - {audit.sent_from}:
                continue
            audit.resent += 1
            low, high = SENT_AUDIT
            audit.due = t + self._rng.uniform(low, high) * self.config.relay_window
            self.stats.resent += 1
            logger.debug("no neighbour showed %s; announcing it again", key.hex())
            if key not in state.announces:
                state.announces[key] = Pending(t, audit.sent_from or None)

    def audit_asks(self, state: RingState, t: float) -> tuple[str, ...] | None:
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
                for silent in state.checked(t) - audit.holders:
                    logger.info("neighbour %s never showed %s; forgetting it", silent, key.hex())
                    state.neighbours.pop(silent, None)
                del state.audits[key]
        known = state.checked(t)
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

    def postpone_same_asks(self, state: RingState, digest: Digest, sender: str, t: float) -> None:
        """Another board asked the neighbours we were about to ask: their answers reach us too."""
        if not digest.asks:
            return
        known = state.checked(t)
        asked = set(digest.asks)
        for audit in state.audits.values():
            missing = known - audit.holders - {sender}
            if missing and missing <= asked:
                audit.due = max(audit.due, t + self.config.relay_window)

    def followup_wants_digest(self, state: RingState, t: float) -> bool:
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
