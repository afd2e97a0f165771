"""Type lifetimes and the short references people type."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from board.bulletin import MAX_TEXT_BYTES, new_bulletin
from board.errors import NotFound, UnknownType
from board.refs import ALPHABET, bulletin_id, normalise_ref, short_ref
from board.types import DEFAULT_TYPE_RULES, MAX_TYPE_NAME_BYTES, TypeRegistry, TypeRule
from board.wire.codec import MAX_ANNOUNCE_BULLETIN

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("type_name", "event_time", "all_day", "expires"),
    [
        ("meal", None, False, NOW + D),
        ("tool", None, False, NOW + 28 * D),
        ("childcare", None, False, NOW + 7 * D),
        ("meal", NOW + 9 * H, False, NOW + 15 * H),
        ("notice", NOW + 2 * D, False, NOW + 3 * D),
        ("meal", NOW + D, True, NOW + 2 * D + 6 * H),  # "meal tue": all Tuesday, then 6 h
        ("meal", NOW - 30 * D, False, NOW + H),  # long past event: never expired on arrival
        ("food", NOW - 12 * H, False, NOW + H),
    ],
)
def test_expiry(
    type_name: str, event_time: datetime | None, all_day: bool, expires: datetime
) -> None:
    assert TypeRegistry().expiry(type_name, NOW, event_time, all_day=all_day) == expires


def test_registry_is_configurable_and_ordered() -> None:
    registry = TypeRegistry([TypeRule("Repair", 10 * D, H), TypeRule("swap", 3 * D, H)])
    assert registry.names == ("repair", "swap")
    assert registry.get("REPAIR").lifetime == 10 * D
    with pytest.raises(UnknownType, match="types: repair swap"):
        registry.get("meal")


def test_defaults() -> None:
    assert TypeRegistry().names == tuple(rule.name for rule in DEFAULT_TYPE_RULES)
    assert TypeRegistry().get("Meal").after_event == 6 * H


@pytest.mark.parametrize(
    "rules",
    [
        [],
        [TypeRule("meal", D, H), TypeRule("MEAL", D, H)],
        [TypeRule("two words", D, H)],
        [TypeRule("thirteenbytes", D, H)],
        [TypeRule("garden", 401 * D, H)],
        [TypeRule("garden", D, 401 * D)],
    ],
)
def test_registry_refuses_bad_configuration(rules: list[TypeRule]) -> None:
    with pytest.raises(ValueError):
        TypeRegistry(rules)


def test_a_full_text_with_the_longest_type_name_fits_one_announce() -> None:
    """What MAX_TYPE_NAME_BYTES is for: no bulletin a board makes has to stay local."""
    longest = "t" * MAX_TYPE_NAME_BYTES
    registry = TypeRegistry([TypeRule(longest, 400 * D, H)])
    now = datetime(2026, 11, 24, tzinfo=UTC)
    bulletin = new_bulletin(
        registry, type=longest, text="x" * MAX_TEXT_BYTES, author="!a1b2c3d4", ring=0, now=now
    )
    assert len(bulletin.canonical_bytes()) == MAX_ANNOUNCE_BULLETIN


def _crockford(digest: bytes) -> str:
    """An independent encoder: the 128 bits, padded to 130, as 26 groups of 5 bits."""
    number = int.from_bytes(digest, "big") << 2
    return "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(26)))


@given(st.binary(max_size=300))
def test_bulletin_id_is_crockford_base32_of_sha256(data: bytes) -> None:
    expected = _crockford(hashlib.sha256(data).digest()[:16])
    assert bulletin_id(data) == expected
    assert short_ref(expected) == expected[:4]


@pytest.mark.parametrize(
    ("typed", "prefix"),
    [
        ("#a3f0", "a3f0"),
        ("a3f0", "a3f0"),
        ("#A3F0", "a3f0"),
        ("a3fO", "a3f0"),
        ("Il", "11"),
        (" #qgqs ", "qgqs"),
        ("qgqscvnmneyy58hvrxq8zdvzvr", "qgqscvnmneyy58hvrxq8zdvzvr"),
    ],
)
def test_normalise_ref(typed: str, prefix: str) -> None:
    assert normalise_ref(typed) == prefix


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("#a", "no bulletin #a"),
        ("", "no bulletin #"),
        ("a3u0", "no bulletin #a3u0"),
        ("a-30", "no bulletin #a-30"),
        ("#ab#", "no bulletin #ab#"),
        ("q" * 27, "no bulletin #" + "q" * 27),
    ],
)
def test_impossible_refs_are_not_found(typed: str, message: str) -> None:
    with pytest.raises(NotFound) as caught:
        normalise_ref(typed)
    assert str(caught.value) == message
