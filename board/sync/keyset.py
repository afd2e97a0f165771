"""A ring's bulletin keys, packed 16 bytes to a key, because sync holds every one it serves.

Sync compares whole key sets, so it keeps each served ring's active bulletin keys in memory. On a
board holding 100,000 bulletins a dict of `bytes` keys cost about 100 bytes a key (8.6 MiB for
three rings) and its twin set of keys seen as much again; packed, a key costs its 16 bytes.

The keys read from the store sit in one buffer in ascending order and are found by bisection.
Keys stored one by one since that read (a flood's bulletins) wait in a small dict until the
next read of the store replaces the whole set.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from board.wire.keys import KEY_BYTES


class KeySet:
    """A set of 16-byte keys: the ones read from the store, packed, and the few added since."""

    __slots__ = ("_added", "_count", "_packed")

    def __init__(self, packed: bytes = b"") -> None:
        """`packed`: keys in ascending order, end to end (see `from_sorted`)."""
        if len(packed) % KEY_BYTES:
            raise ValueError(f"{len(packed)} bytes is not a whole number of {KEY_BYTES}-byte keys")
        self._packed = packed
        self._count = len(packed) // KEY_BYTES
        self._added: dict[bytes, None] = {}  # a dict, so iteration keeps the order of adding

    @classmethod
    def from_sorted(cls, runs: Iterable[bytes]) -> KeySet:
        """Keys from runs of packed keys that together are in ascending order.

        Raises ValueError if they are not: bisection would then miss keys that are there.
        """
        keys = cls(b"".join(runs))
        if not keys._ascending():
            raise ValueError("keys are not in ascending order")
        return keys

    def _key(self, index: int) -> bytes:
        start = index * KEY_BYTES
        return self._packed[start : start + KEY_BYTES]

    def _ascending(self) -> bool:
        packed, step = self._packed, KEY_BYTES
        return all(
            packed[i - step : i] < packed[i : i + step] for i in range(step, len(packed), step)
        )

    def _index(self, key: bytes) -> int | None:
        """Where `key` sits in the packed buffer, or None if it is not there."""
        index = bisect_left(range(self._count), key, key=self._key)
        return index if index < self._count and self._key(index) == key else None

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            return False
        return key in self._added or self._index(key) is not None

    def __len__(self) -> int:
        return self._count + len(self._added)

    def __iter__(self) -> Iterator[bytes]:
        """The packed keys in ascending order, then the added ones in the order they came."""
        packed, step = self._packed, KEY_BYTES
        for start in range(0, len(packed), step):
            yield packed[start : start + step]
        yield from self._added

    def add(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a key is {KEY_BYTES} bytes, not {len(key)}")
        if key not in self:
            self._added[key] = None

    def discard_all(self, keys: Iterable[bytes]) -> None:
        """Remove `keys` (any not here are ignored) in one pass over the buffer: a batch of
        bulletins that expired, without reading the ring again.
        """
        gone = set()
        for key in keys:
            if key in self._added:
                del self._added[key]
                continue
            index = self._index(key)
            if index is not None:
                gone.add(index)
        if not gone:
            return
        kept, start = [], 0
        for index in sorted(gone):
            kept.append(self._packed[start * KEY_BYTES : index * KEY_BYTES])
            start = index + 1
        kept.append(self._packed[start * KEY_BYTES :])
        self._packed = b"".join(kept)
        self._count -= len(gone)

    def not_in(self, other: KeySet) -> Iterator[bytes]:
        """Keys here that `other` lacks, without building a set of either.

        Two reads of the store are mostly the same keys: the packed parts are walked side by
        side, and when they are equal byte for byte (nothing came or went) not walked at all.
        """
        if self._packed != other._packed:
            theirs, step = other._packed, KEY_BYTES
            j = 0
            for start in range(0, len(self._packed), step):
                key = self._packed[start : start + step]
                while j < len(theirs) and theirs[j : j + step] < key:
                    j += step
                if theirs[j : j + step] != key and key not in other._added:
                    yield key
        for key in self._added:
            if key not in other:
                yield key
