"""The store methods sync needs: active ids, canonical bytes, tombstones from the mesh, airtime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from board.bulletin import Bulletin, Tombstone
from board.store.bulletins import Store
from board.wire.keys import id_to_bytes

Make = Callable[..., Bulletin]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def tombstone_for(bulletin: Bulletin, **overrides: object) -> Tombstone:
    fields: dict[str, object] = {
        "bulletin_id": bulletin.id,
        "ring": bulletin.ring,
        "author": bulletin.author,
        "deleted_by": bulletin.author,
        "deleted_at": NOW + timedelta(minutes=5),
        "expires_at": bulletin.expires_at,
    }
    fields.update(overrides)
    return Tombstone(**fields)  # type: ignore[arg-type]


def test_active_ids_and_canonical(store: Store, make: Make) -> None:
    meal, tool = make(), make(type="tool", text="ladder")
    other_ring = make(ring=1)
    for bulletin in (meal, tool, other_ring):
        store.add(bulletin, NOW)
    assert sorted(store.active_ids(0, NOW)) == sorted([meal.id, tool.id])
    assert store.active_ids(0, NOW + timedelta(days=2)) == [tool.id]
    assert store.canonical(meal.id) == meal.canonical_bytes()
    assert store.canonical(make(text="never stored").id) is None


def test_active_ids_come_in_the_order_their_keys_sort(store: Store, make: Make) -> None:
    """Sync packs the keys as they come and searches them by bisection."""
    for n in range(50):
        store.add(make(text=f"soup pot {n}"), NOW)
    runs = list(store.active_id_runs(0, NOW, run=7))
    assert [len(r) for r in runs] == [7] * 7 + [1]
    ids = [i for r in runs for i in r]
    assert ids == sorted(ids) == store.active_ids(0, NOW)
    assert [id_to_bytes(i) for i in ids] == sorted(id_to_bytes(i) for i in ids)


@pytest.mark.parametrize("held", [True, False])
def test_tombstone_from_the_mesh_deletes_and_blocks(store: Store, make: Make, held: bool) -> None:
    meal = make()
    if held:
        store.add(meal, NOW)
    assert store.apply_tombstone(tombstone_for(meal), NOW) is True
    assert store.apply_tombstone(tombstone_for(meal), NOW) is False
    assert store.count() == 0
    assert store.add(meal, NOW) is False
    assert store.get_tombstone(meal.id) == tombstone_for(meal)
    assert store.tombstones(0, NOW) == [tombstone_for(meal)]
    assert store.tombstones(0, meal.expires_at) == []


def test_tombstone_takes_the_held_targets_expiry(store: Store, make: Make) -> None:
    meal = make()
    store.add(meal, NOW)
    lying = tombstone_for(meal, expires_at=NOW + timedelta(days=365))
    assert store.apply_tombstone(lying, NOW)
    stored = store.get_tombstone(meal.id)
    assert stored is not None and stored.expires_at == meal.expires_at


@pytest.mark.parametrize(
    "overrides",
    [{"ring": 3}, {"expires_at": NOW - timedelta(seconds=1)}],
    ids=["other ring", "expired"],
)
def test_tombstone_refused(store: Store, make: Make, overrides: dict[str, object]) -> None:
    meal = make()
    store.add(meal, NOW)
    if "expires_at" in overrides:
        store = Store.open("sqlite://")  # an expired tombstone for a bulletin never held
    assert store.apply_tombstone(tombstone_for(meal, **overrides), NOW) is False
    assert store.get_tombstone(meal.id) is None


def test_airtime_rows_persist_and_are_purged(store: Store) -> None:
    store.record_airtime(NOW, 1.5, forget_before=NOW - timedelta(hours=1))
    store.record_airtime(
        NOW + timedelta(minutes=30), 0.5, forget_before=NOW - timedelta(minutes=30)
    )
    assert store.airtime_since(NOW - timedelta(hours=1)) == [
        (NOW, 1.5),
        (NOW + timedelta(minutes=30), 0.5),
    ]
    later = NOW + timedelta(minutes=90)
    store.record_airtime(later, 1.0, forget_before=later - timedelta(hours=1))
    assert store.airtime_since(NOW - timedelta(days=1)) == [
        (NOW + timedelta(minutes=30), 0.5),
        (later, 1.0),
    ]
