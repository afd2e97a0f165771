"""Every board-plane message's bytes on the air and its airtime, counted exactly.

    python bench/sizes.py

A board-plane packet on the air is the 16-byte Meshtastic header and the channel-encrypted
`Data` protobuf (AES-CTR keeps its length), whose bytes around our payload are counted here
from the protobuf itself, not guessed: the port's tag and varint (384 takes 2 bytes: 3), the
payload's tag and length varint (2, or 3 from 128 bytes of payload), and the `bitfield` the
firmware sets on everything a node originates (tag and a one-byte varint: 2;
`perhapsEncode` in src/mesh/Router.cpp, which `Router::send` calls, v2.7.26). Each row is
checked against the simulator's own count of a real `MeshPacket`
(`node.sim.lora.on_air_bytes`) and against `board.airtime.estimate_airtime`, which the airtime
budget uses. Writes bench/results/sizes.json and prints the table of
docs/wire-format.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from meshtastic.protobuf import mesh_pb2

from board.airtime import data_bytes, estimate_airtime
from board.bulletin import new_bulletin
from board.types import TypeRegistry
from board.wire.codec import (
    DIGEST_BYTES,
    MAX_BOARD_PAYLOAD,
    SIGNED_TOMBSTONE_BYTES,
    TOMBSTONE_BYTES,
    Announce,
    Inventory,
    Request,
    encode,
)
from board.wire.members import MEMBER_BODY_BYTES
from board.wire.moderation import MODERATION_BODY_BYTES
from node.link import BOARD_PORT
from node.sim import lora

RESULTS = Path(__file__).parent / "results"
HEADER = 2  # the board plane's own frame header (magic and kind), in every payload


def announce(text: str) -> int:
    bulletin = new_bulletin(
        TypeRegistry(), type="meal", text=text, author="!5b0a0001", ring=0, now=datetime.now(UTC)
    )
    return len(encode(Announce(bulletin.canonical_bytes())))


def rows() -> list[tuple[str, int]]:
    key = bytes(4)
    return [
        ("Request, 1 key", len(encode(Request(0, (key,))))),
        (
            "Inventory, 3 keys",
            len(encode(Inventory(0, 1, (b"\0\0\0\1", b"\0\0\0\2", b"\0\0\0\3")))),
        ),
        ("Tombstone, unsigned (refused on the air)", TOMBSTONE_BYTES),
        ("Announce, meal with 24 bytes of text", announce("Soup at the hall, 7 pm!!")),
        ("Digest", DIGEST_BYTES),
        ("Announce, meal with 100 bytes of text", announce("x" * 100)),
        ("Moderation", HEADER + MODERATION_BODY_BYTES),
        ("Tombstone", SIGNED_TOMBSTONE_BYTES),
        ("Member", HEADER + MEMBER_BODY_BYTES),
        ("Any message, full", MAX_BOARD_PAYLOAD),
    ]


def on_air(payload_bytes: int) -> int:
    """What the simulator counts for a real packet of this payload, bitfield included."""
    packet = mesh_pb2.MeshPacket(
        decoded=mesh_pb2.Data(portnum=BOARD_PORT, payload=bytes(payload_bytes), bitfield=1)
    )
    return lora.on_air_bytes(packet)


def main() -> None:
    table = []
    for name, payload in rows():
        data = data_bytes(payload, BOARD_PORT)
        air = lora.MESHTASTIC_HEADER_LEN + data
        if air != on_air(payload):
            raise SystemExit(f"{name}: counted {air} bytes, the protobuf says {on_air(payload)}")
        table.append(
            {
                "message": name,
                "payload_bytes": payload,
                "data_overhead_bytes": data - payload,
                "on_air_bytes": air,
                "long_fast_s": round(estimate_airtime(payload, port=BOARD_PORT), 3),
                "medium_fast_s": round(
                    estimate_airtime(payload, "MEDIUM_FAST", port=BOARD_PORT), 3
                ),
            }
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sizes.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    print("| message | payload | Data around it | on air | LongFast | MediumFast |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print(
            f"| {row['message']} | {row['payload_bytes']} | {row['data_overhead_bytes']} | "
            f"{row['on_air_bytes']} | {row['long_fast_s']:.2f} s | {row['medium_fast_s']:.2f} s |"
        )


if __name__ == "__main__":
    main()
