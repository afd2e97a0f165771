"""Tombstones on a USB stick: the bundle's signature vouches for them at the importing board,
and a signed one keeps its deleting board's signature, so it goes on over the air from there."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from board.bulletin import Bulletin
from board.signing import BoardKey
from board.store.bulletins import Store
from board.sync.bundle import decode_bundle, encode_bundle, export_items, import_bundle
from board.sync.engine import SyncConfig, SyncEngine
from board.wire.codec import TombstoneMsg, decode, encode
from board.wire.tombstone import SignedTombstone

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EXPORTER = BoardKey.generate()
DELETER = BoardKey.generate()


def carried(here: Store) -> Store:
    """A fresh board that imported `here`'s bundle."""
    bulletins, tombstones = export_items(here, [0], NOW)
    there = Store.open("sqlite://")
    data = encode_bundle(EXPORTER, [0], bulletins, tombstones, NOW)
    import_bundle(there, decode_bundle(data), {0}, NOW)
    return there


def test_a_signed_tombstone_keeps_its_signature_through_a_bundle(
    make: Callable[..., Bulletin],
) -> None:
    here = Store.open("sqlite://")
    soup = make(text="Soup at the hall")
    here.add(soup, NOW)
    here.delete(soup.id, requester=soup.author, ring=0, now=NOW, key=DELETER)
    there = carried(here)
    tombstone = there.get_tombstone(soup.id)
    assert isinstance(tombstone, SignedTombstone)
    assert tombstone == here.get_tombstone(soup.id)

    # The importing board's neighbour, which still holds the bulletin, takes it from the air.
    neighbour = SyncEngine(Store.open("sqlite://"), SyncConfig(), random.Random(0))
    neighbour.store.add(soup, NOW)
    neighbour.receive(encode(TombstoneMsg.of(tombstone)), 0, "!0000beef", NOW)
    assert neighbour.store.canonical(soup.id) is None
    assert neighbour.stats.dropped_unverified == 0


def test_an_unsigned_tombstone_in_a_bundle_deletes_at_the_importing_board_only(
    make: Callable[..., Bulletin],
) -> None:
    """The bundle vouches for it there; on the air no board would take it."""
    here = Store.open("sqlite://")
    soup = make(text="Soup at the hall")
    here.add(soup, NOW)
    here.delete(soup.id, requester=None, ring=0, now=NOW)  # a CLI without the board's key
    there = carried(here)
    assert there.get_tombstone(soup.id) is not None
    assert not there.add(soup, NOW)

    engine = SyncEngine(there, SyncConfig(), random.Random(0))
    engine.start(NOW)
    engine.local_tombstone(soup.id, NOW)  # not announced: every other board would refuse it
    sent = []
    while (wake := engine.next_wakeup()) is not None and wake < NOW + timedelta(minutes=1):
        sent += [decode(out.payload) for out in engine.poll(wake)]
    assert sent  # its digests
    assert not [m for m in sent if isinstance(m, TombstoneMsg)]
