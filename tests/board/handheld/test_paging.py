"""Cutting replies into packets by UTF-8 bytes, never inside a character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from board.handheld.paging import (
    MAX_PACKET_BYTES,
    MORE_SUFFIX,
    fit_lines,
    paginate,
    split_utf8,
    truncate_utf8,
)

SAMPLES = {
    "ascii": "Soup at the hall, bring a bowl and a spoon. " * 12,
    "accents": "Crêpes, gâteau et café à la fête du quartier; déjà vu. " * 8,
    "emoji": "👍🏽🍲 " * 60,
    "cjk": "社区厨房今晚供应汤。" * 30,
    "mixed": "Ä😀漢 é\nline two 👨‍👩‍👧 family 🇩🇪 flag\n" * 10,
    "no spaces": "x" * 500,
}


def size(text: str) -> int:
    return len(text.encode("utf-8"))


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
@pytest.mark.parametrize("limit", [4, 17, 50, MAX_PACKET_BYTES])
def test_split_fits_and_reassembles(text: str, limit: int) -> None:
    chunks = split_utf8(text, limit)
    assert "".join(chunks) == text
    assert all(0 < size(chunk) <= limit for chunk in chunks)


@given(st.text(), st.integers(min_value=4, max_value=300))
def test_split_property(text: str, limit: int) -> None:
    chunks = split_utf8(text, limit)
    assert "".join(chunks) == text
    assert all(0 < size(chunk) <= limit for chunk in chunks)


def test_split_prefers_a_space() -> None:
    chunks = split_utf8("word " * 60, 50)
    assert all(chunk.endswith(" ") for chunk in chunks)


def test_split_prefers_a_newline() -> None:
    text = "a" * 40 + "\n" + "b" * 40
    assert split_utf8(text, 50) == ["a" * 40 + "\n", "b" * 40]


def test_split_ignores_a_space_too_early_in_the_chunk() -> None:
    text = "ab " + "c" * 100
    assert split_utf8(text, 50)[0] == "ab " + "c" * 47


@pytest.mark.parametrize(
    ("unit", "limit"),
    [
        ("👍🏽", 10),  # skin tone modifier stays with its emoji (8 bytes)
        ("👨\u200d👩\u200d👧", 20),  # a ZWJ family (18 bytes)
        ("🇩🇪", 10),  # a flag is two regional indicators
        ("e\u0301", 7),  # a combining accent stays on its letter
        ("❤\ufe0f", 7),  # a variation selector stays too
    ],
)
def test_split_keeps_graphemes_together(unit: str, limit: int) -> None:
    chunks = split_utf8(unit * 30, limit)
    assert all(chunk == unit * (len(chunk) // len(unit)) for chunk in chunks)


def test_split_of_nothing_is_nothing() -> None:
    assert split_utf8("", 10) == []


def test_split_needs_room_for_one_character() -> None:
    with pytest.raises(ValueError):
        split_utf8("abc", 3)


@pytest.mark.parametrize(("text", "pages"), [("", 1), ("é" * 100, 1), ("é" * 100 + "!", 2)])
def test_paginate_only_when_needed(text: str, pages: int) -> None:
    assert len(paginate(text)) == pages


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
def test_paginate_fits_and_reassembles(text: str) -> None:
    pages = paginate(text)
    assert len(pages) > 1
    assert all(size(page) <= MAX_PACKET_BYTES for page in pages)
    assert all(page.endswith(MORE_SUFFIX) for page in pages[:-1])
    assert "".join(page.removesuffix(MORE_SUFFIX) for page in pages[:-1]) + pages[-1] == text


@given(st.text(max_size=800))
def test_paginate_property(text: str) -> None:
    pages = paginate(text)
    assert all(size(page) <= MAX_PACKET_BYTES for page in pages)
    assert all(page.endswith(MORE_SUFFIX) for page in pages[:-1])
    assert "".join(page.removesuffix(MORE_SUFFIX) for page in pages[:-1]) + pages[-1] == text


@pytest.mark.parametrize(
    ("lines", "limit", "packet", "used"),
    [
        (["a", "b", "c"], 3, "a\nb", 2),
        (["a", "b", "c"], 5, "a\nb\nc", 3),
        (["ab", "c"], 2, "ab", 1),
        ([], 10, "", 0),
        (["x" * 30, "y"], 10, "xxxxxxx…", 1),
        (["é" * 10], 8, "éé…", 1),
        (["👍🏽" * 3], 12, "👍🏽…", 1),
        (["short", "x" * 30], 10, "short", 1),
    ],
)
def test_fit_lines(lines: list[str], limit: int, packet: str, used: int) -> None:
    assert fit_lines(lines, limit) == (packet, used)
    assert size(packet) <= limit


@given(st.lists(st.text(), max_size=20), st.integers(min_value=4, max_value=200))
def test_fit_lines_property(lines: list[str], limit: int) -> None:
    packet, used = fit_lines(lines, limit)
    assert size(packet) <= limit
    assert used <= len(lines)
    if used > 1:
        assert packet == "\n".join(lines[:used])


@pytest.mark.parametrize(("text", "cut"), [("hello", "hello"), ("hello world", "hello…")])
def test_truncate(text: str, cut: str) -> None:
    assert truncate_utf8(text, 8) == cut
