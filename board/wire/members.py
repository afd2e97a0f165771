"""The Member message: a person joined or left a private ring, witnessed and signed by a board.

Since firmware 2.7.14 a direct message reaches the board PKI-encrypted on channel 0, whatever
ring the sender meant, so a ring can no longer be told from the channel of a direct message.
The ring's channel key is the invitation: a person shows they hold it by sending a command on
the ring's channel, and the board that hears it binds their node id to the public key its radio
holds for that node. Only that board saw the command, so it signs the record, and other boards
accept it from keys they trust for the ring, as they accept a moderation (docs/wire-format.md,
"9 Member"). A record expires MEMBERSHIP_LIFETIME after it was made; a member's own use renews
it before then (`board.handheld.membership`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from board.errors import MalformedPacket
from board.signing import PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from board.wire.frame import NODE_BYTES, check_ring, is_node_id
from board.wire.keys import KEY_BYTES

#: A Meshtastic node's Curve25519 public key (`User.public_key`, 32 bytes).
RADIO_KEY_BYTES = 32
#: ring, node, joined, at, expires_at, the node's radio key: the fields the signature covers.
_FIELDS = struct.Struct(f">B{NODE_BYTES}sBII{RADIO_KEY_BYTES}s")
_BODY = struct.Struct(f">{_FIELDS.size}s{PUBLIC_KEY_BYTES}s{SIGNATURE_BYTES}s")
_SIGNED_PREFIX = b"meshboard member v1\x00"
_KEY_SALT = b"meshboard member\x00"
MEMBER_BODY_BYTES = _BODY.size  # 142: 144 on the air, after the frame's header


@dataclass(frozen=True)
class MemberMsg:
    """One person's latest word on one ring: joined (bound to `radio_key`) or left."""

    ring: int
    node: str  # "!1234abcd"
    joined: bool
    at: datetime
    expires_at: datetime
    radio_key: bytes  # the node's public key as the witnessing board's radio held it
    board_key: bytes  # the witnessing board's Ed25519 public key
    signature: bytes

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if not is_node_id(self.node) or self.node in ("!00000000", "!ffffffff"):
            raise MalformedPacket(f"bad member id {self.node!r}")
        for moment in (self.at, self.expires_at):
            if moment.tzinfo is None or not 0 < moment.timestamp() < 2**32 or moment.microsecond:
                raise MalformedPacket("member times are whole seconds in 1970..2106")
        if self.expires_at <= self.at:
            raise MalformedPacket("a member record expires after it was made")
        if len(self.radio_key) != RADIO_KEY_BYTES:
            raise MalformedPacket(f"a member's radio key is {RADIO_KEY_BYTES} bytes")
        if len(self.board_key) != PUBLIC_KEY_BYTES or len(self.signature) != SIGNATURE_BYTES:
            raise MalformedPacket("a member record carries a 32-byte key and a 64-byte signature")

    def signed_bytes(self) -> bytes:
        return signed_fields(
            self.ring, self.node, self.joined, self.at, self.expires_at, self.radio_key
        )

    @property
    def key(self) -> bytes:
        """Its sync item key: one per signed record, never equal to another kind's."""
        return hashlib.sha256(_KEY_SALT + self.signature).digest()[:KEY_BYTES]

    def beats(self, other: MemberMsg) -> bool:
        """Later wins, then the higher signature: every board settles on the same record."""
        return (self.at, self.signature) > (other.at, other.signature)


def signed_fields(
    ring: int, node: str, joined: bool, at: datetime, expires_at: datetime, radio_key: bytes
) -> bytes:
    """The bytes a witnessing board signs, with a domain tag: never a bundle or a moderation."""
    return _SIGNED_PREFIX + _fields(ring, node, joined, at, expires_at, radio_key)


def _fields(
    ring: int, node: str, joined: bool, at: datetime, expires_at: datetime, radio_key: bytes
) -> bytes:
    return _FIELDS.pack(
        ring,
        bytes.fromhex(node[1:]),
        int(joined),
        int(at.timestamp()),
        int(expires_at.timestamp()),
        radio_key,
    )


def encode_body(msg: MemberMsg) -> bytes:
    fields = _fields(msg.ring, msg.node, msg.joined, msg.at, msg.expires_at, msg.radio_key)
    return _BODY.pack(fields, msg.board_key, msg.signature)


def decode_body(body: bytes) -> MemberMsg:
    """A member record's body; MalformedPacket for anything else (the signature and the
    witness's trust are checked by `board.mod_policy`, which needs the configuration)."""
    if len(body) != _BODY.size:
        raise MalformedPacket(f"member record is {len(body)} bytes; expected {_BODY.size}")
    fields, board_key, signature = _BODY.unpack(body)
    ring, node, joined, at, expires_at, radio_key = _FIELDS.unpack(fields)
    if joined not in (0, 1):
        raise MalformedPacket(f"member record's joined flag is {joined}")
    if not at or not expires_at:
        raise MalformedPacket("member times are whole seconds in 1970..2106")
    return MemberMsg(
        ring=ring,
        node="!" + node.hex(),
        joined=bool(joined),
        at=datetime.fromtimestamp(at, UTC),
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        radio_key=radio_key,
        board_key=board_key,
        signature=signature,
    )
