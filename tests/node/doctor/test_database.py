"""The doctor's database checks on real SQLite files: healthy, missing, damaged, read-only, busy."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from board.bulletin import new_bulletin
from board.store.bulletins import Store
from board.store.schema import LATEST
from board.types import TypeRegistry
from node.doctor.database import Commands, check_database
from node.doctor.findings import Finding, Status
from tests.unprivileged import as_unprivileged, shared_directory

COMMANDS = Commands(
    start="meshboard run --port /dev/ttyUSB0 --db DB",
    rerun="sudo -u meshboard meshboard doctor --port /dev/ttyUSB0 --db DB",
)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PAGE = 4096


def make_board_db(path: Path, bulletins: int = 40) -> None:
    """A database as the board leaves it: the store's schema, WAL mode, some bulletins."""
    store = Store.open(path)
    for i in range(bulletins):
        text = f"Soup number {i} at the hall, bring a bowl " + "x" * 100
        store.add(
            new_bulletin(
                TypeRegistry(), type="meal", text=text, author="!a1b2c3d4", ring=0, now=NOW
            ),
            NOW,
        )
    store.engine.dispose()


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_healthy_database_is_ok_and_left_exactly_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    make_board_db(path)
    before = digest(path)

    findings = check_database(path, COMMANDS)

    assert [(f.check, f.status) for f in findings] == [
        ("database", Status.OK),
        ("integrity", Status.OK),
        ("schema", Status.OK),
        ("writable", Status.OK),
        ("disk", Status.OK),
    ]
    assert findings[2].summary == f"v{LATEST}, this meshboard's"
    assert findings[0].summary.startswith(f"{path}, ")
    assert findings[0].summary.endswith(" kB")
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.db"]  # no -wal or -shm left


def test_a_missing_database_is_a_warning_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none.db"

    findings = by_check(check_database(path, COMMANDS))

    assert findings["database"].status == Status.WARN
    assert findings["database"].summary == (
        f"no database at {path} yet; the board's first start creates it"
    )
    assert findings["database"].fix == (
        "meshboard run --port /dev/ttyUSB0 --db DB   # creates it; or give the board's own "
        "file with --db",
    )
    assert "integrity" not in findings
    assert findings["disk"].status == Status.OK
    assert not path.exists()


@pytest.mark.parametrize(
    ("user_version", "status", "summary", "fix"),
    [
        (
            0,  # a board from before versioning: its tables and user_version 0 are v1
            Status.WARN,
            f"v1: the board's next start migrates it to v{LATEST}, keeping a copy at "
            "board.db.v1.bak",
            'nothing to do; to keep a copy of your own: sqlite3 {path} ".backup {path}.bak"',
        ),
        (
            LATEST + 1,
            Status.FAIL,
            f"v{LATEST + 1} is newer than this meshboard's v{LATEST}: it will refuse the database",
            "upgrade meshboard (pipx upgrade meshboard), or restore the copy made before the "
            "upgrade",
        ),
    ],
    ids=["older", "newer"],
)
def test_a_database_of_another_schema_says_what_the_board_will_do(
    tmp_path: Path, user_version: int, status: Status, summary: str, fix: str
) -> None:
    path = tmp_path / "board.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE bulletin (id TEXT PRIMARY KEY)")
        db.execute(f"PRAGMA user_version = {user_version}")
        db.commit()
    before = digest(path)
    schema = by_check(check_database(path, COMMANDS))["schema"]
    assert (schema.status, schema.summary) == (status, summary)
    assert schema.fix == (fix.format(path=path),)
    assert digest(path) == before  # the doctor never migrates


def scribble_over_pages(path: Path) -> None:
    """Garbage over every page but the first: the header survives, the b-trees do not."""
    size = path.stat().st_size
    assert size > 4 * PAGE, "the file needs several pages to damage"
    with path.open("r+b") as file:
        for offset in range(PAGE, size, PAGE):
            file.seek(offset + 8)
            file.write(b"\xde\xad\xbe\xef" * 64)


