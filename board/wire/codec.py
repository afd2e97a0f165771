"""The board-plane codec: nine small binary messages, each within one Meshtastic packet.

Airtime is the scarce resource (≈1 kbit/s on LongFast), so every field is fixed-width binary and
nothing is sent that the receiver can derive. Every payload starts with MAGIC_VERSION so another
private app's traffic, or a future version, is recognised and dropped. `decode` validates
everything that arrives and raises only ForeignPacket or MalformedPacket; whatever it returns
re-encodes to the same bytes. The header and the sizes every message derives from are
`board.wire.frame`'s; docs/wire-format.md lays out every field.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from board.bulletin import Bulletin
from board.errors import ForeignPacket, MalformedBulletin, MalformedPacket
from board.wire import members, tombstone
from board.wire.frame import HEADER, MAX_BODY_BYTES, NODE_BYTES, check_ring
from board.wire.frame import HEADER_BYTES as HEADER_BYTES
from board.wire.frame import MAGIC as MAGIC
from board.wire.frame import MAGIC_VERSION as MAGIC_VERSION
from board.wire.frame import MAX_BOARD_PAYLOAD as MAX_BOARD_PAYLOAD
from board.wire.frame import VERSION as VERSION
from board.wire.frame import is_node_id as is_node_id
from board.wire.keys import BUCKET_COUNT, bucket_of
from board.wire.members import MemberMsg
from board.wire.moderation import ModerationMsg, decode_body, encode_body
from board.wire.tombstone import TombstoneMsg as TombstoneMsg
from board.wire.tools import AskMsg, ToolStateMsg

PREFIX_BYTES = 4
FINGERPRINT_BYTES = 8

_DIGEST = struct.Struct(f">BH{FINGERPRINT_BYTES}s{BUCKET_COUNT}H")
_INVENTORY = struct.Struct(">BHHH")  # ring, bucket mask, range low, range high

MAX_ANNOUNCE_BULLETIN = MAX_BODY_BYTES
MAX_INVENTORY_PREFIXES = (MAX_BODY_BYTES - _INVENTORY.size) // PREFIX_BYTES
MAX_REQUEST_PREFIXES = (MAX_BODY_BYTES - 1) // PREFIX_BYTES  # after the ring byte
#: Neighbours one digest may ask to answer: enough for a neighbourhood, and it stays short.
MAX_DIGEST_ASKS = 8
DIGEST_BYTES = HEADER_BYTES + _DIGEST.size  # without asks
#: An unsigned tombstone (a bundle's from before signatures): the size the relay flood weighs
#: every item but a bulletin by (`board.sync.flood`), which are all relayed, never held back.
TOMBSTONE_BYTES = HEADER_BYTES + tombstone.UNSIGNED_BODY_BYTES
#: A signed tombstone, as sync sends it (131 bytes).
SIGNED_TOMBSTONE_BYTES = HEADER_BYTES + tombstone.TOMBSTONE_BODY_BYTES


class Kind(IntEnum):
    ANNOUNCE = 1
    TOMBSTONE = 2  # board/wire/tombstone.py
    DIGEST = 3
    INVENTORY = 4
    REQUEST = 5
    TOOL_STATE = 6
    ASK = 7
    MODERATION = 8  # board/wire/moderation.py
    MEMBER = 9  # board/wire/members.py


def _check_prefixes(prefixes: tuple[bytes, ...], most: int) -> None:
    if len(prefixes) > most:
        raise MalformedPacket(f"{len(prefixes)} key prefixes; at most {most}")
    if any(len(p) != PREFIX_BYTES for p in prefixes):
        raise MalformedPacket(f"key prefixes are {PREFIX_BYTES} bytes")
    if any(a >= b for a, b in itertools.pairwise(prefixes)):
        raise MalformedPacket("key prefixes must be sorted and distinct")


@dataclass(frozen=True)
class Announce:
    """One bulletin in its canonical encoding: the id is its hash, so it needs nothing else."""

    bulletin_bytes: bytes

    def bulletin(self) -> Bulletin:
        try:
            return Bulletin.from_canonical_bytes(self.bulletin_bytes)
        except MalformedBulletin as exc:
            raise MalformedPacket(str(exc)) from exc

    @property
    def ring(self) -> int:
        """The ring field of the canonical encoding (its second byte), without a full decode."""
        if len(self.bulletin_bytes) < 2:
            raise MalformedPacket("announce is truncated")
        return self.bulletin_bytes[1]

    @classmethod
    def of(cls, bulletin: Bulletin) -> Announce:
        return cls(bulletin.canonical_bytes())


@dataclass(frozen=True)
class Digest:
    """A ring's active item set in 43 bytes: count, whole-set fingerprint, 16 bucket fingerprints.

    A mismatch in a bucket's fingerprint tells the receiver *where* the sets differ, so the answer
    (an Inventory) lists only those buckets' keys instead of the whole ring.

    `asks` names neighbours (node ids, 4 bytes each on air) that the sender has not heard show
    an item it sent them: each one that agrees answers with its own digest, so a relay lost in
    a collision costs one answer instead of repeated digests that agreeing boards ignore.
    """

    ring: int
    count: int
    fingerprint: bytes
    buckets: tuple[int, ...]
    asks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if not 0 <= self.count <= 0xFFFF:
            raise MalformedPacket(f"digest count {self.count} out of range")
        if len(self.fingerprint) != FINGERPRINT_BYTES:
            raise MalformedPacket(f"digest fingerprint is {FINGERPRINT_BYTES} bytes")
        if len(self.buckets) != BUCKET_COUNT or not all(0 <= b <= 0xFFFF for b in self.buckets):
            raise MalformedPacket(f"a digest has {BUCKET_COUNT} 16-bit bucket fingerprints")
        if len(self.asks) > MAX_DIGEST_ASKS:
            raise MalformedPacket(f"a digest asks at most {MAX_DIGEST_ASKS} neighbours")
        if not all(is_node_id(node) for node in self.asks) or "!00000000" in self.asks:
            raise MalformedPacket("a digest asks by node id")
        if any(a >= b for a, b in itertools.pairwise(self.asks)):
            raise MalformedPacket("a digest's asks must be sorted and distinct")


@dataclass(frozen=True)
class Inventory:
    """Every active key the sender holds in the masked buckets whose first two bytes lie in
    [low, high], as 4-byte prefixes: a complete listing, so the receiver can both request what it
    lacks and push what the sender lacks.
    """

    ring: int
    mask: int
    prefixes: tuple[bytes, ...]
    low: int = 0x0000
    high: int = 0xFFFF

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if not 0 < self.mask <= 0xFFFF:
            raise MalformedPacket("an inventory covers at least one bucket")
        if not 0 <= self.low <= self.high <= 0xFFFF:
            raise MalformedPacket("bad inventory range")
        _check_prefixes(self.prefixes, MAX_INVENTORY_PREFIXES)
        for prefix in self.prefixes:
            if not self.covers(prefix):
                raise MalformedPacket("inventory key outside its buckets")

    def covers(self, key_or_prefix: bytes) -> bool:
        """Whether this listing speaks for a key (it is in a masked bucket and the range)."""
        first_two = int.from_bytes(key_or_prefix[:2], "big")
        in_bucket = bool(self.mask >> bucket_of(key_or_prefix) & 1)
        return in_bucket and self.low <= first_two <= self.high


@dataclass(frozen=True)
class Request:
    """Please announce the items whose keys start with these prefixes (on this ring)."""

    ring: int
    key_prefixes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if not self.key_prefixes:
            raise MalformedPacket("a request names at least one key")
        _check_prefixes(self.key_prefixes, MAX_REQUEST_PREFIXES)


Message = (
    Announce
    | TombstoneMsg
    | Digest
    | Inventory
    | Request
    | ToolStateMsg
    | AskMsg
    | ModerationMsg
    | MemberMsg
)


def kind_of(msg: Message) -> Kind:
    kinds: dict[type[Message], Kind] = {
        Announce: Kind.ANNOUNCE,
        TombstoneMsg: Kind.TOMBSTONE,
        Digest: Kind.DIGEST,
        Inventory: Kind.INVENTORY,
        Request: Kind.REQUEST,
        ToolStateMsg: Kind.TOOL_STATE,
        AskMsg: Kind.ASK,
        ModerationMsg: Kind.MODERATION,
        MemberMsg: Kind.MEMBER,
    }
    return kinds[type(msg)]


def encode(msg: Message) -> bytes:
    """The payload for one packet; raises MalformedPacket rather than exceed MAX_BOARD_PAYLOAD."""
    body: bytes
    match msg:
        case Announce(bulletin_bytes=data):
            body = data
        case TombstoneMsg():
            body = tombstone.encode_body(msg)
        case Digest():
            asks = b"".join(bytes.fromhex(node[1:]) for node in msg.asks)
            body = _DIGEST.pack(msg.ring, msg.count, msg.fingerprint, *msg.buckets) + asks
        case Inventory():
            header = _INVENTORY.pack(msg.ring, msg.mask, msg.low, msg.high)
            body = header + b"".join(msg.prefixes)
        case Request():
            body = bytes([msg.ring]) + b"".join(msg.key_prefixes)
        case ToolStateMsg() | AskMsg():
            body = msg.body()
        case ModerationMsg():
            body = encode_body(msg)
        case MemberMsg():
            body = members.encode_body(msg)
    payload = HEADER.pack(MAGIC_VERSION, kind_of(msg)) + body
    if len(payload) > MAX_BOARD_PAYLOAD:
        raise MalformedPacket(f"{len(payload)}-byte payload; at most {MAX_BOARD_PAYLOAD}")
    return payload


def decode(payload: bytes) -> Message:
    """The message in a board-plane payload; raises ForeignPacket or MalformedPacket only."""
    if not payload:
        raise ForeignPacket("empty payload")
    if payload[0] >> 4 != MAGIC:
        raise ForeignPacket(f"not a board-plane packet (first byte 0x{payload[0]:02x})")
    if payload[0] != MAGIC_VERSION:
        raise ForeignPacket(f"board-plane version {payload[0] & 0x0F}; this board speaks {VERSION}")
    if len(payload) > MAX_BOARD_PAYLOAD:
        raise MalformedPacket(f"{len(payload)}-byte payload; at most {MAX_BOARD_PAYLOAD}")
    if len(payload) < HEADER_BYTES:
        raise MalformedPacket("payload has no message kind")
    try:
        kind = Kind(payload[1])
    except ValueError:
        raise MalformedPacket(f"unknown message kind {payload[1]}") from None
    body = payload[HEADER_BYTES:]
    decoders: dict[Kind, Callable[[bytes], Message]] = {
        Kind.ANNOUNCE: _decode_announce,
        Kind.TOMBSTONE: tombstone.decode_body,
        Kind.DIGEST: _decode_digest,
        Kind.INVENTORY: _decode_inventory,
        Kind.REQUEST: _decode_request,
        Kind.TOOL_STATE: ToolStateMsg.from_body,
        Kind.ASK: AskMsg.from_body,
        Kind.MODERATION: decode_body,
        Kind.MEMBER: members.decode_body,
    }
    return decoders[kind](body)


def _exact(body: bytes, layout: struct.Struct, name: str) -> None:
    if len(body) != layout.size:
        raise MalformedPacket(f"{name} is {len(body)} bytes; expected {layout.size}")


def _split_prefixes(data: bytes) -> tuple[bytes, ...]:
    if len(data) % PREFIX_BYTES:
        raise MalformedPacket(f"key prefixes are {PREFIX_BYTES} bytes each")
    return tuple(data[i : i + PREFIX_BYTES] for i in range(0, len(data), PREFIX_BYTES))


def _decode_announce(body: bytes) -> Announce:
    announce = Announce(body)
    announce.bulletin()  # validates: only canonical bulletins get past the edge
    return announce


def _decode_digest(body: bytes) -> Digest:
    tail = body[_DIGEST.size :]
    if len(body) < _DIGEST.size or len(tail) % NODE_BYTES:
        raise MalformedPacket(
            f"digest is {len(body)} bytes; expected {_DIGEST.size} + {NODE_BYTES} per ask"
        )
    ring, count, fingerprint, *buckets = _DIGEST.unpack(body[: _DIGEST.size])
    asks = tuple("!" + tail[i : i + NODE_BYTES].hex() for i in range(0, len(tail), NODE_BYTES))
    return Digest(ring, count, fingerprint, tuple(buckets), asks)


def _decode_inventory(body: bytes) -> Inventory:
    if len(body) < _INVENTORY.size:
        raise MalformedPacket("inventory is truncated")
    ring, mask, low, high = _INVENTORY.unpack_from(body)
    prefixes = _split_prefixes(body[_INVENTORY.size :])
    return Inventory(ring, mask, prefixes, low, high)


def _decode_request(body: bytes) -> Request:
    if not body:
        raise MalformedPacket("request is truncated")
    return Request(body[0], _split_prefixes(body[1:]))
