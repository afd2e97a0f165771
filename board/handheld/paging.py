"""Cutting text into radio packets by UTF-8 bytes, never inside a character.

Official Meshtastic clients keep a text message to 200 bytes (docs/design.md), so every reply
the board sends is cut here, counted in bytes, on character (and where possible grapheme)
boundaries.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Sequence

MAX_PACKET_BYTES = 200
MORE_SUFFIX = "\n(more)"
ELLIPSIS = "…"
MIN_LIMIT = 4  # the widest UTF-8 character
PREFER_BREAK_FROM = 0.7  # look for a space or newline in the last 30% of a chunk
_BREAKS = " \n"
_ZWJ = "\u200d"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _offsets(text: str) -> list[int]:
    """offsets[k] is the UTF-8 size of text[:k]."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + len(char.encode("utf-8")))
    return offsets


def _is_regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _extends(char: str) -> bool:
    """Characters that attach to the one before: marks, ZWJ, variation selectors, skin tones."""
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == _ZWJ
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"
        or "\U000e0020" <= char <= "\U000e007f"
        or "\U000e0100" <= char <= "\U000e01ef"
    )


def _joined(text: str, k: int) -> bool:
    """True if text[k - 1] and text[k] belong to one grapheme (a close approximation)."""
    before, after = text[k - 1], text[k]
    if _extends(after) or before == _ZWJ or (before, after) == ("\r", "\n"):
        return True
    if _is_regional(before) and _is_regional(after):
        run = 0
        while k - 1 - run >= 0 and _is_regional(text[k - 1 - run]):
            run += 1
        return run % 2 == 1  # flags are pairs: join the second half of a pair to the first
    return False


def _cut(text: str, offsets: list[int], start: int, limit: int, prefer_space: bool) -> int:
    """The end of the longest good chunk starting at `start` that fits in `limit` bytes."""
    end = bisect_right(offsets, offsets[start] + limit) - 1
    if end >= len(text):
        return len(text)
    if end <= start:
        raise ValueError(f"limit {limit} is too small for one character")
    if prefer_space:
        floor = offsets[start] + limit * PREFER_BREAK_FROM
        for k in range(end, start, -1):
            if offsets[k] < floor:
                break
            if text[k - 1] in _BREAKS and not _joined(text, k):
                return k
    for k in range(end, start, -1):
        if not _joined(text, k):
            return k
    return end  # one grapheme longer than the limit: cut between code points


def split_utf8(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` UTF-8 bytes that join back to exactly `text`."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} bytes")
    offsets = _offsets(text)
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = _cut(text, offsets, start, limit, prefer_space=True)
        chunks.append(text[start:end])
        start = end
    return chunks


def truncate_utf8(text: str, limit: int) -> str:
    """`text` if it fits in `limit` bytes, else as much as fits followed by an ellipsis."""
    if utf8_len(text) <= limit:
        return text
    room = limit - utf8_len(ELLIPSIS)
    if room <= 0:
        raise ValueError(f"limit must be more than {utf8_len(ELLIPSIS)} bytes")
    offsets = _offsets(text)
    end = bisect_right(offsets, room) - 1
    for k in range(end, 0, -1):
        if not _joined(text, k):
            end = k
            break
    return text[:end] + ELLIPSIS


def paginate(text: str) -> list[str]:
    """Pages of at most MAX_PACKET_BYTES; every page but the last ends with MORE_SUFFIX."""
    offsets = _offsets(text)
    body_limit = MAX_PACKET_BYTES - utf8_len(MORE_SUFFIX)
    pages: list[str] = []
    start = 0
    while offsets[-1] - offsets[start] > MAX_PACKET_BYTES:
        end = _cut(text, offsets, start, body_limit, prefer_space=True)
        pages.append(text[start:end] + MORE_SUFFIX)
        start = end
    pages.append(text[start:])
    return pages


def fit_lines(lines: Sequence[str], limit: int) -> tuple[str, int]:
    """Pack as many whole lines as fit into one packet; return it and how many lines it holds.

    A first line that alone exceeds `limit` is truncated with an ellipsis and counts as used.
    """
    used: list[str] = []
    size = 0
    for line in lines:
        grown = size + utf8_len(line) + (1 if used else 0)
        if grown > limit:
            break
        used.append(line)
        size = grown
    if not used and lines:
        return truncate_utf8(lines[0], limit), 1
    return "\n".join(used), len(used)
