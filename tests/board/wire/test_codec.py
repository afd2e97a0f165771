"""The board-plane codec: exact sizes, round trips, and a decoder that only raises our errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshtastic.protobuf import mesh_pb2

from board.bulletin import Bulletin
from board.errors import ForeignPacket, MalformedPacket
from board.sync.reconcile import differing, inventories, summarise
from board.wire.codec import (
    MAGIC_VERSION,
    MAX_BOARD_PAYLOAD,
    MAX_INVENTORY_PREFIXES,
    MAX_REQUEST_PREFIXES,
    Announce,
    Inventory,
    Message,
    Request,
    TombstoneMsg,
    decode,
    encode,
)
from board.wire.keys import (
    bucket_of,
    bulletin_key,
    bytes_to_id,
    id_to_bytes,
    ids_to_keys,
    tombstone_key,
)

Make = Callable[..., Bulletin]
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = bytes(range(16))


def keys(n: int, seed: int = 0) -> list[bytes]:
    import hashlib

    return [hashlib.sha256(f"{seed}:{i}".encode()).digest()[:16] for i in range(n)]


def tombstone(deleted_by: str | None = "!a1b2c3d4") -> TombstoneMsg:
    return TombstoneMsg(KEY, 2, "!a1b2c3d4", deleted_by, T0, T0.replace(day=24))


MESSAGES: list[tuple[str, Message, int]] = [
    ("tombstone", replace(tombstone(), board_key=bytes(32), signature=bytes(64)), 131),
    ("unsigned tombstone (bundles only)", tombstone(), 35),
    ("unsigned tombstone by operator", tombstone(None), 35),
    ("digest", summarise(0, keys(100)), 45),
    ("empty digest", summarise(3, []), 45),
    ("digest asking two", replace(summarise(0, []), asks=("!0000beef", "!a1b2c3d4")), 53),
    ("inventory, empty bucket", Inventory(0, 1 << 5, ()), 9),
    ("inventory, 3 keys", Inventory(1, 0xFFFF, tuple(sorted(k[:4] for k in keys(3)))), 21),
    ("full inventory", inventories(0, keys(MAX_INVENTORY_PREFIXES), 0xFFFF)[0], 229),
    ("request", Request(0, (b"\x00\x00\x00\x01",)), 7),
    ("full request", Request(7, tuple(sorted(k[:4] for k in keys(MAX_REQUEST_PREFIXES)))), 231),
]


@pytest.mark.parametrize(
    ("msg", "size"), [(m, s) for _, m, s in MESSAGES], ids=[n for n, *_ in MESSAGES]
)
def test_round_trip_and_size(msg: Message, size: int) -> None:
    payload = encode(msg)
    assert len(payload) == size
    assert payload[0] == MAGIC_VERSION
    assert decode(payload) == msg


@pytest.mark.parametrize(
    ("type", "text", "size"),
    [("meal", "Soup at the hall", 2 + 19 + 4 + 16), ("childcare", "x" * 200, 230)],
)
def test_announce_is_two_bytes_more_than_the_bulletin(
    make: Make, type: str, text: str, size: int
) -> None:
    bulletin = make(type=type, text=text)
    payload = encode(Announce.of(bulletin))
    assert len(payload) == size
    decoded = decode(payload)
    assert isinstance(decoded, Announce)
    assert decoded.bulletin() == bulletin


def test_encode_refuses_what_does_not_fit() -> None:
    """A 24-byte type and 200 bytes of text make a 243-byte bulletin: it cannot be announced."""
    bulletin = Bulletin(
        type="announcement" * 2,
        text="y" * 200,
        author="!a1b2c3d4",
        ring=0,
        created_at=T0,
        expires_at=T0.replace(day=24),
    )
    with pytest.raises(MalformedPacket, match="at most 231"):
        encode(Announce.of(bulletin))


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", ForeignPacket),
        (b'{"json": 1}', ForeignPacket),
        (bytes([0xB2, 1]), ForeignPacket),
        (bytes([MAGIC_VERSION]), MalformedPacket),
        (bytes([MAGIC_VERSION, 99]), MalformedPacket),
        (bytes([MAGIC_VERSION, 3]) + bytes(42), MalformedPacket),
        (bytes([MAGIC_VERSION, 3]) + bytes(45), MalformedPacket),  # 2 bytes of an ask
        (bytes([MAGIC_VERSION, 3]) + bytes(43) + bytes(4), MalformedPacket),  # asks !00000000
        (bytes([MAGIC_VERSION, 3]) + bytes(43) + b"\x00\x00\x00\x02" * 2, MalformedPacket),
        (bytes([MAGIC_VERSION, 3]) + bytes(43) + bytes([0, 0, 0, 2, 0, 0, 0, 1]), MalformedPacket),
        (bytes([MAGIC_VERSION, 3]) + bytes(43) + bytes(range(1, 37)), MalformedPacket),  # 9 asks
        (bytes([MAGIC_VERSION, 4, 0, 0, 0, 0, 0, 0xFF, 0xFF]), MalformedPacket),  # no bucket
        (bytes([MAGIC_VERSION, 5, 0]), MalformedPacket),  # request for nothing
        (bytes([MAGIC_VERSION, 5, 0]) + b"\x02\x00\x00\x00\x01\x00\x00\x00", MalformedPacket),
        (bytes([MAGIC_VERSION, 5, 9, 1, 2, 3, 4]), MalformedPacket),  # ring 9
        (bytes([MAGIC_VERSION, 1]) + b"not a bulletin", MalformedPacket),
        (bytes([MAGIC_VERSION, 5, 0]) + bytes(4) * 58, MalformedPacket),  # 234 bytes
    ],
)
def test_bad_payloads(payload: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(payload)


@given(st.binary(max_size=260))
def test_decode_arbitrary_bytes(payload: bytes) -> None:
    try:
        msg = decode(payload)
    except (ForeignPacket, MalformedPacket):
        return
    assert encode(msg) == payload


@given(st.binary(max_size=240))
def test_decode_arbitrary_board_bytes(body: bytes) -> None:
    """Past the magic byte, so hypothesis explores every message kind's decoder."""
    payload = bytes([MAGIC_VERSION]) + body
    try:
        msg = decode(payload)
    except (ForeignPacket, MalformedPacket):
        return
    assert encode(msg) == payload


