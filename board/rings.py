"""Rings at run time: which channels a board answers on, and who moderates now.

`board/config.py` reads the file; this module answers the questions the daemon and the CLI ask
of it while running. A command heard on a channel the board does not serve gets no answer at
all: a reply would spend airtime on a ring the board does not belong to, and storing the post
would make this board a keeper of that ring's bulletins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from board.config import DEFAULT_CONFIG, MeshboardConfig, RingSpec, Rotation

logger = logging.getLogger(__name__)

_UNITS = (("w", timedelta(weeks=1)), ("d", timedelta(days=1)), ("h", timedelta(hours=1)))


def config_serving(channels: Iterable[int]) -> MeshboardConfig:
    """A configuration serving exactly `channels`, for callers that name rings by index only.

    Channel 0 keeps the default's name `public`; others are `ring-N`.
    """
    wanted = sorted(set(channels))
    if wanted == [0]:
        return DEFAULT_CONFIG
    return MeshboardConfig(
        rings=tuple(RingSpec("public" if c == 0 else f"ring-{c}", c) for c in wanted)
    )


class RingGate:
    """Admits inbound commands only on served channels; logs each unserved channel once."""

    def __init__(self, config: MeshboardConfig) -> None:
        self._config = config
        self._logged: set[int] = set()

    def admits(self, channel: int) -> bool:
        if channel in self._config.served:
            return True
        if channel not in self._logged:
            self._logged.add(channel)
            logger.info(
                "ignoring commands on channel %d (%s): this board does not serve it",
                channel,
                self._config.name_of(channel),
            )
        return False


@dataclass(frozen=True)
class Duty:
    """Who moderates a ring at one moment, until when, and who takes over then."""

    on_duty: str | None  # None before the rotation starts or with nobody listed
    until: datetime | None  # the next hand-over; None with nobody listed
    next: str | None


def duty(rotation: Rotation, now: datetime) -> Duty:
    if not rotation.moderators:
        return Duty(None, None, None)
    change = rotation.next_change(now)
    return Duty(rotation.on_duty(now), change, rotation.on_duty(change))


def format_duration(span: timedelta) -> str:
    """The config file's own form: `1w`, `6h`, `90m` (the largest unit that divides it)."""
    for suffix, unit in _UNITS:
        if span % unit == timedelta(0):
            return f"{span // unit}{suffix}"
    return f"{span // timedelta(minutes=1)}m"
