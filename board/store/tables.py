"""Every table of the board's database, in one module.

All table models live here so that importing this one module fills `SQLModel.metadata` before
`board.store.schema` creates the tables (the sqlmodel guide's own answer to circular imports),
and so that no store imports another only to reach its table. Names, columns and indexes are the
schema's (`board.store.migrations` makes the same ones for an older file); change them only with
a migration. Times are unix seconds throughout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint, column, desc, func
from sqlmodel import Field, SQLModel

from board.bulletin import Bulletin
from board.refs import REF_LENGTH
from board.when import unix_seconds


class BulletinRow(SQLModel, table=True):
    """A stored bulletin; `canonical` is the source of truth, the other columns serve queries.

    The indexes are the ones `board.store.migrations` makes (schema v2), for what the bench shows
    matters at 100,000 bulletins: a ring's newest first (with or without a type), an id prefix
    within a ring, a ring's unexpired ones, and what has expired anywhere.
    """

    __tablename__ = "bulletin"
    __table_args__ = (
        Index("ix_bulletin_ring_created", "ring", desc("created_at"), "id"),
        Index("ix_bulletin_ring_type_created", "ring", "type", desc("created_at"), "id"),
        Index("ix_bulletin_ring_id", "ring", "id"),
        Index(
            "ix_bulletin_ring_expires", "ring", "expires_at", "id", func.length(column("canonical"))
        ),
    )

    id: str = Field(primary_key=True)
    ref: str
    ring: int
    type: str
    text: str
    author: str
    created_at: int  # unix seconds, like every time column
    event_time: int | None = None
    expires_at: int = Field(index=True)
    received_at: int
    canonical: bytes


def bulletin_values(bulletin: Bulletin, received_at: datetime) -> dict[str, Any]:
    """A bulletin as the columns of its `BulletinRow` (for a fast insert without the ORM)."""
    bulletin_id = bulletin.id
    return {
        "id": bulletin_id,
        "ref": bulletin_id[:REF_LENGTH],
        "ring": bulletin.ring,
        "type": bulletin.type,
        "text": bulletin.text,
        "author": bulletin.author,
        "created_at": unix_seconds(bulletin.created_at),
        "event_time": None if bulletin.event_time is None else unix_seconds(bulletin.event_time),
        "expires_at": unix_seconds(bulletin.expires_at),
        "received_at": unix_seconds(received_at),
        "canonical": bulletin.canonical_bytes(),
    }


class TombstoneRow(SQLModel, table=True):
    """A removed bulletin's id, kept until the bulletin would have expired so it stays removed.

    The signature is the deleting board's (`board.wire.tombstone`); None for one no board signed
    (it deletes here and is refused from the air). The bulletin's bytes are kept when this board
    held it, so that a moderator's `mod undo` can bring it back (schema v4).
    """

    __tablename__ = "tombstone"

    id: str = Field(primary_key=True)
    ring: int = Field(index=True)
    author: str
    deleted_by: str | None = None  # None: the local operator
    deleted_at: int
    expires_at: int = Field(index=True)
    board_key: bytes | None = None
    signature: bytes | None = None
    canonical: bytes | None = None  # the deleted bulletin, if this board held it


class AirtimeRow(SQLModel, table=True):
    """One transmission of this board (seconds on air), so the airtime budget survives restarts."""

    __tablename__ = "airtime"

    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)  # unix seconds
    seconds: float


class ModerationRow(SQLModel, table=True):
    """The winning moderation action on one bulletin, exactly as it travels (signed)."""

    __tablename__ = "moderation"

    id: str = Field(primary_key=True)  # the bulletin's id
    ring: int = Field(index=True)
    action: int
    moderator: str
    at: int
    expires_at: int = Field(index=True)
    board_key: bytes
    signature: bytes


class MemberRow(SQLModel, table=True):
    """A person's latest word on one private ring (joined or left), exactly as it travels:
    their node id bound to the radio key the witnessing board held for it, signed by that board.
    """

    __tablename__ = "member"

    ring: int = Field(primary_key=True)
    node: str = Field(primary_key=True)  # "!1234abcd"
    public_key: bytes  # the node's 32-byte radio key when it joined
    joined: bool  # False: the person left
    at: int
    expires_at: int = Field(index=True)
    board_key: bytes
    signature: bytes


class ModerationLogRow(SQLModel, table=True):
    """One moderation attempt, accepted or refused, from a handheld or from the air."""

    __tablename__ = "moderation_log"

    id: int | None = Field(default=None, primary_key=True)
    at: int = Field(index=True)  # when this board saw it (unix seconds)
    ring: int = Field(index=True)
    moderator: str  # who sent it (a handheld) or whom it names (from the air)
    action: str  # "remove" / "restore"
    bulletin: str  # the id, or what was typed when no bulletin matched
    board_key: str | None  # base64 of the verifying board's key; None: refused before signing
    source: str  # "handheld" or "air:!1234abcd" (the board that relayed it)
    accepted: bool
    reason: str  # why it was refused, or "" when accepted


class ShareRow(SQLModel, table=True):
    """One bulletin as the tally remembers it, after the bulletin itself is long purged.

    A database from before this table counts the bulletins it held (`board.store.migrations`).
    """

    __tablename__ = "share"
    # A ring's month, counted by type and author from the index alone (schema v2).
    __table_args__ = (Index("ix_share_ring_created", "ring", "created_at", "type", "author"),)

    id: str = Field(primary_key=True)  # the bulletin id: each bulletin counts once, ever
    ring: int
    type: str
    author: str
    created_at: int  # unix seconds


class ToolStateRow(SQLModel, table=True):
    """The current state of one tool; `state` (its board-plane body) is the source of truth."""

    __tablename__ = "tool_state"

    bulletin_id: str = Field(primary_key=True, foreign_key="bulletin.id", ondelete="CASCADE")
    ring: int = Field(index=True)
    stamp: int
    state: bytes


class LoanRow(SQLModel, table=True):
    """One loan, as the owner declared it: kept after the tool's bulletin is gone."""

    __tablename__ = "tool_loan"
    __table_args__ = (UniqueConstraint("bulletin_id", "lent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    bulletin_id: str
    ring: int = Field(index=True)
    owner: str
    borrower: str
    lent_at: int = Field(index=True)  # the owner's timestamp of the `lend`, unix seconds


class SubscriptionRow(SQLModel, table=True):
    """One person's wish to hear of new bulletins of one type on one ring, on this board."""

    __tablename__ = "subscription"

    node: str = Field(primary_key=True)
    ring: int = Field(primary_key=True)
    type: str = Field(primary_key=True)
    since: int  # unix seconds


class OutboxRow(SQLModel, table=True):
    """A packet waiting to be sent (a board-plane one) or to be acknowledged (a reply)."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)  # queue order
    kind: str  # "reply" or "board"
    ring: int  # the channel it goes out on
    destination: str | None = None  # the person a reply goes to
    payload: bytes  # a reply's UTF-8 text, or a board-plane packet
    queued_at: float  # unix seconds, by this board's clock
    attempts: int = 0  # times handed to the radio


class OutboxSendRow(SQLModel, table=True):
    """One attempt handed to the radio: its packet id is what an ACK or NAK names."""

    __tablename__ = "outbox_send"

    packet_id: int = Field(primary_key=True)
    item_id: int = Field(foreign_key="outbox.id", index=True)
    sent_at: float  # unix seconds
