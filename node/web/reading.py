"""The web page's read-only view of the board's database, through the standard library's sqlite3.

`meshboard web` must stay under 60 MB resident on a Pi Zero 2, and the store's SQLAlchemy and
SQLModel cost about 32 MB of that for a process that only ever reads. So the web page reads
here, with plain parameterised SQL over a connection opened `mode=ro`: the web process cannot
write the daemon's database, whatever a request carries.

What a reader shows is exactly what `board.store.bulletins.Store` shows a person: the same
conditions as `Store._shown` (unexpired, of the ring, not removed by a moderator of that ring;
a deleted bulletin has no row left, its tombstone keeps it out), the same order, and the same
errors for a ref; tool states, loans and the tally as `ToolStore` and `tally_period` read them.
tests/node/test_web_reading.py holds the two side by side over a busy board.

One reader per request (`BoardReader.open`, then `close`): its own connection and one read
transaction, so a page's queries all see one moment of the board, each request sees the newest,
and waitress's threads share nothing (sqlite3 refuses a connection used from another thread).
In WAL mode a reader never waits for the daemon's writes; hold one only for a request, as an
open read keeps the daemon from checkpointing the WAL past it. The daemon migrates the schema;
a reader refuses any version but this code's (`WrongSchema`) rather than misread it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from types import TracebackType

from board.bulletin import Bulletin, readable_bulletins
from board.errors import AmbiguousRef, BoardError, DatabaseUnavailable, NotFound
from board.lending import stored_state
from board.refs import MAX_MATCHES, distinct_refs, normalise_ref
from board.store.migrations import MIGRATIONS
from board.tally import Period, Tally, counted, window
from board.when import unix_seconds
from board.wire.tools import ToolStateMsg

#: The schema version this code reads: the last migration's (`board.store.schema` stamps it).
SCHEMA = MIGRATIONS[-1].version
#: How the `moderation` table stores a removal: `board.wire.moderation.Action.REMOVE`, whose
#: module loads the `cryptography` package (8 MB here) for its signatures, which nothing here
#: checks (tests/node/test_web_reading.py holds the two equal).
REMOVED = 1
#: Page cache per connection, as the daemon's (`board.store.database`): the kernel caches the
#: file anyway, and four request threads each with SQLite's default 2 MiB would cost the Pi.
CACHE_KIB = 512

#: `Store._shown` without the expiry: the ring's bulletins no moderator of that ring removed.
_OF_RING = (
    "ring = :ring AND NOT EXISTS (SELECT 1 FROM moderation WHERE moderation.id = bulletin.id "
    "AND moderation.ring = bulletin.ring AND moderation.action = :removed)"
)
#: The expiry, with `likely` as `Store._shown` says it: SQLite then walks a ring newest first.
_UNEXPIRED = "likely(expires_at > :now) AND "
_SELECT = "SELECT id, canonical FROM bulletin WHERE "
_ACTIVE = _SELECT + _UNEXPIRED + _OF_RING + " ORDER BY created_at DESC, id"
_PREFIX = " AND id >= :prefix AND id < :beyond ORDER BY id LIMIT :most"
_BY_PREFIX = _SELECT + _OF_RING + _PREFIX
_BY_PREFIX_UNEXPIRED = _SELECT + _UNEXPIRED + _OF_RING + _PREFIX
_TOOL_STATE = "SELECT state FROM tool_state WHERE bulletin_id = ?"
_SHARES = "FROM share WHERE ring = :ring AND created_at >= :start AND created_at < :end"
_BY_TYPE = f"SELECT type, count(*) {_SHARES} GROUP BY type"
_POSTERS = f"SELECT count(DISTINCT author) {_SHARES}"
_LOANS = (
    "SELECT count(*) FROM tool_loan WHERE lent_at >= :start AND lent_at < :end AND ring = :ring"
)


class WrongSchema(BoardError):
    """The database's schema is not the one this meshboard reads (the daemon migrates it)."""


