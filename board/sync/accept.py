"""What a board does with an item heard from another board: the acceptance rules of each kind.

A bulletin, a tombstone, a tool's state or a moderation each has its own rules for what is
stored (a tombstone deletes its target and keeps it deleted; a tool's state and a moderation are
last-writer-wins; a tombstone, a moderation and a member record must be signed by a board this
one trusts, `board.mod_policy`), but every kind ends the same way: a new item is counted and
handed to the relay flood (`board.sync.flood`), which passes it on; a copy of what is held is a
duplicate; and an item this board will not keep is remembered as refused, so repair does not
keep asking for it.

Hostile or broken input changes nothing: an item that would outlive anything a board could post
today (it expires more than MAX_LIFETIME from our clock: a forged time, or a clock off by more
than a year) is refused by one rule for every kind that expires (a tool's state lives as long
as its tool), and so is a bulletin already expired. The engine has dropped what does not decode,
what came from a board over its rate, and what names another ring before anything gets here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from board.bulletin import MAX_LIFETIME, Bulletin
from board.mod_policy import ModerationPolicy
from board.store.applied import Applied
from board.store.bulletins import Store
from board.store.members import MemberStore
from board.store.moderation import ModerationStore
from board.store.tools import ToolStore
from board.sync.flood import Flood
from board.sync.reconcile import prefix
from board.sync.state import Items, RingState, SyncStats
from board.wire.codec import TombstoneMsg
from board.wire.keys import bulletin_key, bytes_to_id, tombstone_key
from board.wire.members import MemberMsg
from board.wire.moderation import Action, ModerationMsg
from board.wire.tools import ToolStateMsg

logger = logging.getLogger(__name__)


class Acceptance:
    """Stores what arrives from the air by its kind's rules, and tells the flood what is new."""

    def __init__(
        self,
        store: Store,
        tools: ToolStore,
        moderation: ModerationStore,
        members: MemberStore,
        policy: ModerationPolicy,
        *,
        stats: SyncStats,
        flood: Flood,
        items: Callable[[int, datetime], Items],
    ) -> None:
        self.store = store
        self.tools = tools
        self.moderation = moderation
        self.members = members
        self.stats = stats
        self._policy = policy
        self._flood = flood
        self._items = items  # a ring's active items, as the engine caches them
        self._learned_bulletins: list[Bulletin] = []  # stored from the air, for subscriptions

    def take_learned(self) -> list[Bulletin]:
        """Bulletins stored from the air since the last call."""
        learned, self._learned_bulletins = self._learned_bulletins, []
        return learned

    def on_bulletin(self, state: RingState, bulletin: Bulletin, sender: str, now: datetime) -> None:
        key = bulletin_key(bulletin.id)
        if self._implausible(
            state, key, bulletin.expires_at, now, f"bulletin {bulletin.id}", sender
        ):
            return
        self._flood.heard(state, key, sender, now.timestamp())
        if key in self._items(bulletin.ring, now).bulletins:
            self.stats.duplicates += 1  # the common case in a flood: no need to ask the database
            return
        if self.store.add(bulletin, now):
            state.cache_add(key, bulletin.expires_at)
            self._learned_bulletins.append(bulletin)
            self._flood.learned(state, key, sender, now, bulletin.created_at)
            return
        if self.store.get_tombstone(bulletin.id) is not None:
            self.stats.duplicates += 1
            # Someone still has a bulletin we deleted: tell them, once per neighbourhood.
            self._flood.schedule(state, tombstone_key(bulletin.id), now)
        elif bulletin.expires_at <= now:
            # Checked only after the store: an expired copy still counts as a neighbour's
            # announce, and one deleted here is answered with its tombstone.
            self.stats.dropped_expired += 1
            state.refuse(key)
            logger.info(
                "refused bulletin %s from %s: it expired %s",
                bulletin.id,
                sender,
                bulletin.expires_at.isoformat(),
            )
        else:
            self.stats.duplicates += 1

    def on_tombstone(self, state: RingState, msg: TombstoneMsg, sender: str, now: datetime) -> None:
        """Keep a deletion that a trusted board signed: it deletes its target and keeps it
        deleted. Refuse, count, log and audit any other; the bulletin stays."""
        bulletin_id = bytes_to_id(msg.target)
        key = tombstone_key(bulletin_id)
        if self._implausible(
            state, key, msg.expires_at, now, f"tombstone for {bulletin_id}", sender
        ):
            return
        if key in self._items(msg.ring, now).tombstones:
            self._flood.heard(state, key, sender, now.timestamp())
            self.stats.duplicates += 1
            return
        reason = self._policy.tombstone_refusal(msg, now)
        if reason is not None:
            self.stats.dropped_unverified += 1
            if prefix(key) not in state.refused:  # log (and audit) each forgery once
                logger.warning(
                    "refused a tombstone for %s from %s: %s", bulletin_id, sender, reason
                )
                self.moderation.note(
                    at=now,
                    ring=msg.ring,
                    node=msg.deleted_by or "operator",
                    event="delete",
                    refused=reason,
                    bulletin=bulletin_id,
                    source=f"air:{sender}",
                    board_key=msg.board_key,
                )
            state.refuse(key)
            return
        self._flood.heard(state, key, sender, now.timestamp())
        state.announces.pop(bulletin_key(bulletin_id), None)
        if self.store.apply_tombstone(msg.tombstone(), now):
            state.forget_items()  # a deletion: rare, so simply read the store again
            state.saw.add(key)
            self._flood.learned(state, key, sender, now, msg.deleted_at)
            return
        self.stats.duplicates += 1
        held = self.moderation.current(bulletin_id)
        if (
            held is not None
            and held.action == Action.RESTORE
            and held.ring == msg.ring
            and held.at > msg.deleted_at
            and held.expires_at > now
        ):
            # A moderator restored the bulletin since: never ask for this again, and let its
            # sender hear the restore (once per neighbourhood, like a tombstone).
            state.refuse(key)
            self._flood.schedule(state, held.key, now)

    def on_tool_state(
        self, state: RingState, msg: ToolStateMsg, sender: str, now: datetime
    ) -> None:
        """Last-writer-wins: a newer state replaces ours and floods on; an older one is refused,
        and its sender is told ours (it missed the owner's later word).
        """
        key = msg.item_key()
        self._flood.heard(state, key, sender, now.timestamp())
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
            state.refuse(key)
            ours = next((k for k, s in items.tools.items() if s.target == msg.target), None)
            if ours is not None:
                self._flood.schedule(state, ours, now)
            return
        state.forget_items()
        if result.replaced is not None:
            old = result.replaced.item_key()
            state.refuse(old)  # superseded: never worth asking for again
            state.announces.pop(old, None)
        self._flood.learned(state, key, sender, now, datetime.fromtimestamp(msg.stamp, UTC))

    def on_moderation(
        self, state: RingState, msg: ModerationMsg, sender: str, now: datetime
    ) -> None:
        """Keep a moderation that a trusted board verified; refuse, count and log any other."""
        key, bulletin_id = msg.key, bytes_to_id(msg.target)
        if self._implausible(
            state, key, msg.expires_at, now, f"moderation of {bytes_to_id(msg.target)}", sender
        ):
            return
        if key in self._items(msg.ring, now).moderations:
            self._flood.heard(state, key, sender, now.timestamp())
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
            state.refuse(key)
            return
        self._flood.heard(state, key, sender, now.timestamp())
        result = self.moderation.apply(msg, now)
        if result is Applied.NEW:
            state.forget_items()  # rare: simply read the store again
            self._audit_air(msg, sender, now)
            self._flood.learned(state, key, sender, now, msg.at)
            return
        self.stats.duplicates += 1
        if result is Applied.STALE:
            # We hold a later action on this bulletin: never ask for this one again, and let
            # its sender hear ours (once per neighbourhood, like a tombstone).
            state.refuse(key)
            held = self.moderation.current(bulletin_id)
            if held is not None and held.ring == msg.ring and held.expires_at > now:
                self._flood.schedule(state, held.key, now)

    def on_member(self, state: RingState, msg: MemberMsg, sender: str, now: datetime) -> None:
        """Keep a join or leave that a trusted board witnessed; refuse, count and log any other."""
        key = msg.key
        if self._implausible(
            state, key, msg.expires_at, now, f"member record of {msg.node}", sender
        ):
            return
        if key in self._items(msg.ring, now).members:
            self._flood.heard(state, key, sender, now.timestamp())
            self.stats.duplicates += 1
            return
        reason = self._policy.member_refusal(msg, now)
        if reason is not None:
            self.stats.dropped_unverified += 1
            if prefix(key) not in state.refused:  # log each forgery once
                logger.warning(
                    "refused a member record of %s from %s: %s", msg.node, sender, reason
                )
            state.refuse(key)
            return
        self._flood.heard(state, key, sender, now.timestamp())
        result = self.members.apply(msg, now)
        if result is Applied.NEW:
            state.forget_items()
            self._flood.learned(state, key, sender, now, msg.at)
            return
        self.stats.duplicates += 1
        if result is Applied.STALE:
            state.refuse(key)
            held = self.members.current(msg.ring, msg.node)
            if held is not None and held.expires_at > now:
                self._flood.schedule(state, held.key, now)

    def _implausible(
        self,
        state: RingState,
        key: bytes,
        expires_at: datetime,
        now: datetime,
        what: str,
        sender: str,
    ) -> bool:
        """Refuse, count and log an item that expires more than MAX_LIFETIME after our clock:
        no board can make one today. `what` names it in the log.

        The bound is that loose on purpose: a Pi restored from fake-hwclock after weeks off is
        that far behind, and a tighter one would make it refuse all news.
        """
        if expires_at <= now + MAX_LIFETIME:
            return False
        self.stats.dropped_implausible += 1
        state.refuse(key)
        logger.warning(
            "refused %s from %s: it expires %s, beyond anything a board posts today",
            what,
            sender,
            expires_at.isoformat(),
        )
        return True

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
