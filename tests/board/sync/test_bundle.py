"""Sneakernet bundles: signed, refused whole when changed or cut, merged idempotently."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from board.bulletin import Bulletin
from board.signing import BoardKey
from board.store.bulletins import Store
from board.sync.bundle import (
    VERSION,
    BadBundle,
    Bundle,
    decode_bundle,
    encode_bundle,
    export_items,
    import_bundle,
    write_atomically,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = BoardKey.generate()


def snapshot(store: Store) -> list[tuple[object, ...]]:
    """Every row the import could touch, to compare before and after."""
    with store.engine.connect() as connection:
        return [
            tuple(row)
            for table in ("bulletin", "tombstone", "share")
            for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
        ]


@pytest.fixture
def boards(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two boards, each with its own database file."""
    here, there = Store.open(tmp_path / "here.db"), Store.open(tmp_path / "there.db")
    yield here, there
    here.close()
    there.close()


@pytest.fixture
def bundle_bytes(boards: tuple[Store, Store], make: Callable[..., Bulletin]) -> bytes:
    here, _ = boards
    for text in ("Soup at the hall", "Bread on friday"):
        here.add(make(text=text), NOW)
    here.add(make(type="tool", text="Ladder to lend"), NOW)
    gone = make(text="Cancelled supper")
    here.add(gone, NOW)
    here.delete(gone.id, requester=None, ring=0, now=NOW)
    bulletins, tombstones = export_items(here, [0], NOW)
    return encode_bundle(KEY, [0], bulletins, tombstones, NOW)


def test_a_bundle_carries_bulletins_to_another_board(
    boards: tuple[Store, Store], bundle_bytes: bytes
) -> None:
    here, there = boards
    bundle = decode_bundle(bundle_bytes)
    report = import_bundle(there, bundle, {0}, NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=1)
    assert {b.id for b in there.active(later)} == {b.id for b in here.active(later)}
    assert (report.new, report.already, report.tombstones, report.expired) == (3, 0, 1, 0)
    assert report.exporter == KEY.public
    assert [t.bulletin_id for t in there.tombstones(0, later)] == [
        t.bulletin_id for t in here.tombstones(0, later)
    ]


def test_importing_twice_changes_nothing(boards: tuple[Store, Store], bundle_bytes: bytes) -> None:
    _, there = boards
    import_bundle(there, decode_bundle(bundle_bytes), {0}, NOW)
    before = snapshot(there)
    again = import_bundle(there, decode_bundle(bundle_bytes), {0}, NOW)
    assert (again.new, again.already, again.tombstones, again.removed) == (0, 3, 0, 0)
    assert snapshot(there) == before


def test_a_tombstone_removes_a_held_bulletin_and_keeps_it_removed(
    boards: tuple[Store, Store], make: Callable[..., Bulletin]
) -> None:
    here, there = boards
    soup = make(text="Soup at the hall")
    here.add(soup, NOW)
    there.add(soup, NOW)
    here.delete(soup.id, requester=None, ring=0, now=NOW)
    report = import_bundle(there, decode_bundle(bundle_of(here)), {0}, NOW)
    assert report.removed == 1
    assert there.count() == 0
    assert not there.add(soup, NOW)  # stays a tombstone: the bulletin cannot come back


def bundle_of(store: Store, rings: tuple[int, ...] = (0,), key: BoardKey = KEY) -> bytes:
    bulletins, tombstones = export_items(store, rings, NOW)
    return encode_bundle(key, rings, bulletins, tombstones, NOW)


def test_bulletins_that_expired_on_the_way_are_skipped_and_counted(
    boards: tuple[Store, Store], bundle_bytes: bytes
) -> None:
    _, there = boards
    report = import_bundle(there, decode_bundle(bundle_bytes), {0}, NOW + timedelta(days=2))
    assert (report.new, report.expired) == (1, 2)  # the meals are over; the ladder is not


def test_since_exports_only_newer_bulletins(
    boards: tuple[Store, Store], make: Callable[..., Bulletin]
) -> None:
    here, _ = boards
    here.add(make(text="Old soup", now=NOW - timedelta(hours=5)), NOW)
    here.add(make(text="New soup"), NOW)
    bulletins, _ = export_items(here, [0], NOW, since=NOW - timedelta(hours=1))
    assert [b.text for b in bulletins] == ["New soup"]


