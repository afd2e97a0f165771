"""Item keys: the 16-byte names that board-to-board sync compares.

A bulletin's key is its id as raw bytes. A tombstone gets a different key, hashed from the id it
deletes, so a board that holds a bulletin and one that holds its tombstone disagree in their
digests and reconcile: the tombstone then travels and deletes the bulletin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from board.refs import ALPHABET, ID_BYTES, ID_LENGTH

KEY_BYTES = ID_BYTES
BUCKET_COUNT = 16
_TOMBSTONE_SALT = b"meshboard tombstone\x00"
_TO_BASE32HEX = str.maketrans(ALPHABET, "0123456789abcdefghijklmnopqrstuv")  # int(x, 32)'s digits
_ID = re.compile(f"[{ALPHABET}]{{{ID_LENGTH}}}")
_IDS = re.compile(f"[{ALPHABET}]*")
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)


def id_to_bytes(bulletin_id: str) -> bytes:
    """The 16 raw bytes behind a 26-character Crockford base32 id.

    Sync turns every id of a ring into its key when it reads the store (100,000 at a time on a
    busy board), so this avoids `base64.b32decode`, which is pure Python and 20 times slower:
    26 base32 digits are the id's 128 bits and two bits of padding.
    """
    if _ID.fullmatch(bulletin_id) is None:
        raise ValueError(f"not a bulletin id: {bulletin_id!r}")
    return (int(bulletin_id.translate(_TO_BASE32HEX), 32) >> 2).to_bytes(ID_BYTES, "big")


def ids_to_keys(ids: Sequence[str]) -> list[bytes]:
    """`id_to_bytes` of many ids at once, checked and translated in one pass: twice as fast
    when sync reads a busy ring's ids (44,000 in 50 ms instead of 110 ms).
    """
    joined = "".join(ids)
    if any(len(i) != ID_LENGTH for i in ids) or _IDS.fullmatch(joined) is None:
        raise ValueError("not all bulletin ids")
    digits = joined.translate(_TO_BASE32HEX)
    return [
        (int(digits[start : start + ID_LENGTH], 32) >> 2).to_bytes(ID_BYTES, "big")
        for start in range(0, len(digits), ID_LENGTH)
    ]


def bytes_to_id(raw: bytes) -> str:
    """The id string for 16 raw bytes (the inverse of `id_to_bytes`)."""
    if len(raw) != ID_BYTES:
        raise ValueError(f"an id is {ID_BYTES} bytes, not {len(raw)}")
    return base64.b32encode(raw).decode("ascii").rstrip("=").translate(_FROM_RFC4648)


def bulletin_key(bulletin_id: str) -> bytes:
    return id_to_bytes(bulletin_id)


def tombstone_key(bulletin_id: str) -> bytes:
    """Never equal to any bulletin key, and the same on every board for the same deletion."""
    return hashlib.sha256(_TOMBSTONE_SALT + id_to_bytes(bulletin_id)).digest()[:KEY_BYTES]


def bucket_of(key_or_prefix: bytes) -> int:
    """Digest bucket: the top four bits of the key, so a prefix alone names its bucket."""
    return key_or_prefix[0] >> 4
