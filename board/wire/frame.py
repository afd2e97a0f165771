"""The frame every board-plane message travels in: the one root the wire's sizes derive from.

A payload is a two-byte header (magic/version, then the message kind) and the message's body, at
most MAX_BOARD_PAYLOAD bytes in all (docs/wire-format.md, "Header"). `board.wire.codec` frames
and dispatches every message, and it imports `board.wire.tools` and `board.wire.moderation`,
which define three of them; those need the header's size and the fields every message shares
too. So the root lives here, below all three: importing the codec from them would be a cycle,
and re-typing a size there lets it drift from the bytes the codec actually puts on air.
"""

from __future__ import annotations

import struct

from board.bulletin import MAX_RING
from board.errors import MalformedPacket

#: Magic nibble 0xB ("board"), format version 1.
MAGIC_VERSION = 0xB1
MAGIC = MAGIC_VERSION >> 4
VERSION = MAGIC_VERSION & 0x0F
#: Meshtastic's DATA_PAYLOAD_LEN: the most one packet's Data.payload can carry.
MAX_BOARD_PAYLOAD = 233
HEADER = struct.Struct(">BB")  # magic/version, kind
HEADER_BYTES = HEADER.size
#: The most a message's body may be: what one packet carries after the header.
MAX_BODY_BYTES = MAX_BOARD_PAYLOAD - HEADER_BYTES
#: A node id ("!a1b2c3d4") on the air: its 32-bit number.
NODE_BYTES = 4


def check_ring(ring: int) -> None:
    """Every message names its ring: a channel index, which fits the one byte it travels in."""
    if not 0 <= ring <= MAX_RING:
        raise MalformedPacket(f"ring {ring} is not a channel index 0..{MAX_RING}")


def is_node_id(node: str) -> bool:
    """Whether `node` is a node id as the board plane carries it: `!` and 8 hex digits."""
    return len(node) == 9 and node[0] == "!" and all(c in "0123456789abcdef" for c in node[1:])
