"""Tombstones in the store: signed by the deleting board, keeping the deleted bulletin's bytes,
and undone by a moderator's later restore (issue 15)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from board.bulletin import Bulletin, Tombstone
from board.mod_policy import ModerationPolicy, sign_action, sign_tombstone
from board.signing import BoardKey
from board.store.applied import Applied
from board.store.bulletins import Store
from board.store.moderation import ModerationStore
from board.wire.keys import id_to_bytes
from board.wire.moderation import Action, ModerationMsg
from board.wire.tombstone import SignedTombstone, TombstoneMsg

Make = Callable[..., Bulletin]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = BoardKey.generate()
MODERATOR = "!1234abcd"


def restore(item: Bulletin, at: datetime) -> ModerationMsg:
    return sign_action(
        KEY, Action.RESTORE, id_to_bytes(item.id), item.ring, MODERATOR, at, item.expires_at
    )


def test_a_delete_with_the_board_key_is_signed_for_other_boards(store: Store, make: Make) -> None:
    meal = make()
    store.add(meal, NOW)
    store.delete(meal.ref, requester=meal.author, ring=0, now=NOW, key=KEY)
    tombstone = store.get_tombstone(meal.id)
    assert isinstance(tombstone, SignedTombstone)
    assert tombstone.board_key == KEY.public_bytes
    assert store.tombstones(0, NOW) == [tombstone]
    msg = TombstoneMsg.of(tombstone)
    assert ModerationPolicy().tombstone_refusal(msg, NOW) is None


def test_a_delete_without_a_key_is_not_signed(store: Store, make: Make) -> None:
    meal = make()
    store.add(meal, NOW)
    store.delete(meal.ref, requester=None, ring=0, now=NOW)
    tombstone = store.get_tombstone(meal.id)
    assert tombstone is not None and not isinstance(tombstone, SignedTombstone)
    assert ModerationPolicy().tombstone_refusal(TombstoneMsg.of(tombstone), NOW) == "unsigned"


def test_a_signed_tombstone_keeps_its_signature_when_applied(store: Store, make: Make) -> None:
    meal = make()
    store.add(meal, NOW)
    signed = sign_tombstone(
        KEY, Tombstone(meal.id, 0, meal.author, meal.author, NOW, meal.expires_at)
    )
    assert store.apply_tombstone(signed, NOW)
    assert store.get_tombstone(meal.id) == signed  # so it can be relayed as it was signed


def test_a_signed_tombstone_that_does_not_match_the_bulletin_is_refused(
    store: Store, make: Make
) -> None:
    """Its signature would not cover what the store keeps (the bulletin's own expiry)."""
    meal = make()
    store.add(meal, NOW)
    lying = Tombstone(meal.id, 0, meal.author, meal.author, NOW, NOW + timedelta(days=300))
    assert not store.apply_tombstone(sign_tombstone(KEY, lying), NOW)
    assert store.canonical(meal.id) == meal.canonical_bytes()


def test_a_restore_after_the_deletion_brings_the_bulletin_back(store: Store, make: Make) -> None:
    meal = make()
    store.add(meal, NOW)
    store.delete(meal.ref, requester=meal.author, ring=0, now=NOW, key=KEY)
    assert store.count() == 0
    moderation = ModerationStore(store.engine)
    assert moderation.apply(restore(meal, NOW + timedelta(minutes=5)), NOW) is Applied.NEW
    assert store.get(meal.ref, 0, now=NOW) == meal  # from the bytes the tombstone kept
    assert store.get_tombstone(meal.id) is None
    assert store.add(meal, NOW) is False  # held again


def test_a_restore_older_than_the_deletion_changes_nothing(store: Store, make: Make) -> None:
    meal = make()
    store.add(meal, NOW)
    store.delete(meal.ref, requester=meal.author, ring=0, now=NOW + timedelta(minutes=5), key=KEY)
    ModerationStore(store.engine).apply(restore(meal, NOW), NOW)
    assert store.count() == 0
    assert store.get_tombstone(meal.id) is not None


def test_a_restore_lets_a_board_that_held_only_the_tombstone_take_the_bulletin(
    store: Store, make: Make
) -> None:
    meal = make()
    deleted = Tombstone(meal.id, 0, meal.author, meal.author, NOW, meal.expires_at)
    assert store.apply_tombstone(sign_tombstone(KEY, deleted), NOW)
    assert store.add(meal, NOW) is False
    ModerationStore(store.engine).apply(restore(meal, NOW + timedelta(minutes=5)), NOW)
    assert store.count() == 0  # nothing to bring back here: repair brings it
    assert store.add(meal, NOW) is True


def test_after_a_restore_an_older_tombstone_is_refused_from_anywhere(
    store: Store, make: Make
) -> None:
    meal = make()
    store.add(meal, NOW)
    ModerationStore(store.engine).apply(restore(meal, NOW + timedelta(minutes=5)), NOW)
    old = sign_tombstone(KEY, Tombstone(meal.id, 0, meal.author, meal.author, NOW, meal.expires_at))
    assert not store.apply_tombstone(old, NOW)
    assert store.merge([], [old], NOW).tombstones == 0  # nor from a bundle
    newer = replace(old, deleted_at=NOW + timedelta(minutes=10))
    assert store.apply_tombstone(sign_tombstone(KEY, newer), NOW)  # the author's later word
    assert store.count() == 0


def test_a_delete_on_a_board_whose_clock_is_behind_the_restore_still_comes_after_it(
    store: Store, make: Make
) -> None:
    meal = make()
    store.add(meal, NOW)
    ModerationStore(store.engine).apply(restore(meal, NOW + timedelta(minutes=5)), NOW)
    store.delete(meal.ref, requester=meal.author, ring=0, now=NOW, key=KEY)
    tombstone = store.get_tombstone(meal.id)
    assert tombstone is not None
    assert tombstone.deleted_at == NOW + timedelta(minutes=5, seconds=1)
    assert ModerationPolicy().tombstone_refusal(TombstoneMsg.of(tombstone), NOW) is None
