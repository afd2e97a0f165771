"""The board's SQLite file, checked without changing it.

`meshboard doctor` looks at someone's database: it must never create the file, a table, or
migrate anything. So this opens the file with plain sqlite3 in `mode=rw`, which never creates
it (the store's `Store.open` would), and the only write is a transaction that is rolled back.

The checks that need an open connection are in `CONNECTION_CHECKS`, run in order; one more
finding about the file (a schema version, say) is one more function there.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from board.store.schema import LATEST, schema_version
from node.doctor.findings import Finding, Status, fail, ok, size_text, warn

#: Below this much free space on the database's disk, warn. The board's own file grows by
#: kilobytes a day, but SQLite needs room for its WAL and for copies while it checkpoints, and
#: on a Pi the same SD card holds the journal and apt's cache: when the card fills up, every
#: write fails and the board can no longer acknowledge a post. 100 MB is days of headroom for
#: the system's logs, and a few minutes' work to free.
MIN_FREE_BYTES = 100_000_000
#: How long the write probe waits for the daemon's write lock: the daemon holds it for one
#: short transaction at a time, so a lock held longer than this is worth a word.
BUSY_TIMEOUT = 2.0
#: The systemd service's user (firmware_notes/raspberry-pi.md).
SERVICE_USER = "meshboard"

ConnectionCheck = Callable[[sqlite3.Connection, Path], Finding]


@dataclass(frozen=True)
class Commands:
    """Commands the fixes name; the caller knows the port and options the person used."""

    start: str  # starts the board on this database: `meshboard run --port P --db D`
    rerun: str  # repeats the check as the board's own user: `sudo -u meshboard meshboard ...`


def check_database(
    path: Path,
    commands: Commands,
    *,
    min_free: int = MIN_FREE_BYTES,
    busy_timeout: float = BUSY_TIMEOUT,
) -> list[Finding]:
    """Findings about the database at `path` and the disk it is on."""
    missing = _missing(path, commands)
    if missing is not None:
        return [missing, _disk(path, min_free)]
    findings = [ok("database", f"{path}, {size_text(_size(path))}")]
    try:
        with _connect(path, busy_timeout) as connection:
            for check in CONNECTION_CHECKS:
                finding = check(connection, path)
                findings.append(finding)
                if finding.check == "integrity" and finding.status != Status.OK:
                    break  # a damaged file: the other answers would only repeat it
    except sqlite3.Error as error:
        findings.append(
            fail("database", f"cannot open {path}: {error}", _chown(path), f"or: {commands.rerun}")
        )
    return [*findings, _disk(path, min_free)]


def _missing(path: Path, commands: Commands) -> Finding | None:
    """None when the file is there; else why not, and whether the board could create it."""
    try:
        if path.is_file():
            return None
        exists = path.exists()
    except PermissionError:
        return fail(
            "database",
            f"cannot reach {path}: permission denied for user {_user()}",
            commands.rerun,
        )
    if exists:
        return fail(
            "database",
            f"{path} is not a file",
            f"rmdir {path}   # if it is an empty directory; else name a file with --db",
        )
    parent = _nearest_dir(path)
    if not os.access(parent, os.W_OK | os.X_OK):
        return fail(
            "database",
            f"no database at {path}, and user {_user()} cannot create it in {parent}",
            f"sudo install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0750 {path.parent}",
            f"or: {commands.rerun}",
        )
    return warn(
        "database",
        f"no database at {path} yet; the board's first start creates it",
        f"{commands.start}   # creates it; or give the board's own file with --db",
    )


def _connect_uri(path: Path) -> str:
    # mode=rw: open read-write (read-only if the OS forbids writing), never create the file.
    return f"file:{quote(str(path.resolve()))}?mode=rw"


@contextlib.contextmanager
def _connect(path: Path, busy_timeout: float) -> Iterator[sqlite3.Connection]:
    # isolation_level=None: no transaction starts unless we say BEGIN.
    connection = sqlite3.connect(
        _connect_uri(path), uri=True, timeout=busy_timeout, isolation_level=None
    )
    try:
        yield connection
    finally:
        connection.close()


def integrity(connection: sqlite3.Connection, path: Path) -> Finding:
    """`PRAGMA integrity_check`: every page, index and constraint of the file."""
    try:
        rows = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as error:  # "file is not a database", "malformed", ...
        rows = [str(error)]
    if rows == ["ok"]:
        return ok("integrity", "PRAGMA integrity_check: ok")
    problems = f"{rows[0]}" + (f" (+{len(rows) - 1} more)" if len(rows) > 1 else "")
    return fail("integrity", f"the file is damaged: {problems}", *_recover(path))


def writable(connection: sqlite3.Connection, path: Path) -> Finding:
    """A write transaction that is rolled back: the board can store what people post.

    It rewrites the header's user_version with the value it already has, the smallest write
    SQLite has, and never commits it.
    """
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            connection.execute(f"PRAGMA user_version = {int(version)}")
        finally:
            connection.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return warn(
                "writable",
                "another process held the write lock all the time the check waited",
                "meshboard status   # is the daemon busy or hung?",
            )
        return fail(
            "writable",
            f"user {_user()} cannot write {path}: {error}",
            _chown(path),
            f"or, for a board you run by hand: sudo chown $USER {path}",
        )
    return ok("writable", "a write transaction works (rolled back)")


def schema(connection: sqlite3.Connection, path: Path) -> Finding:
    """The schema version against this meshboard's: older migrates on start, newer is refused."""
    try:
        found = schema_version(connection)
    except sqlite3.DatabaseError as error:
        return fail("schema", f"cannot read the schema version: {error}", *_recover(path))
    if found == 0:
        return ok("schema", f"empty; the board's first start creates schema v{LATEST}")
    if found == LATEST:
        return ok("schema", f"v{found}, this meshboard's")
    if found < LATEST:
        return warn(
            "schema",
            f"v{found}: the board's next start migrates it to v{LATEST}, keeping a copy "
            f"at {path.name}.v{found}.bak",
            f'nothing to do; to keep a copy of your own: sqlite3 {path} ".backup {path}.bak"',
        )
    return fail(
        "schema",
        f"v{found} is newer than this meshboard's v{LATEST}: it will refuse the database",
        "upgrade meshboard (pipx upgrade meshboard), or restore the copy made before the upgrade",
    )


