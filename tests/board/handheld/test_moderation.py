"""Rotating moderators in the core: `mod del` / `mod undo` from a handheld, the rules a
moderation must pass here and on other boards, convergence across boards, and the audit log.

Boards are real CommandHandlers and SyncEngines on real in-memory SQLite stores; packets go
between them through the real codec. Time is driven by hand, so the rotation's boundary is exact.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from sqlalchemy.pool import StaticPool

from board.bulletin import Bulletin, Tombstone, new_bulletin
from board.config import MeshboardConfig, RingSpec, Rotation
from board.handheld.commands import BoardConfig, CommandHandler
from board.messages import Inbound
from board.mod_policy import ModerationPolicy, sign_action, sign_tombstone
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.moderation import ModerationStore
from board.sync.engine import SyncConfig, SyncEngine
from board.types import TypeRegistry
from board.wire.codec import TombstoneMsg, decode, encode
from board.wire.keys import id_to_bytes
from board.wire.moderation import Action, ModerationMsg

ANA = "!1234abcd"  # moderates the week of 23 November
BEN = "!5678ef01"  # moderates the week of 30 November
EVE = "!0badcafe"  # not a moderator
AUTHOR = "!a1b2c3d4"
WEEK_STARTS = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
BOUNDARY = WEEK_STARTS + timedelta(weeks=1)
T0 = WEEK_STARTS + timedelta(hours=10)
ROTATION = Rotation((ANA, BEN), timedelta(weeks=1), WEEK_STARTS)


def rings(*trusted: BoardKey, rotation: Rotation | None = ROTATION) -> MeshboardConfig:
    return MeshboardConfig(
        rings=(
            RingSpec(
                "public", 0, rotation=rotation, trusted_boards=tuple(k.public for k in trusted)
            ),
            RingSpec("garden", 1),
        )
    )


def bulletin(now: datetime = T0, text: str = "Ladder to lend, 3 m", ring: int = 0) -> Bulletin:
    return new_bulletin(TypeRegistry(), type="tool", text=text, author=AUTHOR, ring=ring, now=now)


@dataclass
class Board:
    store: Store
    handler: CommandHandler
    engine: SyncEngine
    key: BoardKey
    name: str

    def say(
        self, text: str, sender: str = ANA, now: datetime = T0, *, verified: bool = True
    ) -> str:
        """A handheld's direct message; the board's one reply. Moderations go to sync."""
        outcome = self.handler.handle(Inbound(sender, 0, text, True, now, verified=verified))
        for msg in outcome.moderated:
            self.engine.local_moderation(msg, now)
        for posted in outcome.posted:
            self.engine.local_bulletin(posted, now)
        for bulletin_id in outcome.deleted:
            self.engine.local_tombstone(bulletin_id, now)
        assert len(outcome.replies) == 1
        return outcome.replies[0].text

    def visible(self, now: datetime = T0) -> set[str]:
        return {b.id for b in self.store.active(now, ring=0)}

    @property
    def audit(self) -> ModerationStore:
        return ModerationStore(self.store.engine)


def make_board(name: str, key: BoardKey, config: MeshboardConfig, seed: int) -> Board:
    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool)
    store = Store(engine)
    handler = CommandHandler(store, BoardConfig(rings=config), key=key)
    engine_ = SyncEngine(
        store,
        SyncConfig(rings=frozenset({0, 1})),
        random.Random(seed),
        policy=ModerationPolicy(config, key.public_bytes),
    )
    return Board(store, handler, engine_, key, name)


@pytest.fixture
def keys() -> list[BoardKey]:
    return [BoardKey.generate() for _ in range(3)]


@pytest.fixture
def boards(keys: list[BoardKey]) -> Iterator[list[Board]]:
    config = rings(*keys)
    made = [make_board(f"board-{i}", key, config, i) for i, key in enumerate(keys)]
    for board in made:
        board.engine.start(T0, board.name)
    yield made
    for board in made:
        board.store.engine.dispose()


def run(boards: list[Board], start: datetime, seconds: float) -> None:
    """Deliver what every board sends to every other (fully connected), until quiet or `seconds`."""
    end = start + timedelta(seconds=seconds)
    now = start
    while now <= end:
        for board in boards:
            for out in board.engine.poll(now):
                for other in boards:
                    if other is not board:
                        other.engine.receive(out.payload, out.ring, board.name, now)
        wakeups = [w for b in boards if (w := b.engine.next_wakeup()) is not None]
        later = [w for w in wakeups if w > now]
        if not later:
            break
        now = max(min(later), now + timedelta(milliseconds=1))


def moderations_sent(board: Board, now: datetime) -> list[ModerationMsg]:
    return [
        m for out in board.engine.poll(now) if isinstance(m := decode(out.payload), ModerationMsg)
    ]


def store_everywhere(boards: list[Board], item: Bulletin) -> None:
    for board in boards:
        assert board.store.add(item, T0)


# -- the handheld's commands ----------------------------------------------------------------


def test_the_moderator_on_duty_removes_anyones_bulletin(boards: list[Board]) -> None:
    board = boards[0]
    item = bulletin()
    board.store.add(item, T0)
    assert board.say(f"mod del #{item.ref}") == f"removed #{item.ref}; other boards will follow"
    assert board.say("list", sender=EVE) == "no bulletins"
    assert board.say(f"read #{item.ref}", sender=EVE) == f"no bulletin #{item.ref}"
    assert board.store.canonical(item.id) == item.canonical_bytes()  # hidden, not deleted


def test_undo_restores_the_same_bulletin(boards: list[Board]) -> None:
    board = boards[0]
    item = bulletin()
    board.store.add(item, T0)
    board.say(f"mod del {item.ref}")
    later = T0 + timedelta(minutes=5)
    assert (
        board.say(f"mod undo #{item.ref}", now=later)
        == f"restored #{item.ref}; other boards will follow"
    )
    assert board.visible(later) == {item.id}


def test_del_then_undo_in_the_same_second_still_restores(boards: list[Board]) -> None:
    board = boards[0]
    item = bulletin()
    board.store.add(item, T0)
    board.say(f"mod del {item.ref}")
    board.say(f"mod undo {item.ref}")
    assert board.visible() == {item.id}


@pytest.mark.parametrize(
    ("sender", "verified", "reply", "reason"),
    [
        (BEN, True, f"mod: you are not on duty; {ANA} is until Mon 30 Nov 00:00", "not on duty"),
        (EVE, True, f"mod: you are not on duty; {ANA} is until Mon 30 Nov 00:00", "not on duty"),
        (
            ANA,
            False,
            "mod: send it as a direct message with PKI (your radio needs the board's key)",
            "not verified (no PKI direct message)",
        ),
    ],
    ids=["moderator off duty", "not a moderator", "spoofed moderator id"],
)
def test_refused_attempts_change_nothing_and_are_audited(
    boards: list[Board], sender: str, verified: bool, reply: str, reason: str
) -> None:
    board = boards[0]
    item = bulletin()
    board.store.add(item, T0)
    assert board.say(f"mod del #{item.ref}", sender=sender, verified=verified) == reply
    assert board.visible() == {item.id}
    assert not moderations_sent(board, T0 + timedelta(seconds=30))  # nothing for other boards
    [entry] = board.audit.audit()
    assert (entry.moderator, entry.action, entry.accepted, entry.reason) == (
        sender,
        "remove",
        False,
        reason,
    )


def test_rotation_hands_over_at_the_boundary(boards: list[Board]) -> None:
    board = boards[0]
    first, second = bulletin(text="First"), bulletin(text="Second")
    for item in (first, second):
        board.store.add(item, T0)
    just_before = BOUNDARY - timedelta(seconds=1)
    assert board.say(f"mod del {first.ref}", sender=BEN, now=just_before).startswith(
        "mod: you are not on duty; !1234abcd is until"
    )
    assert board.say(f"mod del {first.ref}", sender=ANA, now=just_before).startswith("removed")
    assert board.say(f"mod del {second.ref}", sender=ANA, now=BOUNDARY) == (
        f"mod: you are not on duty; {BEN} is until Mon 07 Dec 00:00"
    )
    assert board.say(f"mod del {second.ref}", sender=BEN, now=BOUNDARY).startswith("removed")
    assert board.visible(BOUNDARY) == set()


@pytest.mark.parametrize(
    ("text", "reply", "reason"),
    [
        ("mod del #zzzz", "mod: no bulletin #zzzz", "unknown ref"),
        ("mod undo #zzzz", "mod: #zzzz is not a removed bulletin", "unknown ref"),
        ("mod del", "mod del #ref · mod undo #ref (moderator on duty, by PKI DM)", None),
        ("mod ban #zzzz", "mod del #ref · mod undo #ref (moderator on duty, by PKI DM)", None),
    ],
)
def test_bad_references_and_usage(
    boards: list[Board], text: str, reply: str, reason: str | None
) -> None:
    board = boards[0]
    assert board.say(text) == reply
    reasons = [e.reason for e in board.audit.audit()]
    assert reasons == ([reason] if reason else [])


def test_a_ring_without_a_rotation_has_no_moderators(keys: list[BoardKey]) -> None:
    board = make_board("solo", keys[0], rings(keys[0], rotation=None), 0)
    item = bulletin()
    board.store.add(item, T0)
    assert board.say(f"mod del {item.ref}") == "mod: this ring has no moderators"
    assert board.visible() == {item.id}


def test_a_board_without_a_key_cannot_vouch(keys: list[BoardKey]) -> None:
    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool)
    store = Store(engine)
    handler = CommandHandler(store, BoardConfig(rings=rings()))
    item = bulletin()
    store.add(item, T0)
    outcome = handler.handle(Inbound(ANA, 0, f"mod del {item.ref}", True, T0, verified=True))
    assert outcome.replies[0].text == "mod: this board has no signing key"
    assert outcome.moderated == []


def test_moderation_never_reaches_another_ring(boards: list[Board]) -> None:
    board = boards[0]
    garden = bulletin(ring=1, text="Seeds")
    board.store.add(garden, T0)
    assert board.say(f"mod del {garden.ref}") == f"mod: no bulletin #{garden.ref}"
    assert board.store.active(T0, ring=1) == [garden]


# -- across boards --------------------------------------------------------------------------


def test_removal_and_restore_reach_every_board(boards: list[Board]) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    boards[0].say(f"mod del {item.ref}")
    run(boards, T0, 60)
    assert [b.visible() for b in boards] == [set(), set(), set()]
    later = T0 + timedelta(hours=1)
    assert boards[2].say(f"mod undo {item.ref}", now=later).startswith("restored")
    run(boards, later, 60)
    assert [b.visible(later) for b in boards] == [{item.id}] * 3
    # every board audited both actions; the ones it heard name the board that relayed them
    for board in boards:
        assert [(e.action, e.accepted) for e in board.audit.audit()] == [
            ("remove", True),
            ("restore", True),
        ]
    assert boards[1].audit.audit()[0].source == "air:board-0"


def test_a_board_that_never_held_the_bulletin_gets_it_hidden(boards: list[Board]) -> None:
    """The removal travels on its own; the bulletin follows by repair, and stays hidden."""
    item = bulletin()
    boards[0].store.add(item, T0)
    boards[0].say(f"mod del {item.ref}")
    run(boards, T0, 3600)
    for board in boards:
        assert board.store.canonical(item.id) == item.canonical_bytes()
        assert board.visible() == set()


def signed(
    key: BoardKey, action: Action, item: Bulletin, at: datetime, moderator: str = ANA
) -> ModerationMsg:
    return sign_action(key, action, id_to_bytes(item.id), 0, moderator, at, item.expires_at)


@pytest.mark.parametrize("order", ["remove first", "restore first"])
def test_the_latest_action_wins_in_any_order(
    boards: list[Board], keys: list[BoardKey], order: str
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    remove = signed(keys[0], Action.REMOVE, item, T0)
    restore = signed(keys[1], Action.RESTORE, item, T0 + timedelta(minutes=1))
    msgs = [remove, restore] if order == "remove first" else [restore, remove]
    for msg in msgs:
        boards[2].engine.receive(encode(msg), 0, "somewhere", T0 + timedelta(minutes=2))
    assert boards[2].visible() == {item.id}
    assert boards[2].audit.current(item.id) == restore


def test_a_tie_is_broken_by_the_signature_the_same_way_everywhere(
    boards: list[Board], keys: list[BoardKey]
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    remove = signed(keys[0], Action.REMOVE, item, T0)
    restore = signed(keys[1], Action.RESTORE, item, T0)
    boards[1].engine.receive(encode(remove), 0, "x", T0)
    boards[1].engine.receive(encode(restore), 0, "x", T0)
    boards[2].engine.receive(encode(restore), 0, "x", T0)
    boards[2].engine.receive(encode(remove), 0, "x", T0)
    winner = max((remove, restore), key=lambda m: m.signature)
    assert boards[1].audit.current(item.id) == boards[2].audit.current(item.id) == winner


def test_boards_holding_different_winners_converge(
    boards: list[Board], keys: list[BoardKey]
) -> None:
    """Each board heard only one of two actions (a partition): digests find and settle it."""
    item = bulletin()
    store_everywhere(boards, item)
    remove = signed(keys[0], Action.REMOVE, item, T0)
    restore = signed(keys[1], Action.RESTORE, item, T0 + timedelta(minutes=1))
    boards[0].audit.apply(remove, T0)
    for board in boards[1:]:
        board.audit.apply(restore, T0)
    run(boards, T0, 3600)
    assert [b.audit.current(item.id) for b in boards] == [restore] * 3
    assert [b.visible() for b in boards] == [{item.id}] * 3


def forged_bad_signature(keys: list[BoardKey], item: Bulletin) -> ModerationMsg:
    msg = signed(keys[0], Action.REMOVE, item, T0)
    return replace(msg, signature=bytes([msg.signature[0] ^ 1]) + msg.signature[1:])


def forged_untrusted_key(keys: list[BoardKey], item: Bulletin) -> ModerationMsg:
    return signed(BoardKey.generate(), Action.REMOVE, item, T0)


def forged_off_duty(keys: list[BoardKey], item: Bulletin) -> ModerationMsg:
    return signed(keys[0], Action.REMOVE, item, T0, moderator=BEN)


def forged_other_fields(keys: list[BoardKey], item: Bulletin) -> ModerationMsg:
    return replace(signed(keys[0], Action.RESTORE, item, T0), action=Action.REMOVE)


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (forged_bad_signature, "bad signature"),
        (forged_untrusted_key, "board key not trusted on this ring"),
        (forged_off_duty, f"{BEN} was not on duty then"),
        (forged_other_fields, "bad signature"),
    ],
)
def test_a_forged_moderation_is_refused_counted_and_audited_once(
    boards: list[Board], keys: list[BoardKey], forge: object, reason: str
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    msg = forge(keys, item)  # type: ignore[operator]
    board = boards[1]
    for _ in range(2):
        board.engine.receive(encode(msg), 0, "!00c0ffee", T0)
    assert board.engine.stats.dropped_unverified == 2
    assert board.visible() == {item.id}
    assert board.audit.current(item.id) is None
    [entry] = board.audit.audit()
    assert (entry.accepted, entry.reason, entry.source) == (False, reason, "air:!00c0ffee")
    assert not moderations_sent(board, T0 + timedelta(seconds=30))  # not relayed


def test_an_action_stamped_far_ahead_of_our_clock_is_refused(
    boards: list[Board], keys: list[BoardKey]
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    msg = signed(keys[0], Action.REMOVE, item, T0 + timedelta(hours=2))
    boards[1].engine.receive(encode(msg), 0, "x", T0)
    assert boards[1].visible() == {item.id}
    assert boards[1].engine.stats.dropped_unverified == 1


def test_a_moderation_heard_on_another_channel_is_dropped(
    boards: list[Board], keys: list[BoardKey]
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    boards[1].engine.receive(encode(signed(keys[0], Action.REMOVE, item, T0)), 1, "x", T0)
    assert boards[1].engine.stats.dropped_wrong_ring == 1
    assert boards[1].visible() == {item.id}


def test_moderation_is_forgotten_with_the_bulletin(boards: list[Board]) -> None:
    board = boards[0]
    item = bulletin()
    board.store.add(item, T0)
    board.say(f"mod del {item.ref}")
    board.store.purge_expired(item.expires_at)
    assert board.audit.current(item.id) is None
    assert len(board.audit.audit()) == 1  # the audit log is kept


# -- deletions: who may delete, and a moderator's undo ----------------------------------------


def deletion(
    key: BoardKey,
    item: Bulletin,
    at: datetime = T0 + timedelta(minutes=1),
    deleted_by: str | None = AUTHOR,
) -> TombstoneMsg:
    """A tombstone for `item` as the board holding `key` would make it for its author's `del`."""
    tombstone = Tombstone(item.id, item.ring, item.author, deleted_by, at, item.expires_at)
    return TombstoneMsg.of(sign_tombstone(key, tombstone))


