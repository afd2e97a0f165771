"""Private rings by identity in the core: joining on the ring's channel, being served there by
PKI direct message, choosing among rings, leaving, key changes, pinned moderators, and member
records syncing between boards.

Boards are real CommandHandlers and SyncEngines on real in-memory SQLite stores; packets go
between them through the real codec.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from sqlalchemy.pool import StaticPool

from board.config import ConfigError, MeshboardConfig, RingSpec, Rotation, parse_config
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.membership import MEMBERSHIP_LIFETIME
from board.messages import Inbound, Outcome
from board.mod_policy import ModerationPolicy, sign_member
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.members import MemberStore
from board.store.moderation import ModerationStore
from board.sync.engine import SyncConfig, SyncEngine
from board.wire.codec import decode, encode

T0 = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
ANA = "!1234abcd"  # joins the garden
BEN = "!5678ef01"  # never joins
MOD = "!9abc2345"  # moderates the garden
KEY_ANA = bytes(range(32))
KEY_BEN = bytes(range(1, 33))
KEY_MOD = bytes(range(2, 34))
KEY_OTHER = bytes(range(3, 35))
ROTATION = Rotation((MOD,), timedelta(weeks=1), T0 - timedelta(days=1))


def config(*trusted: BoardKey, pin: bool = True, choir: bool = False) -> MeshboardConfig:
    rings = [
        RingSpec("public", 0),
        RingSpec(
            "garden",
            1,
            rotation=ROTATION,
            trusted_boards=tuple(k.public for k in trusted),
            pinned_keys=((MOD, KEY_MOD),) if pin else (),
        ),
    ]
    if choir:
        rings.append(RingSpec("choir", 2, trusted_boards=tuple(k.public for k in trusted)))
    return MeshboardConfig(rings=tuple(rings))


@dataclass
class Board:
    store: Store
    handler: CommandHandler
    engine: SyncEngine
    name: str

    def handle(self, msg: Inbound) -> Outcome:
        outcome = self.handler.handle(msg)
        for record in outcome.members:
            self.engine.local_member(record, msg.now)
        for posted in outcome.posted:
            self.engine.local_bulletin(posted, msg.now)
        return outcome

    def dm(
        self, text: str, sender: str = ANA, key: bytes | None = KEY_ANA, now: datetime = T0
    ) -> str:
        """A PKI direct message (channel 0, as firmware 2.7.14+ delivers it); the one reply."""
        outcome = self.handle(Inbound(sender, 0, text, True, now, verified=True, public_key=key))
        assert len(outcome.replies) == 1, outcome.replies
        assert outcome.replies[0].to == sender
        return outcome.replies[0].text

    def reply_ring(self, text: str, sender: str = ANA, key: bytes = KEY_ANA) -> int:
        outcome = self.handle(Inbound(sender, 0, text, True, T0, verified=True, public_key=key))
        return outcome.replies[0].ring

    def channel(
        self, text: str, ring: int = 1, sender: str = ANA, key: bytes | None = KEY_ANA
    ) -> Outcome:
        """A `!` command broadcast on a ring's channel (channel-key encrypted, not verified)."""
        return self.handle(Inbound(sender, ring, text, False, T0, public_key=key))


def make_board(name: str, key: BoardKey, rings: MeshboardConfig, seed: int) -> Board:
    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool)
    store = Store(engine)
    handler = CommandHandler(store, BoardConfig(rings=rings), key=key)
    sync = SyncEngine(
        store,
        SyncConfig(rings=rings.served),
        random.Random(seed),
        policy=ModerationPolicy(rings, key.public_bytes),
    )
    sync.start(T0, name)
    return Board(store, handler, sync, name)


@pytest.fixture
def two() -> Iterator[list[Board]]:
    keys = [BoardKey.generate(), BoardKey.generate()]
    made = [make_board(f"board-{i}", k, config(*keys), i) for i, k in enumerate(keys)]
    yield made
    for board in made:
        board.store.engine.dispose()


@pytest.fixture
def board(two: list[Board]) -> Board:
    return two[0]


def run(boards: list[Board], start: datetime, seconds: float) -> None:
    """Deliver what every board sends to every other, until quiet or `seconds`."""
    now, end = start, start + timedelta(seconds=seconds)
    while now <= end:
        for one in boards:
            for out in one.engine.poll(now):
                for other in boards:
                    if other is not one:
                        other.engine.receive(out.payload, out.ring, one.name, now)
        later = [w for b in boards if (w := b.engine.next_wakeup()) is not None and w > now]
        if not later:
            break
        now = max(min(later), now + timedelta(milliseconds=1))


