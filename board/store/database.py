"""Opening the board's SQLite file: the engine, its pragmas, WAL mode and how transactions begin.

Every connection gets the durability pragmas (synchronous=FULL, foreign keys, a busy timeout)
and WAL mode, so that whatever the board acknowledged survives power loss and a reader never
waits for a writer. A transaction that may write takes the write lock at BEGIN, so a
read-then-write never fails half-way; a read-only one (`reader`) takes none.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from board.errors import DatabaseUnavailable

#: How long a step waits for another connection's write lock before it fails. The daemon's
#: thread and its outbox's each write; on a loaded Pi with a slow SD card one may wait seconds
#: for the other's fsync. Waiting is better than failing a step.
BUSY_TIMEOUT = 15.0

_PRAGMAS = (
    f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    # 512 KiB of page cache per connection, not SQLite's 2 MiB: the kernel's page cache holds
    # the file anyway (and gives it back under pressure). At 100,000 bulletins `list` and
    # `read` take as long (bench/store_scale.py), and the daemon's two connections hold 3 MiB
    # less of its resident memory.
    "PRAGMA cache_size=-512",
)

#: Between tries to put a file in WAL mode while another connection holds a lock (seconds).
_WAL_RETRY = 0.05


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Durability pragmas on every connection; the driver leaves BEGIN to `_on_begin`."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _PRAGMAS:
        cursor.execute(pragma)
    _use_wal(cursor)
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Put the file in WAL mode (a no-op once it is), waiting as long as a busy step would.

    Only the first open of a new or pre-WAL file changes the mode, and that needs every other
    connection out of the way. SQLite answers "database is locked" at once there instead of
    waiting out busy_timeout, so a `meshboard post` while the daemon started would fail.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY)


#: The execution option that marks a transaction as reading only (see `reader`).
READ_ONLY = "meshboard_read_only"


def _on_begin(connection: sqlalchemy.Connection) -> None:
    """Take the write lock up front, so a read-then-write transaction never fails half-way;
    a read-only one takes none, so in WAL mode it never waits for a writer.
    """
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def prepare(engine: sqlalchemy.Engine) -> sqlalchemy.Engine:
    """`engine` with this module's pragmas and BEGIN on each of its connections (once)."""
    if engine.dialect.name != "sqlite":
        raise ValueError("the board store needs SQLite")
    if not event.contains(engine, "connect", _on_connect):
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
    return engine


def reader(engine: sqlalchemy.Engine) -> sqlalchemy.Engine:
    """The same engine, for transactions that only read: they take no write lock."""
    return engine.execution_options(**{READ_ONLY: True})


def open_engine(url_or_path: str | Path) -> tuple[sqlalchemy.Engine, str]:
    """An engine for an `sqlite://` URL or a plain file path (its folder made if needed), and
    the database's name for messages."""
    if isinstance(url_or_path, str) and "://" in url_or_path:
        url = make_url(url_or_path)
    else:
        url = URL.create("sqlite", database=str(Path(url_or_path).expanduser()))
    database = url.database or ":memory:"
    if database == ":memory:" or "mode=memory" in database:
        engine = sqlalchemy.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sqlalchemy.create_engine(url, connect_args={"check_same_thread": False})
    return prepare(engine), database


def unavailable(
    database: str, error: sqlite3.Error | sqlalchemy.exc.DBAPIError
) -> DatabaseUnavailable:
    """The one-line error for a database that cannot be opened, with what to run next."""
    reason = str(error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) else error)
    if "locked" in reason:
        reason += f" (held by another program for {BUSY_TIMEOUT:.0f} s)"
    return DatabaseUnavailable(
        f"cannot open database {database}: {reason}; `meshboard doctor` checks it"
    )
