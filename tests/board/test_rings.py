"""Rings at run time: the served-channel gate, who is on duty, durations as the file writes them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from board.config import DEFAULT_CONFIG, MeshboardConfig, RingSpec, Rotation
from board.rings import Duty, RingGate, config_serving, duty, format_duration

STARTS = datetime(2026, 1, 5, tzinfo=UTC)
WEEK = timedelta(weeks=1)


def test_the_gate_admits_served_channels_and_logs_each_other_channel_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = MeshboardConfig(rings=(RingSpec("public", 0), RingSpec("elders", 2, serve=False)))
    gate = RingGate(config)
    with caplog.at_level(logging.INFO, logger="board.rings"):
        verdicts = [gate.admits(channel) for channel in (0, 2, 2, 5, 0, 5)]
    assert verdicts == [True, False, False, False, True, False]
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring commands on channel 2 (elders): this board does not serve it",
        "ignoring commands on channel 5 (ring 5): this board does not serve it",
    ]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (STARTS - timedelta(seconds=1), Duty(None, STARTS, "!00000001")),
        (STARTS, Duty("!00000001", STARTS + WEEK, "!00000002")),
        (STARTS + WEEK - timedelta(seconds=1), Duty("!00000001", STARTS + WEEK, "!00000002")),
        (STARTS + WEEK, Duty("!00000002", STARTS + 2 * WEEK, "!00000003")),
        (STARTS + 2 * WEEK, Duty("!00000003", STARTS + 3 * WEEK, "!00000001")),
    ],
)
def test_duty_says_who_moderates_until_when_and_who_is_next(now: datetime, expected: Duty) -> None:
    rotation = Rotation(("!00000001", "!00000002", "!00000003"), WEEK, STARTS)
    assert duty(rotation, now) == expected


def test_duty_without_moderators_is_nobody() -> None:
    assert duty(Rotation((), WEEK, STARTS), STARTS) == Duty(None, None, None)


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(weeks=2), "2w"),
        (timedelta(days=3), "3d"),
        (timedelta(hours=6), "6h"),
        (timedelta(minutes=90), "90m"),
    ],
)
def test_durations_are_written_as_in_the_file(span: timedelta, text: str) -> None:
    assert format_duration(span) == text


def test_a_config_serving_channels_names_channel_0_public() -> None:
    assert config_serving({0}) is DEFAULT_CONFIG
    config = config_serving({1, 0})
    assert [(r.name, r.channel, r.serve) for r in config.rings] == [
        ("public", 0, True),
        ("ring-1", 1, True),
    ]
    assert config.served == frozenset({0, 1})