def test_a_non_member_is_served_the_public_ring_by_direct_message(board: Board) -> None:
    board.handle(Inbound(ANA, 1, "post meal Garden soup", True, T0))  # a legacy DM on channel 1
    board.dm("post meal Street party", sender=BEN, key=KEY_BEN)
    listing = board.dm("list", sender=BEN, key=KEY_BEN)
    assert "Street party" in listing
    assert "Garden soup" not in listing
    assert board.reply_ring("list", sender=BEN, key=KEY_BEN) == 0


def test_joining_on_the_rings_channel_then_direct_messages_reach_that_ring(board: Board) -> None:
    joined = board.channel("!join")
    assert [r.text for r in joined.replies] == [
        "you are in garden: DM me 'garden list', or ring garden"
    ]
    assert joined.replies[0].ring == 1  # answered on the ring's own channel
    assert [(m.ring, m.node, m.joined, m.radio_key) for m in joined.members] == [
        (1, ANA, True, KEY_ANA)
    ]
    assert board.dm("post meal Soup in the shed").startswith("[garden] ok #")
    assert "Soup in the shed" in board.dm("list")
    assert board.reply_ring("list") == 1
    assert {b.ring for b in board.store.active(T0, ring=1)} == {1}
    assert board.store.active(T0, ring=0) == []


def test_the_public_ring_is_still_reached_with_its_name(board: Board) -> None:
    board.channel("!join")
    assert board.dm("public post meal Street party").startswith("ok #")
    assert [b.text for b in board.store.active(T0, ring=0)] == ["Street party"]


def test_a_non_member_naming_a_private_ring_gets_the_answer_of_a_ring_that_does_not_exist(
    board: Board,
) -> None:
    board.channel("!join")
    board.dm("post meal Soup in the shed")
    for typed in ("garden list", "nosuch list"):
        word = typed.split()[0]
        assert board.dm(typed, sender=BEN, key=KEY_BEN) == f"unknown command '{word}'; send help"
    for word in ("garden", "nosuch"):
        assert (
            board.dm(f"ring {word}", sender=BEN, key=KEY_BEN) == f"no ring '{word}'; yours: public"
        )
        assert (
            board.dm(f"leave {word}", sender=BEN, key=KEY_BEN) == f"no ring '{word}'; yours: public"
        )
    assert board.dm("rings", sender=BEN, key=KEY_BEN) == "your rings: public"


def test_a_changed_key_is_not_a_member_until_it_joins_again_and_the_audit_says_so(
    board: Board,
) -> None:
    board.channel("!join")
    board.dm("post meal Soup in the shed")
    listing = board.dm("list", key=KEY_OTHER)  # same node id, another key
    assert "Soup in the shed" not in listing
    assert not listing.startswith("[garden]")
    events = [
        (e.moderator, e.action, e.accepted) for e in ModerationStore(board.store.engine).audit(1)
    ]
    assert events == [(ANA, "join", True), (ANA, "key changed", False)]
    board.channel("!join", key=KEY_OTHER)
    assert "Soup in the shed" in board.dm("list", key=KEY_OTHER)
    assert "Soup in the shed" not in board.dm("list", key=KEY_ANA)  # the old key is out now


def test_a_join_waits_for_the_radio_to_learn_the_key(board: Board) -> None:
    pending = board.channel("!join", key=None)
    assert pending.members == []
    assert [r.text for r in pending.replies] == [
        "joining garden: waiting for your radio's key; then DM me"
    ]
    learned = board.handler.key_learned(ANA, KEY_ANA, T0 + timedelta(seconds=30))
    assert [(m.node, m.radio_key) for m in learned.members] == [(ANA, KEY_ANA)]
    assert board.dm("rings") == "[garden] your rings: public, garden"


def test_leaving_stops_the_ring_and_is_a_record_too(board: Board) -> None:
    board.channel("!join")
    assert (
        board.dm("leave garden") == "[garden] left garden; send !join on its channel to come back"
    )
    assert board.dm("rings") == "your rings: public"
    held = MemberStore(board.store.engine).current(1, ANA)
    assert held is not None and not held.joined


def test_several_rings_need_a_choice_and_the_choice_sticks() -> None:
    key = BoardKey.generate()
    one = make_board("board-0", key, config(key, choir=True), 0)
    one.channel("!join", ring=1)
    one.channel("!join", ring=2)
    assert one.dm("list") == (
        "you are in garden and choir: start with the ring's name (e.g. garden list) "
        "or send ring garden"
    )
    assert one.dm("choir post meal Rehearsal soup").startswith("[choir] ok #")
    assert (
        one.dm("ring garden") == "now in garden: your messages go there until you send ring <name>"
    )
    assert one.dm("rings") == "[garden] your rings: public, garden*, choir"
    assert one.dm("list") == "[garden] no bulletins"
    assert "Rehearsal soup" in one.dm("choir list")