#: The checks that need the open file, in order; a damaged file stops the rest.
CONNECTION_CHECKS: tuple[ConnectionCheck, ...] = (integrity, schema, writable)


def _disk(path: Path, min_free: int) -> Finding:
    where = _nearest_dir(path).resolve()  # "." says nothing about which disk
    free = shutil.disk_usage(where).free
    if free < min_free:
        return warn(
            "disk",
            f"only {size_text(free)} free on the disk of {where}: writes fail when it is full",
            "sudo journalctl --vacuum-size=50M && sudo apt-get clean",
            f"du -xh {where} | sort -h | tail   # what else fills it",
        )
    return ok("disk", f"{size_text(free)} free on the disk of {where}")


def _recover(path: Path) -> tuple[str, ...]:
    """Stop the board, rescue what SQLite can still read, put it in place (or a backup)."""
    recovered = f"{path}.recovered"
    return (
        "sudo systemctl stop meshboard",
        f'sqlite3 {path} ".recover" | sqlite3 {recovered}',
        f'sqlite3 {recovered} "PRAGMA integrity_check"   # must say ok',
        f"mv {path} {path}.broken && rm -f {path}-wal {path}-shm",
        f"sudo install -o {SERVICE_USER} -g {SERVICE_USER} -m 0640 {recovered} {path}",
        "sudo systemctl start meshboard",
        "or restore a backup: firmware_notes/raspberry-pi.md, section 7",
    )


def _chown(path: Path) -> str:
    return f"sudo chown {SERVICE_USER}:{SERVICE_USER} {path}"


def _size(path: Path) -> int:
    """The file and its WAL: what the board's data takes on the card."""
    total = 0
    for name in (str(path), f"{path}-wal"):
        with contextlib.suppress(OSError):
            total += os.stat(name).st_size
    return total


def _nearest_dir(path: Path) -> Path:
    """The closest directory of `path` that exists: where the file would be created."""
    for candidate in (path.parent, *path.parent.parents):
        with contextlib.suppress(OSError):
            if candidate.is_dir():
                return candidate
    return Path("/")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name, as in some containers
        return str(os.getuid())
