"""Whether the board can store right now: the disk, the file, and what a failure looks like.

A board on a Pi meets storage faults no test of its logic does: the SD card fills up, a file
system turns read-only after an error, someone deletes or replaces the database under the
running daemon. None of them may crash the daemon or let it say `ok` for a post it did not
keep. This module names those faults (`STORAGE_ERRORS`), says in one line what went wrong
(`storage_problem`), tells whether the file at the database's path is still the file the
daemon has open (`DatabaseFile`), and tries a real write to learn when the fault is over
(`can_write`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

from board.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

#: What a failing disk or file raises through the store: SQLite's errors (full, I/O, read-only,
#: locked for too long) as SQLAlchemy wraps them or not, and the OS's own.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.DatabaseError,
    sqlite3.Error,
    DatabaseUnavailable,
    OSError,
)
#: Free bytes the disk must have again before the board trusts it with posts: a probe write
#: can succeed in the WAL's slack while the next post would not.
MIN_FREE_BYTES = 1 << 20


def storage_problem(error: BaseException) -> str:
    """One line for the log and the status: SQLite's own words, not a traceback."""
    orig = getattr(error, "orig", None)
    return str(orig if orig is not None else error).splitlines()[0][:200] or type(error).__name__


@dataclass(frozen=True)
class DatabaseFile:
    """The database file the daemon opened, found again by device and inode.

    After `rm` or a copy over the path, SQLite goes on writing the file it has open, which
    nobody will ever open again: whatever the daemon acknowledges from then on is lost at the
    next restart.
    """

    path: Path
    device: int
    inode: int

    @classmethod
    def of(cls, engine: sqlalchemy.Engine) -> DatabaseFile | None:
        """The file behind `engine`; None for an in-memory database."""
        name = engine.url.database
        if not name or name == ":memory:" or "mode=memory" in name:
            return None
        path = Path(name)
        status = os.stat(path)
        return cls(path, status.st_dev, status.st_ino)

    def moved(self) -> str | None:
        """Why the path no longer names our file, or None while it does."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return f"the database {self.path} was deleted under the running board"
        except OSError as error:
            return f"cannot look at the database {self.path}: {error.strerror or error}"
        if (status.st_dev, status.st_ino) != (self.device, self.inode):
            return f"the database {self.path} was replaced under the running board"
        return None


def rescue(engine: sqlalchemy.Engine, file: DatabaseFile, stamp: str) -> Path | None:
    """Copy the database the daemon still has open to `<path>.rescued-<stamp>` with SQLite's
    online backup: after `rm` the data lives on only in the daemon's open file. None if the
    copy cannot be made (the folder is gone or full too)."""
    target = file.path.with_name(f"{file.path.name}.rescued-{stamp}")
    try:
        source = engine.raw_connection()
        try:
            destination = sqlite3.connect(target)
            try:
                source.driver_connection.backup(destination)  # type: ignore[union-attr]
            finally:
                destination.close()
        finally:
            source.close()
    except STORAGE_ERRORS as error:
        logger.error("could not save a copy of the database to %s: %s", target, error)
        return None
    return target


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `path`."""
    stats = os.statvfs(path.parent if not path.is_dir() else path)
    return stats.f_bavail * stats.f_frsize


def can_write(engine: sqlalchemy.Engine, path: Path | None) -> str | None:
    """None if a real write commits now and the disk has room; else why not.

    The write rewrites the schema version with its own value: a page goes to the WAL and is
    committed, as a post's would, and nothing changes.
    """
    if path is not None:
        try:
            room = free_bytes(path)
        except OSError as error:
            return storage_problem(error)
        if room < MIN_FREE_BYTES:
            return f"only {room // 1024} KiB free on the disk of {path}"
    try:
        with engine.begin() as connection:
            version = connection.exec_driver_sql("PRAGMA user_version").scalar_one()
            connection.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
    except STORAGE_ERRORS as error:
        return storage_problem(error)
    return None
