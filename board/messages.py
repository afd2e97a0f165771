"""What crosses the core's edge: the texts a handheld sends in, and the packets the board owes.

A leaf, as httpx keeps `Request` and `Response` in `_models.py`: the handheld grammar builds
these, the sync engine builds `Outgoing`, the store's outbox persists both, and the node sends
them. Keeping them here lets each of those import the vocabulary without importing the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # carried, never used: importing them here would make this leaf a hub
    from board.bulletin import Bulletin
    from board.wire.members import MemberMsg
    from board.wire.moderation import ModerationMsg
    from board.wire.tools import AskMsg, ToolStateMsg


@dataclass(frozen=True)
class Inbound:
    """A text message the radio delivered to the board."""

    sender: str  # "!a1b2c3d4"
    ring: int  # channel index it arrived on
    text: str
    direct: bool  # a direct message to the board, not a shared channel
    now: datetime  # UTC aware
    verified: bool = False  # a PKI-encrypted direct message: the radio checked the sender's key
    #: The sender's public key as the radio holds it (the one it decrypted a PKI direct message
    #: with); None when the radio has none for the sender yet.
    public_key: bytes | None = None


#: `Reply.to` for a text to everyone on the ring: the opt-in ring digest, nothing else.
BROADCAST = "^all"


@dataclass(frozen=True)
class Reply:
    """One packet to send: always to the sender, always on the inbound ring."""

    to: str
    ring: int
    text: str  # at most MAX_PACKET_BYTES UTF-8 bytes


@dataclass(frozen=True)
class Outgoing:
    """One board-plane packet for the node to broadcast on channel `ring` (hop limit 0)."""

    ring: int
    payload: bytes


#: What the outbox holds and the link sends: a text for a person, or a board-plane packet.
Packet = Reply | Outgoing


@dataclass(frozen=True)
class Outcome:
    """What one inbound message caused: replies to send, and changes other boards must hear."""

    replies: list[Reply]
    posted: list[Bulletin] = field(default_factory=list)  # newly stored bulletins
    deleted: list[str] = field(default_factory=list)  # ids of bulletins removed (tombstoned)
    tool_states: list[ToolStateMsg] = field(default_factory=list)  # owners' new words to sync
    asks: list[AskMsg] = field(default_factory=list)  # asks to pass on to other boards
    moderated: list[ModerationMsg] = field(default_factory=list)  # signed, for other boards
    members: list[MemberMsg] = field(default_factory=list)  # joins and leaves, signed


#: An extension's command (`board.handheld.commands.Extension`): the inbound message, the words
#: after the command, and the Outcome being built, to add changes or other replies.
ExtensionCommand = Callable[[Inbound, str, Outcome], list[str]]
