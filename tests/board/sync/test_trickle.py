"""The Trickle timer (RFC 6206): doubling intervals, suppression by k, reset on inconsistency."""

from __future__ import annotations

import random

import pytest

from board.sync.trickle import Trickle


def run(trickle: Trickle, until: float, step: float = 0.5) -> list[float]:
    """Times at which the timer transmitted, polling every `step` seconds."""
    sent = []
    now = 0.0
    while now < until:
        if trickle.should_transmit(now):
            sent.append(now)
        now += step
    return sent


def test_intervals_double_up_to_imax() -> None:
    trickle = Trickle(10.0, 80.0, 1, random.Random(1))
    trickle.start(0.0)
    sent = run(trickle, 10 + 20 + 40 + 80 + 80)
    assert len(sent) == 5
    bounds = [(5, 10), (20, 30), (50, 70), (110, 150), (190, 230)]
    for moment, (low, high) in zip(sent, bounds, strict=True):
        assert low <= moment < high


@pytest.mark.parametrize(("k", "heard", "sends"), [(1, 0, True), (1, 1, False), (2, 1, True)])
def test_consistent_messages_suppress(k: int, heard: int, sends: bool) -> None:
    trickle = Trickle(10.0, 100.0, k, random.Random(2))
    trickle.start(0.0)
    for _ in range(heard):
        trickle.heard_consistent()
    assert bool(run(trickle, 10.25)) is sends


def test_inconsistency_resets_to_imin_unless_there() -> None:
    trickle = Trickle(10.0, 1000.0, 1, random.Random(3))
    trickle.start(0.0)
    run(trickle, 300.0)
    assert trickle.interval > 10.0
    trickle.heard_inconsistent(300.0)
    assert trickle.interval == 10.0
    event = trickle.next_event()
    assert event is not None and 305.0 <= event < 310.0
    trickle.heard_inconsistent(301.0)  # already at imin: the interval is not restarted
    assert trickle.next_event() == event


def test_next_event_alternates_between_t_and_interval_end() -> None:
    trickle = Trickle(10.0, 100.0, 1, random.Random(4))
    assert trickle.next_event() is None
    assert trickle.should_transmit(0.0) is False
    trickle.start(0.0)
    t = trickle.next_event()
    assert t is not None and 5.0 <= t < 10.0
    assert trickle.should_transmit(t) is True
    assert trickle.next_event() == 10.0


def test_long_gap_and_clock_going_back() -> None:
    trickle = Trickle(15.0, 3600.0, 1, random.Random(5))
    trickle.start(0.0)
    assert trickle.should_transmit(10 * 86400.0) in (True, False)
    assert trickle.interval == 3600.0
    event = trickle.next_event()
    assert event is not None and event <= 10 * 86400.0 + 3600.0
    trickle.should_transmit(5.0)  # the clock was corrected backwards by days
    event = trickle.next_event()
    assert event is not None and 5.0 <= event <= 5.0 + 3600.0


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Trickle(10.0, 5.0, 1, random.Random())


def test_hurry_brings_a_distant_transmission_forward_and_leaves_a_sooner_one() -> None:
    """News passed through: compare notes within a minute, even deep into a long interval."""
    trickle = Trickle(10.0, 7200.0, 1, random.Random(4))
    trickle.start(0.0)
    run(trickle, 20000.0, step=5.0)
    assert trickle.interval == 7200.0
    trickle.hurry(20000.0, 60.0)
    event = trickle.next_event()
    assert event is not None and 20030.0 <= event < 20060.0
    trickle.hurry(20010.0, 600.0)  # what is due sooner stays as it is
    assert trickle.next_event() == event
    sent = run_from(trickle, 20000.0, 20000.0 + 60.0 + 120.0 + 240.0)
    assert len(sent) == 3  # and the intervals double again from there


def run_from(trickle: Trickle, start: float, until: float, step: float = 0.5) -> list[float]:
    sent, now = [], start
    while now < until:
        if trickle.should_transmit(now):
            sent.append(now)
        now += step
    return sent