def holders(boards: list[Board], item: Bulletin, now: datetime = T0) -> list[bool]:
    """Which boards show `item` (held, not hidden, not deleted)."""
    return [item.id in {b.id for b in board.store.active(now, ring=item.ring)} for board in boards]


def tombstoned(boards: list[Board], item: Bulletin) -> list[bool]:
    return [board.store.get_tombstone(item.id) is not None for board in boards]


def forged_tombstone_bad_signature(keys: list[BoardKey], item: Bulletin) -> TombstoneMsg:
    msg = deletion(keys[0], item)
    assert msg.signature is not None
    return replace(msg, signature=bytes([msg.signature[0] ^ 1]) + msg.signature[1:])


def forged_tombstone_unlisted_key(keys: list[BoardKey], item: Bulletin) -> TombstoneMsg:
    return deletion(BoardKey.generate(), item)  # anyone can make a key: the ring lists its boards


def forged_tombstone_unsigned(keys: list[BoardKey], item: Bulletin) -> TombstoneMsg:
    return replace(deletion(keys[0], item), board_key=None, signature=None)  # as before v4


def forged_tombstone_not_the_author(keys: list[BoardKey], item: Bulletin) -> TombstoneMsg:
    return deletion(keys[0], item, deleted_by=EVE)  # no board deletes for anyone but the author