def test_keys(make: Make) -> None:
    bulletin = make()
    key = bulletin_key(bulletin.id)
    assert bytes_to_id(key) == bulletin.id
    assert id_to_bytes(bulletin.id) == key
    assert tombstone_key(bulletin.id) != key
    assert len(tombstone_key(bulletin.id)) == 16


@given(st.lists(st.binary(min_size=16, max_size=16), max_size=5))
def test_ids_and_keys_convert_both_ways(raws: list[bytes]) -> None:
    ids = [bytes_to_id(raw) for raw in raws]
    assert [id_to_bytes(i) for i in ids] == ids_to_keys(ids) == raws


@pytest.mark.parametrize("text", ["", "0" * 25, "0" * 27, "0" * 25 + "u", "0" * 25 + "A"])
def test_only_an_id_converts_to_a_key(text: str) -> None:
    with pytest.raises(ValueError, match="not a bulletin id"):
        id_to_bytes(text)
    with pytest.raises(ValueError, match="not all bulletin ids"):
        ids_to_keys([bytes_to_id(bytes(16)), text])


def test_many_ids_convert_only_if_each_is_an_id() -> None:
    with pytest.raises(ValueError, match="not all bulletin ids"):
        ids_to_keys(["0" * 25, "0" * 27])


def test_digest_points_at_the_differing_bucket() -> None:
    ours = keys(40)
    extra = keys(1, seed=1)[0]
    mask = differing(summarise(0, ours), summarise(0, [*ours, extra]))
    assert mask == 1 << bucket_of(extra)
    assert differing(summarise(0, ours), summarise(0, reversed(ours))) == 0


def test_oversized_bucket_is_paged_by_range() -> None:
    many = [k for k in keys(2000) if bucket_of(k) == 3][:130]
    pages = inventories(0, many, 1 << 3)
    assert len(pages) == 3
    listed = [p for page in pages for p in page.prefixes]
    assert sorted(listed) == sorted(k[:4] for k in many)
    assert all(len(encode(page)) <= MAX_BOARD_PAYLOAD for page in pages)
    assert all(page.covers(k) for k in many for page in pages if k[:4] in page.prefixes)
    assert pages[0].low == 0x3000 and pages[-1].high == 0x3FFF


def test_a_board_plane_packet_fits_the_lora_frame_the_firmware_allows() -> None:
    """Header (16) + encoded Data (port 384, payload, the 2-byte bitfield) may not pass 255
    bytes (firmware `Router.cpp` perhapsEncode: TOO_LARGE), so a payload is at most 231."""
    data = mesh_pb2.Data(portnum=384, payload=bytes(MAX_BOARD_PAYLOAD), bitfield=1)
    assert 16 + data.ByteSize() == 255
    assert MAX_BOARD_PAYLOAD == 231
