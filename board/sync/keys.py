"""Item keys: the 16-byte names that board-to-board sync compares.

A bulletin's key is its id as raw bytes. A tombstone gets a different key, hashed from the id it
deletes, so a board that holds a bulletin and one that holds its tombstone disagree in their
digests and reconcile: the tombstone then travels and deletes the bulletin.
"""

from __future__ import annotations

import base64
import hashlib

from board.refs import ALPHABET, ID_BYTES, ID_LENGTH

KEY_BYTES = ID_BYTES
BUCKET_COUNT = 16
_TOMBSTONE_SALT = b"meshboard tombstone\x00"
_TO_RFC4648 = str.maketrans(ALPHABET, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)


def id_to_bytes(bulletin_id: str) -> bytes:
    """The 16 raw bytes behind a 26-character Crockford base32 id."""
    if len(bulletin_id) != ID_LENGTH:
        raise ValueError(f"not a bulletin id: {bulletin_id!r}")
    return base64.b32decode(bulletin_id.translate(_TO_RFC4648) + "======")


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
