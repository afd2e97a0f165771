"""The tool library's handheld commands: `lend`, `back`, `ask`, and a tool's state in lists.

A `tool` bulletin is an item its owner (the bulletin's author) lends out. Only the owner changes
its state; each change is stamped with the board's clock, but never earlier than one second after
the state it replaces, so an owner's later word wins even on a board whose clock went back
(`board.store.tools` explains the last-writer-wins rule). Changes go into the Outcome for sync.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from board.bulletin import Bulletin, is_control
from board.errors import BoardError, InvalidText
from board.handheld.asks import AskRouter
from board.handheld.paging import truncate_utf8, utf8_len
from board.lending import describe  # also this module's public name, as before
from board.messages import ExtensionCommand, Inbound, Outcome
from board.store.applied import Applied
from board.store.bulletins import Store
from board.store.tools import TOOL_TYPE, ToolStore, state_target
from board.when import parse_when_text
from board.wire.tools import MAX_ASK_BYTES, MAX_BORROWER_BYTES, ToolStateMsg

logger = logging.getLogger(__name__)

LEND_USAGE = "lend needs a ref: lend #a3f0 [to whom] [until fri]"
BACK_USAGE = "back needs a ref: back #a3f0"
ASK_USAGE = "ask needs a ref: ask #a3f0 [message]"
HELP_LINES = [
    "lend #ref [who] [until fri]",
    "back #ref · ask #ref [msg]",
    "list tool: who has what",
]


class NotOwner(BoardError):
    """Someone other than a tool's owner tried to change its state."""


class NotATool(BoardError):
    """`lend`, `back` or `ask` named a bulletin that is not a tool."""


def _words(text: str, most: int, what: str) -> str:
    """One trimmed line of plain words, at most `most` bytes (refused, not cut, if longer)."""
    joined = " ".join(text.split())
    if any(is_control(c) or c == "\ufffd" for c in joined):
        raise InvalidText(f"{what}: plain words only")
    if utf8_len(joined) > most:
        raise InvalidText(f"{what} is {utf8_len(joined)} bytes; at most {most}")
    return joined


def _split_until(rest: str) -> tuple[str, str | None]:
    """`Ben until fri 18:00` -> (`Ben`, `fri 18:00`); the last `until` counts."""
    words = rest.split()
    lowered = [w.lower() for w in words]
    if "until" not in lowered:
        return rest, None
    at = len(lowered) - 1 - lowered[::-1].index("until")
    return " ".join(words[:at]), " ".join(words[at + 1 :])


@dataclass
class ToolCommands:
    """The tool library as a command-handler extension (`board.handheld.commands.Extension`)."""

    store: Store
    tools: ToolStore
    router: AskRouter
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def commands(self) -> Mapping[str, ExtensionCommand]:
        return {"lend": self.lend, "back": self.back, "ask": self.ask}

    def help_lines(self) -> list[str]:
        return list(HELP_LINES)

    def status(self, bulletin: Bulletin, now: datetime) -> str | None:
        if bulletin.type != TOOL_TYPE:
            return None
        return describe(self.tools.get(bulletin.id), now, self.tz)

    def lend(self, msg: Inbound, rest: str, outcome: Outcome) -> list[str]:
        ref, _, rest = rest.strip().partition(" ")
        if not ref:
            return [LEND_USAGE]
        tool = self._own_tool(msg, ref, "lend")
        who, when = _split_until(rest)
        who = who.strip()
        if who.lower().startswith("to "):
            who = who[3:]
        borrower = _words(who, MAX_BORROWER_BYTES, "who")
        until = None if when is None else parse_when_text(when, msg.now, self.tz)
        state = self._change(msg, tool, outcome, lent=True, borrower=borrower, until=until)
        return [f"#{tool.ref} {describe(state, msg.now, self.tz)}"]

    def back(self, msg: Inbound, rest: str, outcome: Outcome) -> list[str]:
        ref = rest.strip().split(" ", 1)[0]
        if not ref:
            return [BACK_USAGE]
        tool = self._own_tool(msg, ref, "mark back")
        current = self.tools.get(tool.id)
        if current is None or not current.lent:
            return [f"#{tool.ref} is free already"]
        self._change(msg, tool, outcome, lent=False)
        return [f"#{tool.ref} is back: free"]

    def ask(self, msg: Inbound, rest: str, outcome: Outcome) -> list[str]:
        ref, _, words = rest.strip().partition(" ")
        if not ref:
            return [ASK_USAGE]
        tool = self.store.get(ref, msg.ring, now=msg.now)
        if tool.type != TOOL_TYPE:
            raise NotATool(f"#{tool.ref} is a {tool.type}, not a tool")
        if tool.author == msg.sender:
            return [f"#{tool.ref} is your own tool"]
        text = truncate_utf8(" ".join(words.split()), MAX_ASK_BYTES)
        text = _words(text, MAX_ASK_BYTES, "message")
        routed = self.router.from_handheld(tool, msg.sender, text, msg.now)
        outcome.replies.extend(routed.deliver)
        if routed.forward is not None:
            outcome.asks.append(routed.forward)
        return [f"asked the owner of #{tool.ref}"]

    def _own_tool(self, msg: Inbound, ref: str, action: str) -> Bulletin:
        tool = self.store.get(ref, msg.ring, now=msg.now)
        if tool.type != TOOL_TYPE:
            raise NotATool(f"#{tool.ref} is a {tool.type}, not a tool")
        if tool.author != msg.sender:
            raise NotOwner(f"only the owner can {action} #{tool.ref}")
        return tool

    def _change(
        self,
        msg: Inbound,
        tool: Bulletin,
        outcome: Outcome,
        *,
        lent: bool,
        borrower: str = "",
        until: datetime | None = None,
    ) -> ToolStateMsg:
        current = self.tools.get(tool.id)
        stamp = int(msg.now.astimezone(UTC).timestamp())
        if current is not None:
            stamp = max(stamp, current.stamp + 1)
        state = ToolStateMsg(
            state_target(tool.id),
            tool.ring,
            lent,
            stamp,
            0 if until is None else int(until.timestamp()),
            borrower,
        )
        if self.tools.apply(state).applied is Applied.NEW:
            outcome.tool_states.append(state)
        else:  # cannot happen for a held tool: our stamp is newer than what is stored
            logger.warning("tool state for %s was not stored", tool.id)
        return state
