"""Every change to the database's schema since boards went into the field, oldest first.

Version 1 is the schema as it was before versioning (`PRAGMA user_version` 0): whatever tables
and indexes `create_all` had made by then. Each later entry is frozen once released: a board
that skipped five releases runs all five, in order, so an entry must never be edited to match
today's models. `board.store.schema` runs them; `tests/board/store/test_schema.py` checks that
a database migrated from `tests/board/fixtures/schema_v1.sql` ends up exactly like a fresh one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

#: A step is one SQL statement, or a function for what one statement cannot say.
Step = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Migration:
    """What takes a database from `version - 1` to `version`, all in one transaction."""

    version: int
    summary: str  # for the log
    steps: tuple[Step, ...]


#: The version 1 schema, exactly as the models made it (SQLite keeps the text of each CREATE).
V1_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS airtime (id INTEGER NOT NULL, at FLOAT NOT NULL, "
    "seconds FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE TABLE IF NOT EXISTS bulletin (id VARCHAR NOT NULL, ref VARCHAR NOT NULL, "
    "ring INTEGER NOT NULL, type VARCHAR NOT NULL, text VARCHAR NOT NULL, "
    "author VARCHAR NOT NULL, created_at INTEGER NOT NULL, event_time INTEGER, "
    "expires_at INTEGER NOT NULL, received_at INTEGER NOT NULL, canonical BLOB NOT NULL, "
    "PRIMARY KEY (id))",
    "CREATE TABLE IF NOT EXISTS moderation (id VARCHAR NOT NULL, ring INTEGER NOT NULL, "
    "action INTEGER NOT NULL, moderator VARCHAR NOT NULL, at INTEGER NOT NULL, "
    "expires_at INTEGER NOT NULL, board_key BLOB NOT NULL, signature BLOB NOT NULL, "
    "PRIMARY KEY (id))",
    "CREATE TABLE IF NOT EXISTS moderation_log (id INTEGER NOT NULL, at INTEGER NOT NULL, "
    "ring INTEGER NOT NULL, moderator VARCHAR NOT NULL, action VARCHAR NOT NULL, "
    "bulletin VARCHAR NOT NULL, board_key VARCHAR, source VARCHAR NOT NULL, "
    "accepted BOOLEAN NOT NULL, reason VARCHAR NOT NULL, PRIMARY KEY (id))",
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER NOT NULL, kind VARCHAR NOT NULL, "
    "ring INTEGER NOT NULL, destination VARCHAR, payload BLOB NOT NULL, "
    "queued_at FLOAT NOT NULL, attempts INTEGER NOT NULL, PRIMARY KEY (id))",
    "CREATE TABLE IF NOT EXISTS outbox_send (packet_id INTEGER NOT NULL, "
    "item_id INTEGER NOT NULL, sent_at FLOAT NOT NULL, PRIMARY KEY (packet_id), "
    "FOREIGN KEY(item_id) REFERENCES outbox (id))",
    "CREATE TABLE IF NOT EXISTS share (id VARCHAR NOT NULL, ring INTEGER NOT NULL, "
    "type VARCHAR NOT NULL, author VARCHAR NOT NULL, created_at INTEGER NOT NULL, "
    "PRIMARY KEY (id))",
    "CREATE TABLE IF NOT EXISTS subscription (node VARCHAR NOT NULL, ring INTEGER NOT NULL, "
    "type VARCHAR NOT NULL, since INTEGER NOT NULL, PRIMARY KEY (node, ring, type))",
    "CREATE TABLE IF NOT EXISTS tombstone (id VARCHAR NOT NULL, ring INTEGER NOT NULL, "
    "author VARCHAR NOT NULL, deleted_by VARCHAR, deleted_at INTEGER NOT NULL, "
    "expires_at INTEGER NOT NULL, PRIMARY KEY (id))",
    "CREATE TABLE IF NOT EXISTS tool_loan (id INTEGER NOT NULL, bulletin_id VARCHAR NOT NULL, "
    "ring INTEGER NOT NULL, owner VARCHAR NOT NULL, borrower VARCHAR NOT NULL, "
    "lent_at INTEGER NOT NULL, PRIMARY KEY (id), UNIQUE (bulletin_id, lent_at))",
    "CREATE TABLE IF NOT EXISTS tool_state (bulletin_id VARCHAR NOT NULL, "
    "ring INTEGER NOT NULL, stamp INTEGER NOT NULL, state BLOB NOT NULL, "
    "PRIMARY KEY (bulletin_id), "
    "FOREIGN KEY(bulletin_id) REFERENCES bulletin (id) ON DELETE CASCADE)",
    "CREATE INDEX IF NOT EXISTS ix_bulletin_type ON bulletin (type)",
    "CREATE INDEX IF NOT EXISTS ix_bulletin_author ON bulletin (author)",
    "CREATE INDEX IF NOT EXISTS ix_bulletin_ring ON bulletin (ring)",
    "CREATE INDEX IF NOT EXISTS ix_bulletin_ref ON bulletin (ref)",
    "CREATE INDEX IF NOT EXISTS ix_bulletin_expires_at ON bulletin (expires_at)",
    "CREATE INDEX IF NOT EXISTS ix_tombstone_ring ON tombstone (ring)",
    "CREATE INDEX IF NOT EXISTS ix_tombstone_expires_at ON tombstone (expires_at)",
    "CREATE INDEX IF NOT EXISTS ix_airtime_at ON airtime (at)",
    "CREATE INDEX IF NOT EXISTS ix_moderation_expires_at ON moderation (expires_at)",
    "CREATE INDEX IF NOT EXISTS ix_moderation_ring ON moderation (ring)",
    "CREATE INDEX IF NOT EXISTS ix_moderation_log_at ON moderation_log (at)",
    "CREATE INDEX IF NOT EXISTS ix_moderation_log_ring ON moderation_log (ring)",
    "CREATE INDEX IF NOT EXISTS ix_share_ring ON share (ring)",
    "CREATE INDEX IF NOT EXISTS ix_share_created_at ON share (created_at)",
    "CREATE INDEX IF NOT EXISTS ix_tool_state_ring ON tool_state (ring)",
    "CREATE INDEX IF NOT EXISTS ix_tool_loan_ring ON tool_loan (ring)",
    "CREATE INDEX IF NOT EXISTS ix_tool_loan_lent_at ON tool_loan (lent_at)",
    "CREATE INDEX IF NOT EXISTS ix_outbox_send_item_id ON outbox_send (item_id)",
)
#: The tally counts what was ever stored: a board from before the tally counts what it holds.
_SHARE_WHAT_IS_HELD = (
    "INSERT OR IGNORE INTO share (id, ring, type, author, created_at) "
    "SELECT id, ring, type, author, created_at FROM bulletin"
)


def complete_v1(db: sqlite3.Connection) -> None:
    """Add what a board from before some version 1 table (the tally, the outbox) lacks."""
    had_share = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'share'").fetchone()
    for statement in V1_SCHEMA:
        db.execute(statement)
    if had_share is None:
        db.execute(_SHARE_WHAT_IS_HELD)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "indexes for list, read, sync and the tally at 100,000 bulletins",
        (
            complete_v1,
            # `list`: newest first within a ring, with or without a type; `more` goes on from
            # the last one shown (bench/store_scale.py). They make the one-column ring and type
            # indexes redundant.
            "CREATE INDEX ix_bulletin_ring_created ON bulletin (ring, created_at DESC, id)",
            "CREATE INDEX ix_bulletin_ring_type_created "
            "ON bulletin (ring, type, created_at DESC, id)",
            # `read #ref`: an id prefix within a ring. Nothing looks bulletins up by the `ref`
            # column itself (the id prefix serves every length a person types).
            "CREATE INDEX ix_bulletin_ring_id ON bulletin (ring, id)",
            # Sync's view of a ring (its unexpired ids that fit a packet, read from the index
            # alone), its next expiry, and `count`.
            "CREATE INDEX ix_bulletin_ring_expires "
            "ON bulletin (ring, expires_at, id, length(canonical))",
            "DROP INDEX ix_bulletin_ring",
            "DROP INDEX ix_bulletin_type",
            "DROP INDEX ix_bulletin_ref",
            # A re-sent `post` is found by ring, type and a few minutes of created_at: the
            # (ring, type, created_at) index answers it, so the author index only cost space.
            "DROP INDEX ix_bulletin_author",
            # The tally: one ring's shares in one month, counted from the index alone.
            "CREATE INDEX ix_share_ring_created ON share (ring, created_at, type, author)",
            "DROP INDEX ix_share_ring",
            "DROP INDEX ix_share_created_at",
        ),
    ),
    Migration(
        3,
        "ring members: a person's node id bound to their radio key, synced between boards",
        (
            "CREATE TABLE member (ring INTEGER NOT NULL, node VARCHAR NOT NULL, "
            "public_key BLOB NOT NULL, joined BOOLEAN NOT NULL, at INTEGER NOT NULL, "
            "expires_at INTEGER NOT NULL, board_key BLOB NOT NULL, signature BLOB NOT NULL, "
            "PRIMARY KEY (ring, node))",
            "CREATE INDEX ix_member_expires_at ON member (expires_at)",
        ),
    ),
    Migration(
        4,
        "signed tombstones, and the deleted bulletin's bytes for a moderator's undo",
        (
            # SQLite adds a column after the table's constraints: the table is made again, so
            # that it reads exactly as a fresh one. Tombstones from before stay unsigned.
            "ALTER TABLE tombstone RENAME TO tombstone_v3",
            "CREATE TABLE tombstone (id VARCHAR NOT NULL, ring INTEGER NOT NULL, "
            "author VARCHAR NOT NULL, deleted_by VARCHAR, deleted_at INTEGER NOT NULL, "
            "expires_at INTEGER NOT NULL, board_key BLOB, signature BLOB, canonical BLOB, "
            "PRIMARY KEY (id))",
            "INSERT INTO tombstone (id, ring, author, deleted_by, deleted_at, expires_at) "
            "SELECT id, ring, author, deleted_by, deleted_at, expires_at FROM tombstone_v3",
            "DROP TABLE tombstone_v3",
            "CREATE INDEX ix_tombstone_ring ON tombstone (ring)",
            "CREATE INDEX ix_tombstone_expires_at ON tombstone (expires_at)",
        ),
    ),
)
