"""The database's schema version, and bringing an older database up to this code's.

`PRAGMA user_version` holds the version. A board from before versioning has 0 and its tables:
that is version 1. `upgrade` runs whenever a `Store` is made (the daemon's start, every CLI
command), before anything else reads a table:

* an empty database gets today's tables and is stamped LATEST, in one transaction;
* an older one is first copied aside with SQLite's online backup (`<db>.v1.bak`), then each
  pending migration (`board.store.migrations`) runs in ONE transaction with its `user_version` bump.
  SQLite's DDL is transactional, so a crash or a failing step leaves the database at the version
  it had, with all its data;
* a newer one is refused (SchemaTooNew): this code would misread it.

A daemon and a CLI command may open an old database at the same moment: the version is read
again under the write lock (BEGIN IMMEDIATE), so whoever comes second finds the work done.

A few linear, SQLite-only steps do not need Alembic: it would ship a script directory and
alembic_version bookkeeping to every Pi, and still leave the backup and the refusal to us.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import sqlalchemy
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from board.errors import BoardError
from board.store import tables  # noqa: F401  (fills SQLModel.metadata with every table)
from board.store.migrations import MIGRATIONS, Migration

logger = logging.getLogger(__name__)

LATEST = MIGRATIONS[-1].version
#: Every table of the schema, in the order they are created.
TABLES = (
    "bulletin",
    "tombstone",
    "airtime",
    "moderation",
    "moderation_log",
    "member",
    "share",
    "tool_state",
    "tool_loan",
    "subscription",
    "outbox",
    "outbox_send",
)


class SchemaTooNew(BoardError):
    """The database was written by a newer meshboard than this one."""


def upgrade(engine: sqlalchemy.Engine, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Bring the database behind `engine` to the last version of `migrations`."""
    pooled = engine.raw_connection()
    db = pooled.driver_connection
    assert isinstance(db, sqlite3.Connection)
    isolation, db.isolation_level = db.isolation_level, None  # BEGIN and COMMIT are ours
    try:
        _upgrade(db, engine, migrations)
    finally:
        db.isolation_level = isolation
        pooled.close()


def _upgrade(
    db: sqlite3.Connection, engine: sqlalchemy.Engine, migrations: Sequence[Migration]
) -> None:
    latest = migrations[-1].version
    if schema_version(db) == latest:
        return
    path = _file_of(engine)
    with _write_lock(db):
        if _checked_version(db, path, latest) == 0:
            _create(db, engine, latest)
            return
    backup: Path | None = None
    for migration in migrations:
        with _write_lock(db):
            found = _checked_version(db, path, latest)  # another process may have done it
            if found != migration.version - 1:
                continue
            if path is not None and backup is None:
                backup = _backup(path, found)
            for step in migration.steps:
                if isinstance(step, str):
                    db.execute(step)
                else:
                    step(db)
            db.execute(f"PRAGMA user_version = {migration.version:d}")
        logger.info(
            "migrated %s from schema v%d to v%d: %s",
            path or "the in-memory database",
            found,
            migration.version,
            migration.summary,
        )


def _checked_version(db: sqlite3.Connection, path: Path | None, latest: int) -> int:
    found = schema_version(db)
    if found > latest:
        raise SchemaTooNew(
            f"database {path or 'in memory'} has schema v{found}, newer than this meshboard's "
            f"v{latest}: upgrade meshboard, or restore the backup made before the upgrade"
        )
    return found


def schema_version(db: sqlite3.Connection) -> int:
    """The schema version: `user_version`, except that 0 with tables is version 1."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version == 0 and db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone():
        return 1
    return version


@contextmanager
def _write_lock(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction holding the write lock from its start: all of it or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _create(db: sqlite3.Connection, engine: sqlalchemy.Engine, version: int) -> None:
    """Today's tables and indexes, from the models, in an empty database."""
    metadata = SQLModel.metadata
    for name in TABLES:
        table = metadata.tables[name]
        db.execute(str(CreateTable(table).compile(dialect=engine.dialect)))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            db.execute(str(CreateIndex(index).compile(dialect=engine.dialect)))
    db.execute(f"PRAGMA user_version = {version:d}")


def _file_of(engine: sqlalchemy.Engine) -> Path | None:
    """The database file, or None for an in-memory database (there is nothing to keep)."""
    database = engine.url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database:
        return None
    if database.startswith("file:"):  # a URI filename, with its query
        database = unquote(database.removeprefix("file:").split("?")[0])
    return Path(database)


def _backup(path: Path, version: int) -> Path:
    """Copy the database as it is (we hold the write lock: nobody changes it meanwhile)."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    partial = target.with_name(target.name + ".tmp")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:  # the copy's name is on disk before the migration can commit
        os.fsync(directory)
    finally:
        os.close(directory)
    logger.info("kept a copy of %s (schema v%d) in %s before migrating it", path, version, target)
    return target
