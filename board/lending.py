"""A tool's lending state as the tool library reads it back and says it to people.

Pure (no database library): the store (`board.store.tools`), the handheld grammar
(`board.handheld.tools`) and the web page's read-only reader (which loads no SQLAlchemy) all
turn the `tool_state` table's bytes into a state, and a state into words, here: so a tool reads
the same on a handheld, on the web page and on the poster.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from board.errors import MalformedPacket
from board.when import format_when
from board.wire.tools import ToolStateMsg

logger = logging.getLogger(__name__)


def stored_state(bulletin_id: str, body: bytes) -> ToolStateMsg | None:
    """A `tool_state` row's body as a state; None (logged) for one an older rule refuses now,
    which people then see as free rather than a list that breaks."""
    try:
        return ToolStateMsg.from_body(body)
    except MalformedPacket as exc:
        logger.warning("unreadable tool state for %s: %s", bulletin_id, exc)
        return None


def describe(state: ToolStateMsg | None, now: datetime, tz: ZoneInfo) -> str:
    """`free`, `lent`, `lent to Ben`, `lent to Ben till fri`."""
    if state is None or not state.lent:
        return "free"
    text = "lent"
    if state.borrower:
        text += f" to {state.borrower}"
    if state.until:
        text += " till " + format_when(datetime.fromtimestamp(state.until, UTC), now, tz)
    return text