def replace_with_text(path: Path) -> None:
    path.write_bytes(b"this is not a database at all\n" * 200)


@pytest.mark.parametrize("damage", [scribble_over_pages, replace_with_text])
def test_a_damaged_database_fails_with_the_recovery_steps(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    path = tmp_path / "board.db"
    make_board_db(path)
    damage(path)

    findings = by_check(check_database(path, COMMANDS))

    integrity = findings["integrity"]
    assert integrity.status == Status.FAIL
    assert integrity.summary.startswith("the file is damaged: ")
    assert integrity.fix == (
        "sudo systemctl stop meshboard",
        f'sqlite3 {path} ".recover" | sqlite3 {path}.recovered',
        f'sqlite3 {path}.recovered "PRAGMA integrity_check"   # must say ok',
        f"mv {path} {path}.broken && rm -f {path}-wal {path}-shm",
        f"sudo install -o meshboard -g meshboard -m 0640 {path}.recovered {path}",
        "sudo systemctl start meshboard",
        "or restore a backup: firmware_notes/raspberry-pi.md, section 7",
    )
    assert "writable" not in findings  # the damage is the finding; no second opinion on it


def test_little_free_space_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    make_board_db(path, bulletins=1)

    disk = by_check(check_database(path, COMMANDS, min_free=10**18))["disk"]

    assert disk.status == Status.WARN
    assert disk.summary.startswith("only ")
    assert disk.summary.endswith(f" free on the disk of {tmp_path}: writes fail when it is full")
    assert disk.fix[0] == "sudo journalctl --vacuum-size=50M && sudo apt-get clean"


def test_a_write_lock_held_throughout_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    make_board_db(path, bulletins=1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        writable = by_check(check_database(path, COMMANDS, busy_timeout=0.1))["writable"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert writable.status == Status.WARN
    assert writable.fix == ("meshboard status   # is the daemon busy or hung?",)


def test_a_database_this_user_cannot_write_fails_with_chown() -> None:
    """The file belongs to someone else and is read-only for us, as the service's file is
    for a person who runs the doctor under their own name."""
    with shared_directory() as directory:
        path = directory / "board.db"
        make_board_db(path, bulletins=1)
        os.chmod(path, 0o444)

        def check() -> str:
            return json.dumps([f.as_json() for f in check_database(path, COMMANDS)])

        findings = {f["check"]: f for f in json.loads(as_unprivileged(check))}

    assert findings["integrity"]["status"] == "ok"  # it can still be read
    writable = findings["writable"]
    assert writable["status"] == "fail"
    assert "cannot write" in writable["summary"]
    assert writable["summary"].endswith("attempt to write a readonly database")
    assert writable["fix"] == (
        f"sudo chown meshboard:meshboard {path}\n"
        f"or, for a board you run by hand: sudo chown $USER {path}"
    )


def test_a_directory_where_the_file_should_be_fails(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    path.mkdir()
    database = by_check(check_database(path, COMMANDS))["database"]
    assert (database.status, database.summary, database.fix) == (
        Status.FAIL,
        f"{path} is not a file",
        (f"rmdir {path}   # if it is an empty directory; else name a file with --db",),
    )


def test_a_database_behind_a_closed_directory_says_run_as_the_boards_user() -> None:
    """As for a person checking /var/lib/meshboard (0750, the service's) under their own name."""
    with shared_directory() as directory:
        closed = directory / "meshboard"
        closed.mkdir()
        make_board_db(closed / "board.db", bulletins=1)

        def check() -> str:
            return json.dumps([f.as_json() for f in check_database(closed / "board.db", COMMANDS)])

        closed.chmod(0)
        try:
            database = json.loads(as_unprivileged(check))[0]
        finally:
            closed.chmod(0o700)
    assert database["status"] == "fail"
    assert database["summary"].startswith(f"cannot reach {closed}/board.db: permission denied")
    assert database["fix"] == COMMANDS.rerun
