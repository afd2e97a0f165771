"""Which ring a person is in, and which ring their direct message means.

Since firmware 2.7.14 a direct message reaches the board PKI-encrypted and on channel 0, whatever
channel its sender had selected (`Router.cpp` perhapsDecode), so the channel no longer says the
ring. Membership says it instead:

* **Joining.** A private ring's channel key is the invitation. A `!` command heard on the
  ring's channel (`!join` says so) shows the sender holds the key; the board binds their node id
  to the public key its radio holds for that node, signs the record and syncs it to the ring's
  other boards (`board.wire.members`). A board whose radio has no key for the node yet keeps the
  join pending until the key arrives (`key_learned`); it is never bound to nothing.
* **Serving.** A PKI direct message is the sender's only when the radio decrypted it with the
  key bound at the join: a node whose key changed is not a member until it joins again (and the
  moderators' audit log says so). A pinned moderator of a ring is served there too.
* **Choosing.** A person in one private ring is served there; in several, they start a message
  with the ring's name (`garden list`) or choose one that sticks (`ring garden`). A non-member
  naming a private ring gets exactly the answer a ring that does not exist gets.

A member record lasts MEMBERSHIP_LIFETIME; a member's use renews it once it is RENEW_AFTER old,
so only people who stopped using a ring drop out of it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from board.config import MeshboardConfig, RingSpec
from board.messages import Inbound
from board.mod_policy import sign_member
from board.signing import BoardKey
from board.store.applied import Applied
from board.store.members import MemberStore
from board.store.moderation import ModerationStore
from board.wire.members import RADIO_KEY_BYTES, MemberMsg

logger = logging.getLogger(__name__)

#: Within the board plane's 400-day plausibility bound (`board.bulletin.MAX_LIFETIME`).
MEMBERSHIP_LIFETIME = timedelta(days=365)
RENEW_AFTER = timedelta(days=180)
#: How long a join waits for the radio to learn the sender's key before it is forgotten.
PENDING_JOIN_TTL = timedelta(hours=1)
MAX_PENDING_JOINS = 256
#: A reply from a private ring starts with its name, so nobody mistakes where they are.
RING_TAG = "[{name}] "

_WORD = re.compile(r"\s*(\S+)\s*")


@dataclass(frozen=True)
class Served:
    """What a direct message means: the message as served (its ring chosen, a ring prefix
    taken off), and the tag its replies start with (empty for the public ring)."""

    msg: Inbound
    tag: str = ""
    ambiguous: tuple[str, ...] = ()  # several private rings and no choice: the names
    renewed: MemberMsg | None = None  # a member's record made again by their use: sync it


def tag_of(spec: RingSpec) -> str:
    return RING_TAG.format(name=spec.name) if spec.private else ""


class Membership:
    """The membership rules of one board; the command handler consults it for every message.

    Not thread-safe: the daemon calls it from one thread.
    """

    def __init__(self, members: MemberStore, config: MeshboardConfig, key: BoardKey | None) -> None:
        self._members = members
        self._audit = ModerationStore(members.engine)
        self._config = config
        self._key = key
        self._chosen: dict[str, int] = {}  # sticky `ring <name>` choices, by node id
        self._pending: dict[tuple[int, str], datetime] = {}  # joins waiting for a key
        self._key_changes: set[tuple[int, str, bytes]] = set()  # audited once each

    # -- joining ----------------------------------------------------------------------------

    def witness(self, msg: Inbound) -> MemberMsg | None:
        """A command heard on a private ring's channel: record (or renew) its sender's join.

        Returns the signed record to sync, or None when nothing changed or it cannot be made
        yet (no key: the join waits for `key_learned`).
        """
        spec = self._config.by_channel(msg.ring)
        if spec is None or not spec.private or not spec.serve or msg.verified:
            return None
        if msg.public_key is None or len(msg.public_key) != RADIO_KEY_BYTES:
            self._wait_for_key(msg.ring, msg.sender, msg.now)
            return None
        held = self._members.current(msg.ring, msg.sender)
        if (
            held is not None
            and held.joined
            and held.radio_key == msg.public_key
            and held.expires_at > msg.now
            and msg.now - held.at < RENEW_AFTER
        ):
            return None
        return self._record(spec, msg.sender, True, msg.public_key, msg.now)

    def pending(self, ring: int, node: str) -> bool:
        return (ring, node) in self._pending

    def key_learned(self, node: str, radio_key: bytes, now: datetime) -> list[MemberMsg]:
        """The radio now holds `node`'s key: complete the joins that waited for it."""
        records = []
        for ring, waiting in sorted(self._pending):
            if waiting != node:
                continue
            since = self._pending.pop((ring, waiting))
            spec = self._config.by_channel(ring)
            if spec is None or now - since > PENDING_JOIN_TTL:
                continue
            record = self._record(spec, node, True, radio_key, now)
            if record is not None:
                records.append(record)
        return records

    def leave(self, spec: RingSpec, node: str, now: datetime) -> MemberMsg | None:
        held = self._members.current(spec.channel, node)
        if held is None:
            return None
        self._chosen.pop(node, None)
        return self._record(spec, node, False, held.radio_key, now)

    def _wait_for_key(self, ring: int, node: str, now: datetime) -> None:
        if (ring, node) not in self._pending:
            logger.info("%s joins ring %d once the radio has its key", node, ring)
        self._pending[(ring, node)] = now
        while len(self._pending) > MAX_PENDING_JOINS:
            del self._pending[min(self._pending, key=self._pending.__getitem__)]

    def _record(
        self, spec: RingSpec, node: str, joined: bool, radio_key: bytes, now: datetime
    ) -> MemberMsg | None:
        if self._key is None:
            logger.warning("cannot record %s in ring %s: this board has no key", node, spec.name)
            return None
        at = now.replace(microsecond=0)
        held = self._members.current(spec.channel, node)
        if held is not None and held.at >= at:
            at = held.at + timedelta(seconds=1)  # a second word in one second must still win
        record = sign_member(
            self._key, spec.channel, node, joined, radio_key, at, at + MEMBERSHIP_LIFETIME
        )
        if self._members.apply(record, now) is not Applied.NEW:
            return None
        self._note(spec.channel, node, "join" if joined else "leave", now)
        return record

    def _note(self, ring: int, node: str, event: str, now: datetime, reason: str = "") -> None:
        """Membership goes into the moderators' audit log beside moderation."""
        self._audit.note(at=now, ring=ring, node=node, event=event, refused=reason)

    # -- serving ----------------------------------------------------------------------------

    def rings_of(self, msg: Inbound) -> list[RingSpec]:
        """The served rings the sender of a verified direct message belongs to, public first."""
        rings = []
        for spec in self._config.rings:
            if not spec.serve:
                continue
            if not spec.private or self._is_member(spec, msg):
                rings.append(spec)
        return rings

    def may_read(self, node: str, ring: int, now: datetime) -> bool:
        """Whether news of `ring` may be sent to `node` now (a subscription, an answer to an
        ask): always on a public ring; on a private one, only to a member."""
        spec = self._config.by_channel(ring)
        if spec is None or not spec.private:
            return True
        held = self._members.current(ring, node)
        joined = held is not None and held.joined and held.expires_at > now
        return joined or spec.moderates(node)

    def _is_member(self, spec: RingSpec, msg: Inbound) -> bool:
        key = msg.public_key
        if spec.moderates(msg.sender):
            pinned = spec.pinned_key(msg.sender)
            if pinned is None or pinned == key:
                return True
        held = self._members.current(spec.channel, msg.sender)
        if key is None or held is None or not held.joined or held.expires_at <= msg.now:
            return False
        if held.radio_key != key:
            self._note_key_change(spec, msg)
            return False
        return True

    def _note_key_change(self, spec: RingSpec, msg: Inbound) -> None:
        """Once per key seen: the member's node presented another key, so it is not served."""
        seen = (spec.channel, msg.sender, msg.public_key or b"")
        if seen in self._key_changes:
            return
        self._key_changes.add(seen)
        logger.warning(
            "%s's radio key changed since it joined %s: not a member until it joins again",
            msg.sender,
            spec.name,
        )
        self._note(spec.channel, msg.sender, "key changed", msg.now, "not a member until rejoined")

    def serve(self, msg: Inbound) -> Served:
        """What a verified direct message means: the ring named first, the sticky choice, the
        one private ring, or the public ring."""
        rings = self.rings_of(msg)
        by_name = {spec.name: spec for spec in rings}
        first = _WORD.match(msg.text)
        if first is not None and first[1].lower() in by_name:
            spec = by_name[first[1].lower()]
            rest = msg.text[first.end() :]
            served = replace(msg, ring=spec.channel, text=rest)
            return Served(served, tag_of(spec), renewed=self._renew(spec, msg))
        chosen = self._chosen.get(msg.sender)
        private = [spec for spec in rings if spec.private]
        pick = next((spec for spec in rings if spec.channel == chosen), None)
        if pick is None and len(private) == 1:
            pick = private[0]
        if pick is None and len(private) > 1:
            return Served(msg, ambiguous=tuple(spec.name for spec in private))
        if pick is None:
            pick = next((spec for spec in rings if not spec.private), None)
        if pick is None:  # this board serves no ring the sender may use
            return Served(replace(msg, ring=-1))
        return Served(replace(msg, ring=pick.channel), tag_of(pick), renewed=self._renew(pick, msg))

    def _renew(self, spec: RingSpec, msg: Inbound) -> MemberMsg | None:
        """A member served in `spec` whose record is RENEW_AFTER old gets a fresh one: only
        people who stopped using a ring drop out of it."""
        held = self._members.current(spec.channel, msg.sender)
        if held is None or not held.joined or msg.now - held.at < RENEW_AFTER:
            return None
        return self._record(spec, msg.sender, True, held.radio_key, msg.now)

    def choose(self, msg: Inbound, name: str) -> RingSpec | None:
        """`ring <name>`: serve this person there from now on (None: not one of theirs)."""
        spec = next((s for s in self.rings_of(msg) if s.name == name.lower()), None)
        if spec is not None:
            self._chosen[msg.sender] = spec.channel
        return spec

    def chosen(self, node: str) -> int | None:
        return self._chosen.get(node)
