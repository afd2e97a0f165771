"""The configuration file: rings by name and channel, what is served, the moderators' rotation."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from board.config import (
    DEFAULT_CONFIG,
    EXAMPLE,
    ConfigError,
    Rotation,
    load_config,
    parse_config,
)


def test_without_a_file_the_board_serves_one_public_ring_on_channel_0() -> None:
    assert load_config(None) is DEFAULT_CONFIG
    assert DEFAULT_CONFIG.served == frozenset({0})
    assert DEFAULT_CONFIG.ring("public").channel == 0
    assert DEFAULT_CONFIG.name_of(3) == "ring 3"


def test_the_example_is_valid_and_says_what_it_configures(tmp_path: Path) -> None:
    path = tmp_path / "meshboard.toml"
    path.write_text(EXAMPLE)
    config = load_config(path)
    assert [(r.name, r.channel, r.serve) for r in config.rings] == [
        ("public", 0, True),
        ("garden", 1, True),
    ]
    assert config.ring("garden") is config.ring("1") is config.by_channel(1)
    public = config.ring("public")
    assert public.rotation is not None
    assert public.rotation.moderators == ("!1234abcd", "!5678ef01", "!9abc2345")
    assert public.rotation.period == timedelta(weeks=1)


def test_an_unserved_ring_is_known_by_name_but_not_served() -> None:
    config = parse_config(
        tomllib.loads(
            '[[ring]]\nname = "public"\nchannel = 0\n'
            '[[ring]]\nname = "elders"\nchannel = 2\nserve = false\n'
        )
    )
    assert config.served == frozenset({0})
    assert config.ring("elders").serve is False


def test_the_rotation_hands_over_at_each_period_boundary() -> None:
    starts = datetime(2026, 1, 5, tzinfo=UTC)
    rotation = Rotation(("!00000001", "!00000002"), timedelta(weeks=1), starts)
    assert rotation.on_duty(starts - timedelta(seconds=1)) is None
    assert rotation.on_duty(starts) == "!00000001"
    assert rotation.on_duty(starts + timedelta(days=7) - timedelta(seconds=1)) == "!00000001"
    assert rotation.on_duty(starts + timedelta(days=7)) == "!00000002"
    assert rotation.on_duty(starts + timedelta(days=14)) == "!00000001"
    assert rotation.next_change(starts + timedelta(days=8)) == starts + timedelta(days=14)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no [[ring]] tables"),
        ('[[ring]]\nname = "Public"\nchannel = 0\n', "name must be lowercase"),
        ('[[ring]]\nname = "public"\nchannel = 8\n', "channel must be 0-7"),
        ('[[ring]]\nname = "a"\nchannel = 0\n[[ring]]\nname = "a"\nchannel = 1\n', "two rings"),
        ('[[ring]]\nname = "a"\nchannel = 0\n[[ring]]\nname = "b"\nchannel = 0\n', "two rings"),
        ('[[ring]]\nname = "a"\nchannel = 0\ncolour = "red"\n', "unknown key 'colour'"),
        ('[[ring]]\nname = "a"\nchannel = 0\ndigest = "often"\n', "not a duration"),
        (
            '[[ring]]\nname = "a"\nchannel = 0\n[ring.moderation]\nmoderators = ["bob"]\n',
            "node ids",
        ),
        ("[board]\nx = 1\n", "unknown section 'board'"),
    ],
)
def test_a_mistake_in_the_file_is_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(tomllib.loads(text))


def test_a_file_that_is_not_toml_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[ring]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
