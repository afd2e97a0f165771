"""The packed key set sync keeps per ring: it must answer exactly as a Python set would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from board.sync.keyset import KeySet
from board.wire.keys import KEY_BYTES

keys = st.binary(min_size=KEY_BYTES, max_size=KEY_BYTES)


def packed(members: set[bytes]) -> KeySet:
    ordered = sorted(members)
    # Runs of uneven length, as the store hands them over.
    return KeySet.from_sorted(b"".join(ordered[i : i + 3]) for i in range(0, len(ordered), 3))


@given(st.sets(keys, max_size=60), st.lists(keys, max_size=20), st.lists(keys, max_size=20))
def test_membership_and_iteration_match_a_set(
    read: set[bytes], added: list[bytes], probes: list[bytes]
) -> None:
    key_set = packed(read)
    for key in added:
        key_set.add(key)
    expected = read | set(added)
    assert len(key_set) == len(expected)
    assert sorted(key_set) == sorted(expected)
    listed = list(key_set)
    assert listed[: len(read)] == sorted(read)  # the read keys first, in order
    assert listed[len(read) :] == list(dict.fromkeys(k for k in added if k not in read))
    for key in [*read, *added, *probes]:
        assert (key in key_set) == (key in expected)


@given(st.sets(keys, max_size=40), st.sets(keys, max_size=40), st.lists(keys, max_size=10))
def test_not_in_is_set_difference(mine: set[bytes], theirs: set[bytes], added: list[bytes]) -> None:
    ours, other = packed(mine), packed(theirs)
    for key in added:
        other.add(key)
    assert sorted(ours.not_in(other)) == sorted(mine - theirs - set(added))
    assert list(packed(mine).not_in(packed(mine))) == []


def test_keys_out_of_order_are_refused_since_bisection_would_miss_them() -> None:
    low, high = bytes(KEY_BYTES), b"\xff" * KEY_BYTES
    with pytest.raises(ValueError, match="ascending"):
        KeySet.from_sorted([high, low])
    with pytest.raises(ValueError, match="ascending"):
        KeySet.from_sorted([low, low])  # a repeat is out of order too


def test_wrong_sizes_are_refused_and_odd_probes_are_simply_absent() -> None:
    with pytest.raises(ValueError, match="whole number"):
        KeySet(b"\x00" * (KEY_BYTES + 1))
    key_set = packed({bytes(KEY_BYTES)})
    with pytest.raises(ValueError, match="16 bytes"):
        key_set.add(b"short")
    assert b"short" not in key_set
    assert "not bytes" not in key_set


@given(st.sets(keys, max_size=60), st.lists(keys, max_size=10), st.data())
def test_discard_all_matches_set_difference(
    read: set[bytes], added: list[bytes], data: st.DataObject
) -> None:
    key_set = packed(read)
    for key in added:
        key_set.add(key)
    everything = sorted(read | set(added))
    gone = set(data.draw(st.lists(st.sampled_from(everything)))) if everything else set()
    gone |= set(data.draw(st.lists(keys, max_size=5)))  # keys never held are ignored
    key_set.discard_all(gone)
    expected = (read | set(added)) - gone
    assert sorted(key_set) == sorted(expected)
    assert all((key in key_set) == (key in expected) for key in [*read, *added, *gone])