def test_a_member_record_syncs_so_the_other_board_serves_the_ring(two: list[Board]) -> None:
    a, b = two
    a.channel("!join")
    a.dm("post meal Soup in the shed")
    run(two, T0, 120)
    assert "Soup in the shed" in b.dm("list")
    assert b.reply_ring("list") == 1
    assert "Soup in the shed" not in b.dm("list", sender=BEN, key=KEY_BEN)
    a.dm("leave garden")
    run(two, T0 + timedelta(seconds=1), 120)
    assert b.dm("rings") == "your rings: public"


def test_a_member_record_from_an_untrusted_board_is_refused() -> None:
    stranger, ours = BoardKey.generate(), BoardKey.generate()
    board = make_board("board-0", ours, config(ours), 0)
    forged = sign_member(stranger, 1, BEN, True, KEY_BEN, T0, T0 + MEMBERSHIP_LIFETIME)
    board.engine.receive(encode(forged), 1, "!0badcafe", T0)
    assert board.engine.stats.dropped_unverified == 1
    assert board.dm("rings", sender=BEN, key=KEY_BEN) == "your rings: public"


def test_a_member_record_survives_the_codec() -> None:
    key = BoardKey.generate()
    record = sign_member(key, 1, ANA, True, KEY_ANA, T0, T0 + MEMBERSHIP_LIFETIME)
    assert decode(encode(record)) == record
    assert len(encode(record)) == 144


def test_a_pinned_moderator_is_served_in_the_ring_and_an_impostor_is_refused_and_audited(
    board: Board,
) -> None:
    board.channel("!join")
    post = board.dm("post meal Soup in the shed")
    ref = post.split()[2]
    # Not the pinned key, so not served in the garden: the public ring has no moderators.
    assert (
        board.dm(f"mod del {ref}", sender=MOD, key=KEY_OTHER) == "mod: this ring has no moderators"
    )
    assert "Soup in the shed" in board.dm("list")
    assert board.dm(f"garden mod del {ref}", sender=MOD, key=KEY_OTHER).startswith(
        "unknown command"
    )
    removed = board.dm(f"mod del {ref}", sender=MOD, key=KEY_MOD)
    assert removed.startswith("[garden] removed")
    assert "Soup in the shed" not in board.dm("list")


def test_a_moderators_command_with_another_key_is_refused_when_it_reaches_the_ring() -> None:
    """An unpinned moderator is served on the key the radio presents; once pinned, only that."""
    key = BoardKey.generate()
    board = make_board("board-0", key, config(key, pin=True), 0)
    board.channel("!join", sender=MOD, key=KEY_OTHER)  # the impostor holds the channel key
    board.channel("!join")
    ref = board.dm("post meal Soup in the shed").split()[2]
    refused = board.dm(f"mod del {ref}", sender=MOD, key=KEY_OTHER)
    assert refused == "[garden] mod: your radio's key is not the one pinned for this moderator"
    log = ModerationStore(board.store.engine).audit(1)
    assert log[-1].accepted is False and "pinned" in log[-1].reason
    assert "Soup in the shed" in board.dm("list")


def test_pinned_keys_are_read_from_the_configuration() -> None:
    text = {
        "ring": [
            {
                "name": "garden",
                "channel": 1,
                "moderation": {
                    "moderators": [MOD],
                    "keys": {MOD: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
                },
            }
        ]
    }
    spec = parse_config(text).ring("garden")
    assert spec.pinned_key(MOD) == KEY_ANA
    text["ring"][0]["moderation"]["keys"] = {ANA: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
    with pytest.raises(ConfigError, match="not one of the moderators"):
        parse_config(text)
    text["ring"][0]["moderation"]["keys"] = {MOD: "c2hvcnQ="}
    with pytest.raises(ConfigError, match="32-byte public key"):
        parse_config(text)


def test_help_more_says_how_to_reach_a_ring(board: Board) -> None:
    assert board.dm("help").splitlines()[3] == "del #ref · help · help more"
    assert (
        board.dm("help more", sender=BEN, key=KEY_BEN)
        == "!join on a ring's channel · rings · ring <name>"
    )


def test_an_expired_membership_serves_the_public_ring_and_is_purged(board: Board) -> None:
    board.channel("!join")
    later = T0 + MEMBERSHIP_LIFETIME + timedelta(seconds=1)
    assert board.dm("rings", now=later) == "your rings: public"
    board.store.purge_expired(later)
    assert MemberStore(board.store.engine).current(1, ANA) is None


def test_using_the_ring_renews_the_membership(board: Board) -> None:
    board.channel("!join")
    half_a_year = T0 + timedelta(days=200)
    outcome = board.handle(
        Inbound(ANA, 0, "list", True, half_a_year, verified=True, public_key=KEY_ANA)
    )
    assert [(m.node, m.joined, m.at.date()) for m in outcome.members] == [
        (ANA, True, half_a_year.date())
    ]
    assert board.dm("rings", now=T0 + timedelta(days=500)) == "[garden] your rings: public, garden"
