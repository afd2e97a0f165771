"""The Tombstone message on the air: signed by the deleting board, its exact size, round trips,
and a decoder that raises only our errors on any bytes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from board.bulletin import Tombstone
from board.errors import ForeignPacket, MalformedPacket
from board.mod_policy import sign_tombstone
from board.signing import BoardKey, verify
from board.wire.codec import (
    MAGIC_VERSION,
    MAX_BOARD_PAYLOAD,
    SIGNED_TOMBSTONE_BYTES,
    Kind,
    TombstoneMsg,
    decode,
    encode,
)
from board.wire.keys import bytes_to_id
from board.wire.moderation import Action, signed_fields
from board.wire.tombstone import SignedTombstone

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = BoardKey.generate()
TARGET = bytes(range(16))
HEADER = bytes([MAGIC_VERSION, Kind.TOMBSTONE])


def deletion(deleted_by: str | None = "!a1b2c3d4", **fields: object) -> Tombstone:
    values: dict[str, object] = {
        "bulletin_id": bytes_to_id(TARGET),
        "ring": 2,
        "author": "!a1b2c3d4",
        "deleted_by": deleted_by,
        "deleted_at": T0,
        "expires_at": T0.replace(day=30),
    }
    values.update(fields)
    return Tombstone(**values)  # type: ignore[arg-type]


def signed(deleted_by: str | None = "!a1b2c3d4") -> TombstoneMsg:
    return TombstoneMsg.of(sign_tombstone(KEY, deletion(deleted_by)))


@pytest.mark.parametrize("deleted_by", ["!a1b2c3d4", None], ids=["author", "operator"])
def test_a_signed_tombstone_is_131_bytes_on_the_air_and_round_trips(
    deleted_by: str | None,
) -> None:
    msg = signed(deleted_by)
    payload = encode(msg)
    assert len(payload) == SIGNED_TOMBSTONE_BYTES == 131 <= MAX_BOARD_PAYLOAD
    assert payload[:2] == HEADER
    assert decode(payload) == msg
    assert msg.board_key == KEY.public_bytes
    assert isinstance(msg.tombstone(), SignedTombstone)
    assert TombstoneMsg.of(msg.tombstone()) == msg


def test_the_signature_covers_every_field_but_itself() -> None:
    msg = signed()
    assert msg.signature is not None and msg.board_key is not None
    assert verify(msg.board_key, msg.signed_bytes(), msg.signature)
    for changed in (
        replace(msg, target=bytes(16)),
        replace(msg, ring=3),
        replace(msg, author="!a1b2c3d5"),
        replace(msg, deleted_by=None),
        replace(msg, deleted_at=T0.replace(second=1)),
        replace(msg, expires_at=T0.replace(day=29)),
    ):
        assert not verify(msg.board_key, changed.signed_bytes(), msg.signature)


def test_a_board_signature_on_a_tombstone_is_never_one_on_a_moderation() -> None:
    """The signed bytes carry their own tag, so no other signed message can be replayed as one."""
    msg = signed()
    assert msg.signed_bytes().startswith(b"meshboard tombstone v1\x00")
    moderation = signed_fields(Action.REMOVE, TARGET, 2, "!a1b2c3d4", T0, T0.replace(day=30))
    assert not moderation.endswith(msg.signed_bytes()[len(b"meshboard tombstone v1\x00") :])


def test_an_unsigned_tombstone_still_decodes_for_bundles_from_before() -> None:
    msg = TombstoneMsg.of(deletion())
    payload = encode(msg)
    assert len(payload) == 35
    assert decode(payload) == msg
    assert (msg.board_key, msg.signature) == (None, None)
    assert type(msg.tombstone()) is Tombstone


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "tombstone is 0 bytes; expected 129 \\(or 33 unsigned\\)"),
        (encode(signed())[2:-1], "tombstone is 128 bytes"),
        (encode(signed())[2:] + b"\x00", "tombstone is 130 bytes"),
        (encode(signed())[2:35] + bytes(32), "tombstone is 65 bytes"),  # a key, no signature
        (encode(signed())[2:18] + b"\x09" + encode(signed())[19:], "ring 9"),
        (encode(signed())[2:27] + bytes(4) + encode(signed())[31:], "time out of range"),
        (encode(signed())[2:31] + bytes(4) + encode(signed())[35:], "time out of range"),
    ],
)
def test_malformed_tombstones_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        decode(HEADER + body)


def test_a_key_without_a_signature_is_refused() -> None:
    with pytest.raises(MalformedPacket, match="32-byte key and a 64-byte signature"):
        replace(signed(), signature=None)
    with pytest.raises(MalformedPacket, match="32-byte key and a 64-byte signature"):
        replace(signed(), board_key=bytes(31))


@given(st.binary(max_size=240))
def test_decode_arbitrary_tombstone_bytes(body: bytes) -> None:
    try:
        msg = decode(HEADER + body)
    except (ForeignPacket, MalformedPacket):
        return
    assert encode(msg) == HEADER + body
