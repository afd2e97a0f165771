"""The Moderation message: a moderator's removal or restore, vouched for by the board that saw it.

Only the board whose radio decrypted the moderator's PKI direct message knows the moderator is
who they say; every other board hears the action second-hand on a shared channel key. So the
verifying board signs the action with its Ed25519 key, and other boards accept it only from keys
they trust (docs/wire-format.md, "6 Moderation"). Kept apart from `board.wire.codec` because it
is the only signed message and the only one whose meaning depends on the configuration.

This module knows the layout and the bytes that are signed; `board.mod_policy` decides whether
an action is acceptable.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from board.errors import MalformedPacket
from board.signing import PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from board.wire.frame import NODE_BYTES, check_ring, is_node_id
from board.wire.keys import KEY_BYTES

#: action, target id, ring, moderator, at, expires_at: the fields the signature covers.
_FIELDS = struct.Struct(f">B{KEY_BYTES}sB{NODE_BYTES}sII")
_BODY = struct.Struct(f">{_FIELDS.size}s{PUBLIC_KEY_BYTES}s{SIGNATURE_BYTES}s")
#: Domain separation: these signed bytes can never be mistaken for a bundle or anything else a
#: board key signs.
_SIGNED_PREFIX = b"meshboard moderation v1\x00"
_KEY_SALT = b"meshboard moderation\x00"
MODERATION_BODY_BYTES = _BODY.size  # 126: 128 on the air, after the frame's header


class Action(IntEnum):
    REMOVE = 1
    RESTORE = 2


@dataclass(frozen=True)
class ModerationMsg:
    """One moderation action on one bulletin (`target`, its 16-byte id) of one ring.

    `expires_at` is the target's own expiry: the action is forgotten with it, and a board that
    never held the bulletin still knows when to let go.
    """

    action: Action
    target: bytes
    ring: int
    moderator: str  # "!1234abcd"
    at: datetime
    expires_at: datetime
    board_key: bytes  # the verifying board's Ed25519 public key
    signature: bytes

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if len(self.target) != KEY_BYTES:
            raise MalformedPacket(f"moderation target is {KEY_BYTES} bytes")
        if not is_node_id(self.moderator) or self.moderator == "!00000000":
            raise MalformedPacket(f"bad moderator id {self.moderator!r}")
        for moment in (self.at, self.expires_at):
            if moment.tzinfo is None or not 0 < moment.timestamp() < 2**32 or moment.microsecond:
                raise MalformedPacket("moderation times are whole seconds in 1970..2106")
        if len(self.board_key) != PUBLIC_KEY_BYTES or len(self.signature) != SIGNATURE_BYTES:
            raise MalformedPacket("a moderation carries a 32-byte key and a 64-byte signature")

    def signed_bytes(self) -> bytes:
        """What the board signs: every field but the key and the signature, with a domain tag."""
        return signed_fields(
            self.action, self.target, self.ring, self.moderator, self.at, self.expires_at
        )

    @property
    def key(self) -> bytes:
        """Its sync item key: one per signed action, never equal to a bulletin's or tombstone's."""
        return hashlib.sha256(_KEY_SALT + self.signature).digest()[:KEY_BYTES]

    def beats(self, other: ModerationMsg) -> bool:
        """Whether this action wins over `other` on the same bulletin: later, then higher
        signature bytes, so that every board settles on the same one in any order of arrival.
        """
        return (self.at, self.signature) > (other.at, other.signature)


def signed_fields(
    action: Action,
    target: bytes,
    ring: int,
    moderator: str,
    at: datetime,
    expires_at: datetime,
) -> bytes:
    """The bytes a verifying board signs for an action it is about to make."""
    return _SIGNED_PREFIX + _fields(action, target, ring, moderator, at, expires_at)


def _fields(
    action: Action, target: bytes, ring: int, moderator: str, at: datetime, expires_at: datetime
) -> bytes:
    node = bytes.fromhex(moderator[1:])
    return _FIELDS.pack(
        action, target, ring, node, int(at.timestamp()), int(expires_at.timestamp())
    )


def encode_body(msg: ModerationMsg) -> bytes:
    fields = _fields(msg.action, msg.target, msg.ring, msg.moderator, msg.at, msg.expires_at)
    return _BODY.pack(fields, msg.board_key, msg.signature)


def decode_body(body: bytes) -> ModerationMsg:
    """A moderation message's body; MalformedPacket for anything else (the signature is not
    checked here: that needs the configuration).
    """
    if len(body) != _BODY.size:
        raise MalformedPacket(f"moderation is {len(body)} bytes; expected {_BODY.size}")
    fields, board_key, signature = _BODY.unpack(body)
    action, target, ring, node, at, expires_at = _FIELDS.unpack(fields)
    try:
        kind = Action(action)
    except ValueError:
        raise MalformedPacket(f"unknown moderation action {action}") from None
    if not at or not expires_at:
        raise MalformedPacket("moderation times are whole seconds in 1970..2106")
    return ModerationMsg(
        action=kind,
        target=target,
        ring=ring,
        moderator="!" + node.hex(),
        at=datetime.fromtimestamp(at, UTC),
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        board_key=board_key,
        signature=signature,
    )
