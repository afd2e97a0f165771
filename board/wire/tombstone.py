"""The Tombstone message: a deletion, vouched for by the board that heard the author delete.

Anyone who holds a ring's channel key can send a board-plane packet, and on a channel key anyone
can claim any node id, so a deletion that names its author proves nothing by itself. Only the
board that carried out the `del` (or whose operator deleted) stands behind it: it signs the
tombstone with its Ed25519 key, and other boards accept it only from a board they trust on the
ring (docs/wire-format.md, "2 Tombstone"; `board.mod_policy.ModerationPolicy.tombstone_refusal`).

The layout without the key and signature (35 bytes on the air) is what boards sent before
tombstones were signed. It still decodes, so that a bundle written then imports (a bundle is
vouched for by its own signature, `board.sync.bundle`), but no board accepts it from the air.

This module knows the layout and the bytes that are signed; `board.mod_policy` decides whether a
tombstone is acceptable.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from board.bulletin import Tombstone
from board.errors import MalformedPacket
from board.signing import PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from board.wire.frame import NODE_BYTES, check_ring, is_node_id
from board.wire.keys import KEY_BYTES, bytes_to_id, id_to_bytes

#: target id, ring, author, deleted by, deleted_at, expires_at: the fields the signature covers.
_FIELDS = struct.Struct(f">{KEY_BYTES}sB{NODE_BYTES}s{NODE_BYTES}sII")
_BODY = struct.Struct(f">{_FIELDS.size}s{PUBLIC_KEY_BYTES}s{SIGNATURE_BYTES}s")
#: Domain separation: a board's signature on a tombstone is never one on a moderation, a member
#: record or a bundle.
_SIGNED_PREFIX = b"meshboard tombstone v1\x00"
_OPERATOR = bytes(NODE_BYTES)  # deleted_by on the air when a board operator deleted
UNSIGNED_BODY_BYTES = _FIELDS.size  # 33: 35 on the air, after the frame's header
TOMBSTONE_BODY_BYTES = _BODY.size  # 129: 131 on the air


@dataclass(frozen=True)
class SignedTombstone(Tombstone):
    """A deletion with the word of the board that made it: what the store keeps and sync sends.

    A plain `Tombstone` is one no board signed (made by a board without a key, kept from before
    tombstones were signed, or imported from a bundle that vouched for it): it deletes here, and
    other boards refuse it from the air.
    """

    board_key: bytes  # the signing board's Ed25519 public key
    signature: bytes


@dataclass(frozen=True)
class TombstoneMsg:
    """A deletion: what the store needs to delete the target and keep it deleted until it expires.

    `author` is the deleted bulletin's author (so a board that never held it can still list who
    posted it); `deleted_by` is who asked, or None for a board operator. `board_key` and
    `signature` are the signing board's, or both None for an unsigned tombstone.
    """

    target: bytes
    ring: int
    author: str
    deleted_by: str | None
    deleted_at: datetime
    expires_at: datetime
    board_key: bytes | None = None
    signature: bytes | None = None

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if len(self.target) != KEY_BYTES:
            raise MalformedPacket(f"tombstone target is {KEY_BYTES} bytes")
        for node in (self.author, self.deleted_by):
            if node is not None and not is_node_id(node):
                raise MalformedPacket(f"bad node id {node!r}")
        if self.deleted_by == "!00000000":
            raise MalformedPacket("node !00000000 cannot delete")
        for moment in (self.deleted_at, self.expires_at):
            if moment.tzinfo is None or not 0 < moment.timestamp() < 2**32:
                raise MalformedPacket("tombstone time out of range")
            if moment.microsecond:
                raise MalformedPacket("tombstone times are whole seconds")
        if self.board_key is None and self.signature is None:
            return  # unsigned: only a bundle may carry it (see the module's docstring)
        if (
            self.board_key is None
            or self.signature is None
            or len(self.board_key) != PUBLIC_KEY_BYTES
            or len(self.signature) != SIGNATURE_BYTES
        ):
            raise MalformedPacket("a tombstone carries a 32-byte key and a 64-byte signature")

    def signed_bytes(self) -> bytes:
        """What the deleting board signs: every field but the key and signature, with a tag."""
        return _SIGNED_PREFIX + _fields(self)

    @classmethod
    def of(cls, tombstone: Tombstone) -> TombstoneMsg:
        """The message for a stored tombstone: signed if the store kept a signature for it."""
        fields = (
            id_to_bytes(tombstone.bulletin_id),
            tombstone.ring,
            tombstone.author,
            tombstone.deleted_by,
            tombstone.deleted_at,
            tombstone.expires_at,
        )
        if isinstance(tombstone, SignedTombstone):
            return cls(*fields, board_key=tombstone.board_key, signature=tombstone.signature)
        return cls(*fields)

    def tombstone(self) -> Tombstone:
        """The deletion as the store keeps it (the target's id as a string, not as bytes)."""
        fields = (
            bytes_to_id(self.target),
            self.ring,
            self.author,
            self.deleted_by,
            self.deleted_at,
            self.expires_at,
        )
        if self.board_key is None or self.signature is None:
            return Tombstone(*fields)
        return SignedTombstone(*fields, board_key=self.board_key, signature=self.signature)


def signed_fields(tombstone: Tombstone) -> bytes:
    """The bytes a deleting board signs, with a domain tag: never a moderation or a bundle."""
    return TombstoneMsg.of(tombstone).signed_bytes()


def _fields(msg: TombstoneMsg) -> bytes:
    return _FIELDS.pack(
        msg.target,
        msg.ring,
        bytes.fromhex(msg.author[1:]),
        _OPERATOR if msg.deleted_by is None else bytes.fromhex(msg.deleted_by[1:]),
        int(msg.deleted_at.timestamp()),
        int(msg.expires_at.timestamp()),
    )


def encode_body(msg: TombstoneMsg) -> bytes:
    fields = _fields(msg)
    if msg.board_key is None or msg.signature is None:
        return fields
    return _BODY.pack(fields, msg.board_key, msg.signature)


def decode_body(body: bytes) -> TombstoneMsg:
    """A tombstone's body, signed (129 bytes) or not (33); MalformedPacket for anything else.
    The signature is not checked here: whom to trust depends on the configuration.
    """
    if len(body) == _BODY.size:
        fields, board_key, signature = _BODY.unpack(body)
    elif len(body) == _FIELDS.size:
        fields, board_key, signature = body, None, None
    else:
        raise MalformedPacket(
            f"tombstone is {len(body)} bytes; expected {_BODY.size} (or {_FIELDS.size} unsigned)"
        )
    target, ring, author, deleted_by, deleted_at, expires_at = _FIELDS.unpack(fields)
    if not deleted_at or not expires_at:
        raise MalformedPacket("tombstone time out of range")
    return TombstoneMsg(
        target=target,
        ring=ring,
        author="!" + author.hex(),
        deleted_by=None if deleted_by == _OPERATOR else "!" + deleted_by.hex(),
        deleted_at=datetime.fromtimestamp(deleted_at, UTC),
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        board_key=board_key,
        signature=signature,
    )
