"""The bulletin model: validation people will hit, and the encoding other boards will rely on."""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from board.bulletin import MAX_TEXT_BYTES, Bulletin, from_canonical_bytes, new_bulletin
from board.errors import (
    BoardError,
    InvalidBulletin,
    InvalidText,
    MalformedBulletin,
    UnknownType,
)
from board.refs import ALPHABET, REF_LENGTH
from board.types import TypeRegistry

Make = Callable[..., Bulletin]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"event_time": NOW + timedelta(days=1, hours=9)},
        {"text": "Grüße 👋🏽 from the 漢字 class\nbring a pen", "type": "skill", "ring": 7},
        {"text": "ü" * 100, "author": "!ffffffff", "type": "notice"},
    ],
)
def test_canonical_bytes_round_trip_exactly(make: Make, overrides: dict[str, Any]) -> None:
    bulletin = make(**overrides)
    data = bulletin.canonical_bytes()
    decoded = from_canonical_bytes(data)
    assert decoded == bulletin
    assert decoded.canonical_bytes() == data
    assert decoded.id == bulletin.id


def test_canonical_layout_is_compact_and_versioned(make: Make) -> None:
    bulletin = make(event_time=NOW + timedelta(hours=8))
    data = bulletin.canonical_bytes()
    assert data[0] == 1  # version
    assert data[1] == 0  # ring
    assert data[2:6] == bytes.fromhex("a1b2c3d4")
    created, event, expires, type_len = struct.unpack(">IIIB", data[6:19])
    assert (created, event) == (int(NOW.timestamp()), int(NOW.timestamp()) + 8 * 3600)
    assert expires == event + 6 * 3600
    assert data[19 : 19 + type_len] == b"meal"
    assert data[19 + type_len :] == b"Soup at the hall"


def test_identity_is_content(make: Make) -> None:
    first, again = make(), make(now=NOW + timedelta(microseconds=999))
    assert first.id == again.id
    assert first.ref == again.ref == first.id[:REF_LENGTH]
    assert len(first.id) == 26
    assert set(first.id) <= set(ALPHABET)


def test_id_is_stable_across_versions(make: Make) -> None:
    # Boards running different releases must agree on ids: changing this is a protocol change.
    bulletin = make()
    assert bulletin.canonical_bytes().hex() == (
        "0100a1b2c3d46b040090000000006b055210046d65616c536f7570206174207468652068616c6c"
    )
    assert bulletin.id == "qgqscvnmneyy58hvrxq8zdvzvr"


@pytest.mark.parametrize(
    "change",
    [
        {"ring": 1},
        {"author": "!a1b2c3d5"},
        {"text": "Soup at the hall!"},
        {"type": "food"},
        {"now": NOW + timedelta(seconds=1)},
        {"event_time": NOW + timedelta(hours=9)},
    ],
)
def test_any_difference_gives_another_id(make: Make, change: dict[str, Any]) -> None:
    assert make(**change).id != make().id


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Soup   at\tthe hall  ", "Soup at the hall"),
        ("Soup\r\nat the hall", "Soup\nat the hall"),
        ("Soup \n\n\n  at the hall", "Soup\nat the hall"),
        ("\n\nSoup\n", "Soup"),
        ("Soup\u00a0at the hall", "Soup at the hall"),
    ],
)
def test_text_is_normalised(make: Make, typed: str, stored: str) -> None:
    assert make(text=typed).text == stored


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "text is empty"),
        (" \n\t ", "text is empty"),
        ("\u2800\u3164", "text is empty"),  # braille blank and hangul filler: look empty
        ("\u115f\u1160 \uffa0\u17b4", "text is empty"),
        ("Soup\x07 at the hall", "text contains control characters"),
        ("Soup\x00", "text contains control characters"),
        ("ä" * 100 + "a", "text is 201 bytes; at most 200"),
        ("👍" * 51, "text is 204 bytes; at most 200"),
    ],
)
def test_bad_text_is_refused(make: Make, text: str, message: str) -> None:
    with pytest.raises(InvalidText) as caught:
        make(text=text)
    assert str(caught.value) == message


def test_text_limit_counts_bytes_not_characters(make: Make) -> None:
    text = "ä" * 100  # 100 characters, 200 bytes
    assert len(make(text=text).text.encode()) == MAX_TEXT_BYTES


@pytest.mark.parametrize(
    "overrides",
    [
        {"author": "a1b2c3d4"},
        {"author": "!A1B2C3D4"},
        {"author": "!a1b2c3d"},
        {"author": "!a1b2c3d45"},
        {"author": "!a1b2c3dz"},
        {"ring": 8},
        {"ring": -1},
        {"ring": True},
        {"now": datetime(2026, 11, 23, 9, 0)},
        {"event_time": datetime(2026, 11, 24, 9, 0)},
    ],
)
def test_bad_fields_raise_board_errors_not_pydantic(make: Make, overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidBulletin):
        make(**overrides)


def test_unknown_type_names_the_known_ones(make: Make) -> None:
    with pytest.raises(UnknownType) as caught:
        make(type="soup")
    assert str(caught.value) == "unknown type 'soup'; types: meal skill tool childcare food notice"
    assert caught.value.known == ("meal", "skill", "tool", "childcare", "food", "notice")


def test_type_is_case_insensitive_and_stored_lowercase(make: Make) -> None:
    assert make(type="MeAl").type == "meal"


def test_times_are_utc_whole_seconds(make: Make) -> None:
    berlin_noon = datetime(2026, 11, 23, 10, 0, 0, 987654).astimezone()
    bulletin = make(now=berlin_noon, event_time=berlin_noon + timedelta(hours=2))
    for moment in (bulletin.created_at, bulletin.event_time, bulletin.expires_at):
        assert moment is not None
        assert moment.tzinfo == UTC
        assert moment.microsecond == 0


def test_bulletin_is_immutable(make: Make) -> None:
    bulletin = make()
    with pytest.raises(Exception, match="frozen"):
        bulletin.text = "changed"  # type: ignore[misc]


def _valid() -> bytes:
    return new_bulletin(
        TypeRegistry(), type="meal", text="Soup", author="!a1b2c3d4", ring=0, now=NOW
    ).canonical_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _valid()[:18],
        b"\x02" + _valid()[1:],  # unknown version
        _valid()[:1] + b"\x09" + _valid()[2:],  # ring 9
        _valid()[:18] + b"\x00" + _valid()[19:],  # no type
        _valid()[:23],  # no text
        _valid() + b"\xff",  # not UTF-8
        _valid() + b"  ",  # not in normal form: would hash differently
        _valid()[:6] + b"\x00\x00\x00\x00" + _valid()[10:],  # created at 0
        _valid()[:14] + _valid()[6:10] + _valid()[18:],  # expires when created
    ],
)
def test_malformed_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedBulletin):
        Bulletin.from_canonical_bytes(data)


def test_malformed_bulletin_is_a_board_error() -> None:
    assert issubclass(MalformedBulletin, BoardError)
