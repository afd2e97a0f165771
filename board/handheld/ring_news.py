"""The opt-in ring digest: one broadcast text per interval saying what is new on a ring.

A ring whose configuration sets `digest = "6h"` hears at most one text per six hours on its
channel, such as `new: 2 meal, 1 tool (list for more)`, and only when something was posted.
It is for people who do not subscribe but glance at the channel: one short packet replaces
asking the board. Counts are kept in memory: a restart forgets at most one interval's news,
which the next `list` shows anyway.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from board.bulletin import Bulletin
from board.config import MeshboardConfig
from board.handheld.paging import MAX_PACKET_BYTES, truncate_utf8
from board.messages import BROADCAST, Reply

logger = logging.getLogger(__name__)


@dataclass
class _Ring:
    interval: timedelta
    last_sent: datetime  # or when the board started: the first digest also waits an interval
    new: Counter[str] = field(default_factory=Counter)  # bulletin type -> count since last


class RingNews:
    """Counts new bulletins per ring and says when a ring's digest text is due."""

    def __init__(self, config: MeshboardConfig, started: datetime) -> None:
        self._rings = {
            spec.channel: _Ring(spec.digest, started)
            for spec in config.rings
            if spec.serve and spec.digest is not None
        }

    def notice(self, bulletin: Bulletin, now: datetime) -> None:
        """A bulletin became active here, posted or synced."""
        ring = self._rings.get(bulletin.ring)
        if ring is None or bulletin.expires_at <= now:
            return
        ring.new[bulletin.type] += 1

    def due(self, now: datetime) -> list[Reply]:
        """The digest texts to broadcast now: rings with news whose interval has passed."""
        texts = []
        for channel, ring in self._rings.items():
            if not ring.new or now < ring.last_sent + ring.interval:
                continue
            texts.append(Reply(BROADCAST, channel, news_line(ring.new)))
            logger.info("ring %d digest: %s", channel, dict(ring.new))
            ring.new = Counter()
            ring.last_sent = now
        return texts

    def next_due(self) -> datetime | None:
        """When the next digest may go out (None: no ring has news)."""
        times = [ring.last_sent + ring.interval for ring in self._rings.values() if ring.new]
        return min(times, default=None)


def news_line(counts: Counter[str]) -> str:
    """`new: 2 meal, 1 tool (list for more)`, most first, within one packet."""
    parts = [f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return truncate_utf8(f"new: {', '.join(parts)} (send list)", MAX_PACKET_BYTES)
