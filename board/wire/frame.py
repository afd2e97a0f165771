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
#: The most a LoRa frame holds, and the firmware's own header in it (`src/mesh/RadioInterface.h`
#: MAX_LORA_PAYLOAD_LEN, MESHTASTIC_HEADER_LENGTH; firmware v2.7.26).
MAX_LORA_FRAME = 255
MESHTASTIC_HEADER = 16
#: What the encoded `Data` adds around a board-plane payload of about 230 bytes: port 384 (a tag
#: and a two-byte varint), the payload's tag and two-byte length, and the 2-byte `bitfield` the
#: firmware sets on every packet it originates (`Router.cpp` perhapsEncode, `isFromUs`).
DATA_OVERHEAD = 3 + 3 + 2
#: The most one board-plane packet's payload may be: header plus encoded Data over 255 bytes is
#: refused as TOO_LARGE (`perhapsEncode`), so this is 231, two bytes under the 233 of
#: DATA_PAYLOAD_LEN that the protobuf would allow.
MAX_BOARD_PAYLOAD = MAX_LORA_FRAME - MESHTASTIC_HEADER - DATA_OVERHEAD
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
