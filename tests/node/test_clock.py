"""The simulation clock: scaled time that can slow down mid-run without jumping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from node.clock import Clock

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_a_fast_clock_counts_scaled_seconds() -> None:
    clock = Clock(speed=50.0, start=START)
    time.sleep(0.02)
    assert 0.9 <= clock.monotonic() < 5.0
    assert clock.to_real(10.0) == pytest.approx(0.2)


def test_slowing_down_keeps_time_continuous_and_changes_the_rate() -> None:
    clock = Clock(speed=100.0, start=START)
    time.sleep(0.02)
    before = clock.monotonic()
    clock.set_speed(1.0)
    after = clock.monotonic()
    assert before <= after < before + 0.05  # no jump: only real time passed, now at 1x
    time.sleep(0.02)
    assert clock.monotonic() - after < 0.5  # 0.02 real s is ~0.02 s, no longer ~2 s
    assert clock.to_real(1.0) == 1.0
    assert clock.now() > START


def test_a_clock_that_follows_the_system_cannot_change_speed() -> None:
    with pytest.raises(ValueError, match="follows the system"):
        Clock().set_speed(2.0)
    with pytest.raises(ValueError, match="positive"):
        Clock(speed=2.0).set_speed(0)


def test_a_stored_wall_time_maps_back_to_the_seconds_the_mesh_counts() -> None:
    clock = Clock(speed=40.0, start=START)
    clock.set_speed(10.0)  # a change of speed moves no moment already shown
    assert clock.seconds_at(START + timedelta(seconds=12)) == 12.0
    assert clock.seconds_at(clock.now()) == pytest.approx(clock.monotonic(), abs=0.05)
    with pytest.raises(ValueError, match="follows the system"):
        Clock().seconds_at(START)