def forged_tombstone_far_ahead(keys: list[BoardKey], item: Bulletin) -> TombstoneMsg:
    return deletion(keys[0], item, at=T0 + timedelta(hours=2))  # would beat any restore


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (forged_tombstone_bad_signature, "bad signature"),
        (forged_tombstone_unlisted_key, "board key not trusted on this ring"),
        (forged_tombstone_unsigned, "unsigned"),
        (forged_tombstone_not_the_author, f"{EVE} is not the author"),
        (forged_tombstone_far_ahead, "time is ahead of this board's clock"),
    ],
)
def test_a_forged_tombstone_leaves_the_bulletin_on_every_board(
    boards: list[Board], keys: list[BoardKey], forge: object, reason: str
) -> None:
    """Someone with the channel key sends a deletion no trusted board made, to every board:
    each refuses it, counts it, audits it once, and never asks for it; the bulletin stays."""
    item = bulletin()
    store_everywhere(boards, item)
    msg = forge(keys, item)  # type: ignore[operator]
    for board in boards:
        for _ in range(2):
            board.engine.receive(encode(msg), 0, "!00c0ffee", T0)
    run(boards, T0, 3600)
    assert holders(boards, item, T0 + timedelta(hours=1)) == [True] * 3
    assert tombstoned(boards, item) == [False] * 3
    for board in boards:
        assert board.engine.stats.dropped_unverified == 2
        assert board.engine.stats.sent["tombstone"] == 0  # not relayed, not asked for
        [entry] = board.audit.audit()
        assert (entry.action, entry.bulletin, entry.accepted, entry.reason, entry.source) == (
            "delete",
            item.id,
            False,
            reason,
            "air:!00c0ffee",
        )


