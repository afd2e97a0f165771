"""Bulletin identity: a hash of the canonical encoding, and the short reference people type.

Because the id derives from content, the same bulletin has the same id and short ref on every
board node, with no coordination.
"""

from __future__ import annotations

import base64
import hashlib

from board.errors import NotFound

#: Crockford's base32 alphabet: no i, l, o, u, so a ref read aloud or typed on a tiny keyboard
#: survives the common mix-ups.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_BYTES = 16
ID_LENGTH = 26  # ceil(16 * 8 / 5)
REF_LENGTH = 4
MIN_REF_LENGTH = 2
#: How many candidates an ambiguous ref reports (they must fit one reply packet).
MAX_MATCHES = 5

_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)
_LOOK_ALIKES = str.maketrans("ilo", "110")


def bulletin_id(canonical: bytes) -> str:
    """First 16 bytes of sha256, in lowercase Crockford base32 (26 characters)."""
    digest = hashlib.sha256(canonical).digest()[:ID_BYTES]
    return base64.b32encode(digest).decode("ascii").rstrip("=").translate(_FROM_RFC4648)


def short_ref(bulletin_id: str) -> str:
    """The few characters a person types to name a bulletin."""
    return bulletin_id[:REF_LENGTH]


def normalise_ref(typed: str) -> str:
    """Turn what a person typed (`#A3FO`) into an id prefix (`a3f0`), or raise NotFound."""
    ref = typed.strip().removeprefix("#").lower().translate(_LOOK_ALIKES)
    if len(ref) < MIN_REF_LENGTH or len(ref) > ID_LENGTH or any(c not in ALPHABET for c in ref):
        raise NotFound(f"no bulletin #{typed.strip().removeprefix('#')}")
    return ref


def distinct_refs(ids: list[str], typed: str) -> list[str]:
    """The shortest prefix of each id, longer than what was typed, that the others do not share:
    what an ambiguous ref offers a person to type instead."""
    refs = []
    for this in ids:
        length = max(len(typed) + 1, REF_LENGTH)
        while length < ID_LENGTH and any(o[:length] == this[:length] for o in ids if o != this):
            length += 1
        refs.append(this[:length])
    return refs
