"""The Moderation message on the air: its exact size, round trips, and a decoder that raises only
our errors on any bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from board.errors import ForeignPacket, MalformedPacket
from board.signing import BoardKey, verify
from board.wire.codec import MAGIC_VERSION, Kind, decode, encode
from board.wire.moderation import MODERATION_BODY_BYTES, Action, ModerationMsg

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = BoardKey.generate()


def action(kind: Action = Action.REMOVE, **fields: object) -> ModerationMsg:
    values: dict[str, object] = {
        "action": kind,
        "target": bytes(range(16)),
        "ring": 2,
        "moderator": "!1234abcd",
        "at": T0,
        "expires_at": T0.replace(day=30),
        "board_key": KEY.public_bytes,
        "signature": bytes(64),
    }
    values.update(fields)
    return ModerationMsg(**values)  # type: ignore[arg-type]


def test_a_moderation_is_128_bytes_on_the_air() -> None:
    msg = action()
    payload = encode(msg)
    assert len(payload) == 2 + MODERATION_BODY_BYTES == 128
    assert payload[:2] == bytes([MAGIC_VERSION, Kind.MODERATION])
    assert decode(payload) == msg


def test_the_signature_covers_every_field_but_itself() -> None:
    msg = action()
    signed = action(signature=KEY.sign(msg.signed_bytes()))
    assert verify(signed.board_key, signed.signed_bytes(), signed.signature)
    for changed in (
        action(Action.RESTORE),
        action(target=bytes(16)),
        action(ring=3),
        action(moderator="!1234abce"),
        action(at=T0.replace(second=1)),
        action(expires_at=T0.replace(day=29)),
    ):
        assert not verify(signed.board_key, changed.signed_bytes(), signed.signature)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "moderation is 0 bytes; expected 126"),
        (encode(action())[2:-1], "moderation is 125 bytes; expected 126"),
        (b"\x03" + encode(action())[3:], "unknown moderation action 3"),
        (encode(action())[2:20] + bytes(4) + encode(action())[24:], "bad moderator id '!00000000'"),
    ],
)
def test_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        decode(bytes([MAGIC_VERSION, Kind.MODERATION]) + body)


@given(st.binary(max_size=240))
def test_decode_arbitrary_moderation_bytes(body: bytes) -> None:
    try:
        msg = decode(bytes([MAGIC_VERSION, Kind.MODERATION]) + body)
    except (ForeignPacket, MalformedPacket):
        return
    assert encode(msg) == bytes([MAGIC_VERSION, Kind.MODERATION]) + body


@given(
    kind=st.sampled_from(Action),
    target=st.binary(min_size=16, max_size=16),
    ring=st.integers(0, 7),
    node=st.integers(1, 2**32 - 1),
    at=st.integers(1, 2**32 - 1),
    expires=st.integers(1, 2**32 - 1),
    key=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=64, max_size=64),
)
def test_round_trip(
    kind: Action,
    target: bytes,
    ring: int,
    node: int,
    at: int,
    expires: int,
    key: bytes,
    signature: bytes,
) -> None:
    msg = ModerationMsg(
        kind,
        target,
        ring,
        f"!{node:08x}",
        datetime.fromtimestamp(at, UTC),
        datetime.fromtimestamp(expires, UTC),
        key,
        signature,
    )
    assert decode(encode(msg)) == msg
    assert len(msg.key) == 16
