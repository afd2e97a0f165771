"""Set arithmetic for anti-entropy: digests of a key set, where two digests differ, inventories.

Pure functions over sets of 16-byte keys, so the engine only decides *when* to send and this
module decides *what*. Fingerprints are XORs of keys (keys are already hashes): order does not
matter and a board never needs to remember what it summarised before.
"""

from __future__ import annotations

from collections.abc import Iterable

from board.wire.codec import (
    FINGERPRINT_BYTES,
    MAX_INVENTORY_PREFIXES,
    PREFIX_BYTES,
    Digest,
    Inventory,
)
from board.wire.keys import BUCKET_COUNT, KEY_BYTES, bucket_of

ALL_BUCKETS = (1 << BUCKET_COUNT) - 1


def _xor(keys: Iterable[bytes]) -> int:
    total = 0
    for key in keys:
        total ^= int.from_bytes(key, "big")
    return total


def summarise(ring: int, keys: Iterable[bytes]) -> Digest:
    """The digest of a ring's active keys.

    The whole-set fingerprint is the low 8 bytes of the XOR of all keys; a bucket's is bytes 1 and 2
    of the XOR of its keys (byte 0 mostly names the bucket, so it carries little).
    """
    by_bucket: list[list[bytes]] = [[] for _ in range(BUCKET_COUNT)]
    count = 0
    for key in keys:
        by_bucket[bucket_of(key)].append(key)
        count += 1
    total = 0
    buckets = []
    for members in by_bucket:
        xor = _xor(members)
        total ^= xor
        buckets.append((xor >> (8 * (KEY_BYTES - 3))) & 0xFFFF)
    fingerprint = (total & ((1 << 8 * FINGERPRINT_BYTES) - 1)).to_bytes(FINGERPRINT_BYTES, "big")
    return Digest(ring, min(count, 0xFFFF), fingerprint, tuple(buckets))


def fold(digest: Digest, keys: Iterable[bytes]) -> Digest:
    """The digest with `keys` added (assuming it lacked them): XOR makes this cheap.

    Lets a board update its picture of a neighbour's set with what it heard the neighbour
    announce since its digest, before answering a difference that may already be gone.
    """
    added = list(keys)
    if not added:
        return digest
    extra = summarise(digest.ring, added)
    fingerprint = bytes(a ^ b for a, b in zip(digest.fingerprint, extra.fingerprint, strict=True))
    buckets = tuple(a ^ b for a, b in zip(digest.buckets, extra.buckets, strict=True))
    return Digest(digest.ring, min(digest.count + extra.count, 0xFFFF), fingerprint, buckets)


def consistent(ours: Digest, theirs: Digest) -> bool:
    return (ours.count, ours.fingerprint) == (theirs.count, theirs.fingerprint)


def differing(ours: Digest, theirs: Digest) -> int:
    """Bitmask of buckets that differ; every bucket if the sets differ but no bucket shows it."""
    if consistent(ours, theirs):
        return 0
    mask = 0
    for index, (a, b) in enumerate(zip(ours.buckets, theirs.buckets, strict=True)):
        if a != b:
            mask |= 1 << index
    return mask or ALL_BUCKETS


def prefix(key: bytes) -> bytes:
    return key[:PREFIX_BYTES]


def inventories(ring: int, keys: Iterable[bytes], mask: int) -> list[Inventory]:
    """Complete listings of our keys in the masked buckets, in as few packets as fit.

    Whole buckets are packed together while they fit; a bucket too big for one packet is listed
    in several packets, each for a range of the first two key bytes.
    """
    by_bucket: dict[int, list[bytes]] = {}
    for key in keys:
        bucket = bucket_of(key)
        if mask >> bucket & 1:
            by_bucket.setdefault(bucket, []).append(prefix(key))
    result: list[Inventory] = []
    packed_mask, packed = 0, list[bytes]()
    for bucket in range(BUCKET_COUNT):
        if not mask >> bucket & 1:
            continue
        members = sorted(set(by_bucket.get(bucket, [])))
        if len(members) > MAX_INVENTORY_PREFIXES:
            result.extend(_split_bucket(ring, bucket, members))
            continue
        if len(packed) + len(members) > MAX_INVENTORY_PREFIXES:
            result.append(Inventory(ring, packed_mask, tuple(sorted(packed))))
            packed_mask, packed = 0, []
        packed_mask |= 1 << bucket
        packed.extend(members)
    if packed_mask:
        result.append(Inventory(ring, packed_mask, tuple(sorted(packed))))
    return result


def _split_bucket(ring: int, bucket: int, members: list[bytes]) -> list[Inventory]:
    """Pages of one oversized bucket, each ending where the first two key bytes change."""
    pages = []
    low = bucket << 12
    start = 0
    while start < len(members):
        end = min(start + MAX_INVENTORY_PREFIXES, len(members))
        if end < len(members):
            # Back off so that keys sharing their first two bytes stay on one page.
            cut = end
            while cut > start + 1 and members[cut][:2] == members[cut - 1][:2]:
                cut -= 1
            if members[cut][:2] != members[cut - 1][:2]:
                end = cut
            high = int.from_bytes(members[end - 1][:2], "big")
            while end < len(members) and members[end][:2] == members[end - 1][:2]:
                end += 1  # only with >56 keys sharing 16 bits: list what fits, skip the rest
            page = members[start : start + MAX_INVENTORY_PREFIXES]
            page = [p for p in page if int.from_bytes(p[:2], "big") <= high]
        else:
            high = (bucket << 12) | 0x0FFF
            page = members[start:end]
        pages.append(Inventory(ring, 1 << bucket, tuple(page), low, high))
        low, start = high + 1, end
    return pages
