"""What the sync engine remembers: its configuration, its counters, and each ring's schedule.

All scheduling state lives in memory; a restart just restarts Trickle at imin. Everything
stored goes through `Store`, one transaction per item.

Kept apart from `board.sync.engine` so that the engine, the relay flood (`board.sync.flood`) and
the per-kind acceptance rules (`board.sync.accept`) all read one definition of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from board.bulletin import Tombstone
from board.sync.keyset import KeySet
from board.sync.reconcile import prefix
from board.sync.trickle import Trickle
from board.wire.codec import Digest
from board.wire.members import MemberMsg
from board.wire.moderation import ModerationMsg
from board.wire.tools import ToolStateMsg

#: Boards heard on a ring within this many seconds count as its neighbours.
NEIGHBOUR_MEMORY = 86400.0

#: Refused item prefixes remembered per ring (4 bytes each, so never worth asking for again).
MAX_REFUSED = 4096


@dataclass(frozen=True)
class SyncConfig:
    rings: frozenset[int] = frozenset({0})  # rings this board serves; anything else is dropped
    imin: float = 15.0  # Trickle, seconds
    imax: float = 7200.0  # two hours: a radio neighbourhood hears about one digest an hour
    redundancy_k: int = 1  # consistent digests, or other announces of an item, that suppress ours
    relay_window: float = 8.0  # ≫ one packet's airtime, so a neighbour's relay can suppress ours
    #: After news passes through, neighbours compare digests within this many seconds: a board
    #: that lost the only packet that would have brought it an item cannot know (bench/town.py:
    #: a leaf waited 75 minutes for Trickle at imax).
    news_check: float = 900.0
    #: False where every board hears every packet (an MQTT broker: node/bridge): news learned
    #: there is not passed on there, and what is sent there is not audited or sent again;
    #: Trickle's digests repair what a reconnect lost.
    relay: bool = True


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
class Pending:
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
class Answer:
    """An Inventory we owe a neighbour whose digest differed from ours."""

    due: float
    digest: Digest
    since: set[bytes] = field(default_factory=set)  # keys the sender announced after its digest


@dataclass
class Audit:
    """A digest we may owe after a flood: unless every neighbour shows it has the item."""

    due: float
    holders: set[str]
    proof: bool  # we held back our relay: a digest shows neighbours we have the item after all
    tries: int = 0  # digests sent asking neighbours that have not shown it
    sent_from: str | None = None  # we sent the item, learned from this board ("" for our own)
    resent: int = 0  # announces sent again because no neighbour showed the item


@dataclass
class RingState:
    """One ring's schedule: what is owed, wanted and refused, and who the neighbours are."""

    trickle: Trickle
    announces: dict[bytes, Pending] = field(default_factory=dict)  # by item key
    answers: dict[str, Answer] = field(default_factory=dict)  # by digest sender
    wanted: set[bytes] = field(default_factory=set)  # key prefixes to request
    request_due: float | None = None
    requested: dict[bytes, float] = field(default_factory=dict)  # prefix -> remembered until
    refused: dict[bytes, None] = field(default_factory=dict)  # prefixes of items we would not
    # store, oldest first (at most MAX_REFUSED, so a hostile neighbour cannot grow it for ever)
    items: Items | None = None  # the last view of the store, valid until `items_until`
    items_from: float = 0.0
    items_until: float = 0.0  # the next expiry, or `read_due`
    read_due: float = 0.0  # when the whole ring is read again, for changes from outside
    # Keys this engine stored since that view: reading them back later is not news from outside.
    saw: set[bytes] = field(default_factory=set)
    audits: dict[bytes, Audit] = field(default_factory=dict)  # by item key
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

    def cache_add(self, key: bytes, expires_at: datetime) -> None:
        """Keep the cached item view current after storing a bulletin (a flood's common case)."""
        self.saw.add(key)
        if self.items is not None:
            self.items.bulletins.add(key)
            self.items_until = min(self.items_until, expires_at.timestamp())

    def busy(self, t: float) -> bool:
        """News is still moving here, so a digest now would report a difference about to close."""
        return bool(self.announces or self.wanted or self.answers) or t < self.quiet_from

    def known(self, t: float) -> set[str]:
        """The boards heard on this ring lately: our neighbours."""
        return {n for n, heard in self.neighbours.items() if heard > t - NEIGHBOUR_MEMORY}

    def checked(self, t: float) -> set[str]:
        """The neighbours a flood should check on: those that have missed items lately.

        A board that has missed nothing is trusted to have heard what every board around it
        relayed: asking it after every bulletin, when it was only we who failed to hear its
        relay (two boards we hear, hidden from each other, sent at once), costs more airtime
        than the flood. One that missed something is asked for a day.
        """
        self.missers = {n: until for n, until in self.missers.items() if until > t}
        return self.known(t) & self.missers.keys()

    def suspect(self, board: str, t: float) -> None:
        """`board` showed it missed an item: check on it after floods for a day."""
        self.missers[board] = t + NEIGHBOUR_MEMORY

    def refuse(self, key: bytes) -> None:
        """Never ask for this item again (nor for long: the oldest refusals are forgotten)."""
        self.refused[prefix(key)] = None
        while len(self.refused) > MAX_REFUSED:
            del self.refused[next(iter(self.refused))]


@dataclass(frozen=True)
class Items:
    """A ring's active items as sync sees them, read from the store at one moment."""

    # The ring's bulletin keys, packed. A key is its id's bytes: `bytes_to_id` gives the id
    # back, so the id strings are not kept.
    bulletins: KeySet
    tombstones: dict[bytes, Tombstone]  # key -> tombstone
    deleted: frozenset[bytes]  # keys of tombstoned bulletins: never worth asking for
    tools: dict[bytes, ToolStateMsg] = field(default_factory=dict)  # key -> a tool's state
    moderations: dict[bytes, ModerationMsg] = field(default_factory=dict)  # key -> winning action
    members: dict[bytes, MemberMsg] = field(default_factory=dict)  # key -> winning record

    def all_keys(self) -> Iterator[bytes]:
        """Every key, made as it is needed: a ring's full list would be 30,000 objects."""
        return chain(self.bulletins, self.others())

    def others(self) -> Iterator[bytes]:
        """The keys of tombstones, tool states, moderations and member records (few, and
        held in dicts)."""
        return chain(self.tombstones, self.tools, self.moderations, self.members)

    def __contains__(self, key: bytes) -> bool:
        return (
            key in self.tombstones
            or key in self.tools
            or key in self.moderations
            or key in self.members
            or key in self.bulletins  # last: a bisection, where the others are a hash lookup
        )