class BoardReader:
    """One request's read-only look at the board's database (see the module's docstring)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: Path) -> BoardReader:
        """A reader of the database at `path`, in a read transaction of its own; DatabaseUnavailable
        if it cannot be read, WrongSchema if it is of another version than this code's."""
        try:
            # isolation_level None: the BEGIN is ours, and the end is the connection's close.
            uri = path.resolve().as_uri() + "?mode=ro"
            db = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise _unavailable(path, error) from error
        try:
            db.execute(f"PRAGMA cache_size = -{CACHE_KIB:d}")
            db.execute("BEGIN")
            found = int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as error:
            db.close()
            raise _unavailable(path, error) from error
        if found != SCHEMA:
            db.close()
            raise _wrong_schema(path, found)
        return cls(db)

    def close(self) -> None:
        """End the read transaction and the connection."""
        self._db.close()  # a read-only transaction has nothing to commit

    def __enter__(self) -> BoardReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def active(self, now: datetime, ring: int) -> list[Bulletin]:
        """`Store.active(now, ring=ring)`: the ring's shown bulletins, newest created first (ties
        by id), leaving out (and logging) a stored one that today's rules refuse."""
        return readable_bulletins(self._db.execute(_ACTIVE, self._shown(now, ring)))

    def get(self, ref_or_id: str, ring: int, *, now: datetime | None = None) -> Bulletin:
        """`Store.get(ref_or_id, ring, now=now)`: the one shown bulletin of the ring whose id
        starts with the ref; NotFound or AmbiguousRef as the store says them, and with `now` an
        expired one is not found. There is no search of every ring: the page names its rings."""
        prefix = normalise_ref(ref_or_id)
        statement = _BY_PREFIX if now is None else _BY_PREFIX_UNEXPIRED
        values = {**self._shown(now, ring), "prefix": prefix, "beyond": prefix + "~"}
        rows = self._db.execute(statement, {**values, "most": MAX_MATCHES}).fetchall()
        if not rows:
            raise NotFound(f"no bulletin #{prefix}")
        if len(rows) > 1:
            raise AmbiguousRef(prefix, distinct_refs([row[0] for row in rows], prefix))
        return Bulletin.from_canonical_bytes(rows[0][1])

    def tool_state(self, bulletin_id: str) -> ToolStateMsg | None:
        """`ToolStore.get`: the tool's current state; None means nobody lent it (it is free)."""
        row = self._db.execute(_TOOL_STATE, (bulletin_id,)).fetchone()
        return None if row is None else stored_state(bulletin_id, row[0])

    def tally(self, period: Period, ring: int) -> Tally:
        """`tally_period` with the tool library's loans (`loans_between`), as the handheld's
        `tally` counts them."""
        start, end = window(period)
        values = {"ring": ring, "start": start, "end": end}
        by_type = {str(t): int(n) for t, n in self._db.execute(_BY_TYPE, values)}
        posters = int(self._db.execute(_POSTERS, values).fetchone()[0])
        loans = int(self._db.execute(_LOANS, values).fetchone()[0])
        return counted(period, ring, by_type, posters, loans)

    @staticmethod
    def _shown(now: datetime | None, ring: int) -> dict[str, int]:
        values = {"ring": ring, "removed": REMOVED}
        return values if now is None else {**values, "now": unix_seconds(now)}


def _unavailable(path: Path, error: sqlite3.Error) -> DatabaseUnavailable:
    if not path.exists():
        return DatabaseUnavailable(f"no database at {path} (the daemon creates it)")
    return DatabaseUnavailable(
        f"cannot read database {path}: {error}; `meshboard doctor` checks it"
    )


def _wrong_schema(path: Path, found: int) -> WrongSchema:
    if found > SCHEMA:
        return WrongSchema(
            f"database {path} has schema v{found}, newer than this meshboard's v{SCHEMA}: "
            "upgrade meshboard"
        )
    had = f"schema v{found}" if found else "no schema version"
    return WrongSchema(
        f"database {path} has {had}, and the web page reads v{SCHEMA} only: start the daemon "
        "(`meshboard run`) once, which migrates it"
    )
