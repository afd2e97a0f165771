"""Board-plane messages of the tool library: a tool's state, and a request for its owner.

Kept apart from `board.wire.codec` (which frames and dispatches them) so that the tool library's
bytes are read in one place. Both decoders raise only MalformedPacket, and whatever they return
re-encodes to the same bytes; docs/wire-format.md lays the fields out.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from board.bulletin import is_control
from board.errors import MalformedPacket
from board.wire.frame import HEADER_BYTES, NODE_BYTES, check_ring, is_node_id
from board.wire.keys import KEY_BYTES

#: A borrower is a name or a few words ("Ben", "the Smiths"): enough to find the tool again.
MAX_BORROWER_BYTES = 20
#: An ask's words travel to the owner inside a 200-byte text with the ref, tool and asker.
MAX_ASK_BYTES = 80
#: Boards an ask may cross after the first: a neighbourhood is a few board hops wide.
MAX_ASK_HOPS = 4

_STATE = struct.Struct(f">{KEY_BYTES}sBBII")  # target, ring, flags, stamp, until (0 = none)
_ASK = struct.Struct(f">{KEY_BYTES}sB{NODE_BYTES}sB")  # target, ring, asker, hops left
_LENT = 0x01
_STATE_SALT = b"meshboard tool state\x00"


def _check_words(text: str, most: int, what: str) -> None:
    """Short printable text on one line, exactly as a board would have stored it."""
    if len(text.encode("utf-8")) > most:
        raise MalformedPacket(f"{what} is over {most} bytes")
    if text != text.strip() or any(is_control(c) or c in "\n\t\ufffd" for c in text):
        raise MalformedPacket(f"{what} is not one trimmed printable line")


def _decode_words(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not UTF-8") from None


@dataclass(frozen=True)
class ToolStateMsg:
    """The owner's latest word on a tool: lent (to whom, until when) or free.

    `stamp` is when the owner said it (unix seconds, by the board that heard them; never
    earlier than the state it replaces). The newest stamp wins; equal stamps are ordered by the
    encoded bytes, so every board picks the same winner whatever order it hears them in.
    """

    target: bytes
    ring: int
    lent: bool
    stamp: int
    until: int = 0  # unix seconds; 0 = no date given
    borrower: str = ""

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if len(self.target) != KEY_BYTES:
            raise MalformedPacket(f"tool state target is {KEY_BYTES} bytes")
        if not 0 < self.stamp < 2**32 or not 0 <= self.until < 2**32:
            raise MalformedPacket("tool state time out of range")
        _check_words(self.borrower, MAX_BORROWER_BYTES, "borrower")
        if not self.lent and (self.borrower or self.until):
            raise MalformedPacket("a free tool has no borrower and no date")

    def body(self) -> bytes:
        flags = _LENT if self.lent else 0
        fixed = _STATE.pack(self.target, self.ring, flags, self.stamp, self.until)
        return fixed + self.borrower.encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> ToolStateMsg:
        if len(body) < _STATE.size:
            raise MalformedPacket(f"tool state is {len(body)} bytes; at least {_STATE.size}")
        target, ring, flags, stamp, until = _STATE.unpack_from(body)
        if flags & ~_LENT:
            raise MalformedPacket(f"unknown tool state flags 0x{flags:02x}")
        borrower = _decode_words(body[_STATE.size :], "borrower")
        return cls(target, ring, bool(flags & _LENT), stamp, until, borrower)

    def version(self) -> tuple[int, bytes]:
        """What last-writer-wins compares: the larger version is the owner's latest word."""
        return self.stamp, self.body()

    def item_key(self) -> bytes:
        """The key sync compares: it changes with every new state, so boards holding different
        states of one tool disagree in their digests and reconcile.
        """
        return hashlib.sha256(_STATE_SALT + self.body()).digest()[:KEY_BYTES]


@dataclass(frozen=True)
class AskMsg:
    """Someone on this ring asks a tool's owner about it: a board that hears the owner delivers.

    `hops` counts down at every board that passes it on, so an ask nobody can deliver dies out.
    """

    target: bytes
    ring: int
    asker: str  # node id "!a1b2c3d4"
    hops: int
    text: str = ""

    def __post_init__(self) -> None:
        check_ring(self.ring)
        if len(self.target) != KEY_BYTES:
            raise MalformedPacket(f"ask target is {KEY_BYTES} bytes")
        if not is_node_id(self.asker):
            raise MalformedPacket(f"bad asker {self.asker!r}")
        if self.asker == "!00000000":
            raise MalformedPacket("node !00000000 cannot ask")
        if not 0 <= self.hops <= MAX_ASK_HOPS:
            raise MalformedPacket(f"an ask crosses at most {MAX_ASK_HOPS} boards")
        _check_words(self.text, MAX_ASK_BYTES, "ask text")

    def body(self) -> bytes:
        fixed = _ASK.pack(self.target, self.ring, bytes.fromhex(self.asker[1:]), self.hops)
        return fixed + self.text.encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> AskMsg:
        if len(body) < _ASK.size:
            raise MalformedPacket(f"ask is {len(body)} bytes; at least {_ASK.size}")
        target, ring, asker, hops = _ASK.unpack_from(body)
        text = _decode_words(body[_ASK.size :], "ask text")
        return cls(target, ring, "!" + asker.hex(), hops, text)

    def dedupe_key(self) -> tuple[bytes, str, str]:
        """The same question, however many boards pass it on."""
        return self.target, self.asker, self.text


TOOL_STATE_BYTES = HEADER_BYTES + _STATE.size  # with the board-plane header, before the borrower
ASK_BYTES = HEADER_BYTES + _ASK.size  # with the board-plane header, before the words