def test_a_tombstone_signed_by_a_listed_board_deletes_on_every_board(
    boards: list[Board], keys: list[BoardKey]
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    boards[1].engine.receive(encode(deletion(keys[2], item)), 0, "board-2", T0)
    assert boards[1].store.canonical(item.id) is None
    run(boards, T0, 3600)
    assert holders(boards, item) == [False] * 3
    assert tombstoned(boards, item) == [True] * 3
    # relayed as it was signed: every board can check it
    assert all(b.engine.stats.dropped_unverified == 0 for b in boards)


def test_on_a_ring_that_lists_no_boards_any_boards_tombstone_is_taken(
    boards: list[Board],
) -> None:
    """Trust on first use: the garden lists no boards, so a board nobody configured may delete
    there (listing the ring's boards closes it, as on the public ring above)."""
    item = bulletin(ring=1, text="Seeds to swap")
    store_everywhere(boards, item)
    stranger = BoardKey.generate()
    boards[0].engine.receive(encode(deletion(stranger, item)), 1, "!5742a115", T0)
    run(boards, T0, 3600)
    assert holders(boards, item) == [False] * 3
    assert all(b.engine.stats.dropped_unverified == 0 for b in boards)


def test_an_authors_del_at_one_board_deletes_on_every_board(
    boards: list[Board], keys: list[BoardKey]
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    later = T0 + timedelta(minutes=1)
    assert boards[0].say(f"del #{item.ref}", sender=AUTHOR, now=later) == f"deleted #{item.ref}"
    run(boards, later, 3600)
    assert holders(boards, item, later) == [False] * 3
    for board in boards:
        msg = TombstoneMsg.of(board.store.get_tombstone(item.id))  # type: ignore[arg-type]
        assert msg.board_key == keys[0].public_bytes  # signed by the board that heard the author
    assert all(b.engine.stats.dropped_unverified == 0 for b in boards)


def test_a_board_without_a_key_deletes_for_the_author_but_no_other_board_follows(
    boards: list[Board], keys: list[BoardKey]
) -> None:
    item = bulletin()
    store_everywhere(boards, item)
    keyless = CommandHandler(boards[0].store, BoardConfig(rings=rings(*keys)))
    later = T0 + timedelta(minutes=1)
    outcome = keyless.handle(Inbound(AUTHOR, 0, f"del #{item.ref}", True, later, verified=True))
    assert outcome.replies[0].text == f"deleted #{item.ref}"
    boards[0].engine.local_tombstone(item.id, later)  # logs that it will not sync
    run(boards, later, 3600)
    assert holders(boards, item, later) == [False, True, True]


def test_a_moderators_undo_brings_back_a_deleted_bulletin_on_every_board(
    boards: list[Board],
) -> None:
    """Someone claimed the author's id on the channel key and deleted at board 0: the tombstone
    is signed and reaches every board. The moderator's undo at board 2 brings the bulletin back
    everywhere, and further sync rounds leave it back."""
    item = bulletin()
    store_everywhere(boards, item)
    deleted = T0 + timedelta(minutes=1)
    assert boards[0].say(f"del {item.ref}", sender=AUTHOR, now=deleted).startswith("deleted")
    run(boards, deleted, 3600)
    assert holders(boards, item, deleted) == [False] * 3
    later = T0 + timedelta(hours=2)
    assert (
        boards[2].say(f"mod undo #{item.ref}", now=later)
        == f"restored #{item.ref}; other boards will follow"
    )
    assert holders(boards, item, later)[2]
    run(boards, later, 3600)
    assert holders(boards, item, later) == [True] * 3
    assert tombstoned(boards, item) == [False] * 3
    much_later = later + timedelta(hours=6)
    run(boards, much_later, 6 * 3600)
    assert holders(boards, item, much_later) == [True] * 3
    for board in boards:
        assert board.store.get(item.ref, 0, now=much_later) == item
        assert [(e.action, e.accepted) for e in board.audit.audit()] == [("restore", True)]


def test_a_board_that_held_only_the_tombstone_gets_the_bulletin_back(
    boards: list[Board],
) -> None:
    """Board 2 never held the bulletin, only its tombstone; the moderator on duty undoes the
    deletion there. Boards 0 and 1 bring it back from the bytes their tombstones kept, and
    board 2 gets it by repair."""
    item = bulletin()
    for board in boards[:2]:
        assert board.store.add(item, T0)
    deleted = T0 + timedelta(minutes=1)
    assert boards[0].say(f"del {item.ref}", sender=AUTHOR, now=deleted).startswith("deleted")
    run(boards, deleted, 3600)
    assert tombstoned(boards, item) == [True] * 3
    assert boards[2].store.canonical(item.id) is None
    later = T0 + timedelta(hours=2)
    assert boards[2].say(f"mod undo {item.ref}", now=later).startswith("restored")
    run(boards, later, 3600)
    assert holders(boards, item, later) == [True] * 3


def test_a_stale_tombstone_cannot_undo_the_restore(boards: list[Board]) -> None:
    """A board that slept through the undo sends the old tombstone again: it is refused, the
    bulletin stays, and its sender hears the restore."""
    item = bulletin()
    store_everywhere(boards, item)
    deleted = T0 + timedelta(minutes=1)
    boards[0].say(f"del {item.ref}", sender=AUTHOR, now=deleted)
    run(boards, deleted, 600)
    stale = boards[1].store.get_tombstone(item.id)
    assert stale is not None
    later = T0 + timedelta(hours=2)
    boards[2].say(f"mod undo {item.ref}", now=later)
    run(boards, later, 600)
    then = later + timedelta(minutes=30)
    boards[1].engine.receive(encode(TombstoneMsg.of(stale)), 0, "!0000beef", then)
    assert holders(boards, item, then)[1]
    sent = moderations_sent(boards[1], then + timedelta(seconds=30))
    assert [(m.action, m.target) for m in sent] == [(Action.RESTORE, id_to_bytes(item.id))]


def test_the_author_may_delete_again_after_the_undo(boards: list[Board]) -> None:
    """The latest word wins, a deletion's or a restore's, the same way on every board."""
    item = bulletin()
    store_everywhere(boards, item)
    deleted = T0 + timedelta(minutes=1)
    boards[0].say(f"del {item.ref}", sender=AUTHOR, now=deleted)
    run(boards, deleted, 600)
    later = T0 + timedelta(hours=2)
    assert boards[2].say(f"mod undo {item.ref}", now=later).startswith("restored")
    run(boards, later, 3600)
    assert holders(boards, item, later) == [True] * 3
    again = later + timedelta(hours=1)
    assert boards[1].say(f"del {item.ref}", sender=AUTHOR, now=again).startswith("deleted")
    run(boards, again, 3600)
    assert holders(boards, item, again) == [False] * 3