def test_every_changed_byte_is_refused_and_changes_nothing(
    boards: tuple[Store, Store], bundle_bytes: bytes
) -> None:
    _, there = boards
    before = snapshot(there)
    for position in range(len(bundle_bytes)):  # header, records and signature alike
        tampered = bytearray(bundle_bytes)
        tampered[position] ^= 0x01
        with pytest.raises(BadBundle):
            decode_bundle(bytes(tampered))
    assert snapshot(there) == before


@pytest.mark.parametrize("keep", [0, 5, 8, 50, 57, 100, -65, -64, -1])
def test_a_truncated_file_is_refused(bundle_bytes: bytes, keep: int) -> None:
    with pytest.raises(BadBundle, match=r"truncated|not a Meshboard bundle"):
        decode_bundle(bundle_bytes[:keep])


def test_an_unknown_version_is_refused_by_name(bundle_bytes: bytes) -> None:
    newer = bundle_bytes[:8] + bytes([VERSION + 1]) + bundle_bytes[9:]
    with pytest.raises(BadBundle, match="version 2 is unknown"):
        decode_bundle(newer)


def test_a_ring_this_board_does_not_serve_is_refused_whole(
    boards: tuple[Store, Store], make: Callable[..., Bulletin]
) -> None:
    here, there = boards
    here.add(make(text="Public soup"), NOW)
    here.add(make(ring=1, text="Inner circle supper"), NOW)
    bundle = decode_bundle(bundle_of(here, (0, 1)))
    before = snapshot(there)
    with pytest.raises(BadBundle, match="ring 1, which this board does not serve"):
        import_bundle(there, bundle, {0}, NOW)
    assert snapshot(there) == before


def test_a_private_ring_takes_bundles_only_from_its_trusted_boards(
    boards: tuple[Store, Store], make: Callable[..., Bulletin]
) -> None:
    here, there = boards
    here.add(make(ring=1, text="Inner circle supper"), NOW)
    bundle = decode_bundle(bundle_of(here, (1,)))
    with pytest.raises(BadBundle, match="not a trusted board"):
        import_bundle(there, bundle, {0, 1}, NOW, trusted={1: [BoardKey.generate().public]})
    assert there.count() == 0
    report = import_bundle(there, bundle, {0, 1}, NOW, trusted={1: [KEY.public]})
    assert report.new == 1


def test_a_bulletin_of_a_ring_the_header_does_not_list_is_refused(
    make: Callable[..., Bulletin],
) -> None:
    with pytest.raises(ValueError, match="not in the header"):
        encode_bundle(KEY, [0], [make(ring=1)], [], NOW)


def test_a_file_is_replaced_whole(tmp_path: Path, bundle_bytes: bytes) -> None:
    target = tmp_path / "stick" / "board.mbundle"
    target.parent.mkdir()
    target.write_bytes(b"old")
    write_atomically(target, bundle_bytes)
    assert target.read_bytes() == bundle_bytes
    assert [p.name for p in target.parent.iterdir()] == ["board.mbundle"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_a_bundle_or_a_bad_bundle(data: bytes) -> None:
    with contextlib.suppress(BadBundle):
        assert isinstance(decode_bundle(data), Bundle)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_change_to_a_signed_bundle_is_refused(data: st.DataObject) -> None:
    bulletin = Bulletin(
        type="meal",
        text="Soup at the hall",
        author="!a1b2c3d4",
        ring=0,
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
    )
    original = encode_bundle(KEY, [0], [bulletin], [], NOW)
    changed = data.draw(st.binary(min_size=1, max_size=len(original) + 8))
    splice = data.draw(st.integers(0, len(original)))
    mutated = original[:splice] + changed + original[splice + len(changed) :]
    if mutated == original:
        return
    with pytest.raises(BadBundle):
        decode_bundle(mutated)


def test_a_validly_signed_record_that_is_not_canonical_is_refused() -> None:
    """A broken exporter's signature does not make a bad bulletin acceptable."""
    head = struct.pack(">8sB32sIIB", b"MESHBNDL", VERSION, KEY.public_bytes, 1, 0, 1)
    body = head + bytes([0]) + struct.pack(">II", 1, 0) + struct.pack(">BH", 1, 3) + b"abc"
    with pytest.raises(BadBundle, match="record 1"):
        decode_bundle(body + KEY.sign(body))


def test_decoded_bundle_names_its_exporter(bundle_bytes: bytes) -> None:
    bundle = decode_bundle(bundle_bytes)
    assert isinstance(bundle, Bundle)
    assert bundle.exporter_text == KEY.public
    assert bundle.rings == (0,)
    assert bundle.created_at == NOW
