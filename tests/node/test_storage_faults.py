"""The board's own disk fails under it: a full file system, and its database deleted.

`meshboard run` as a real process on a simulated radio, its database on a real small file
system (a 4 MiB tmpfs mounted for the test), filled up by a file as anything else on the Pi
would. Nothing is acknowledged that is not kept; the daemon never dies of it; `meshboard
status` says why; service comes back by itself when space does.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.sim.radio import SimulatedRadio
from tests.node.daemon_process import StartDaemon

HANDHELD = 0x1234ABCD
REPLY_TIMEOUT = 30.0  # real seconds: the daemon runs on the real clock
CANNOT_STORE = "board cannot store right now (its operator is told); try again later"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system of its own (tmpfs), so filling it fills nothing else."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the file system with one file until it refuses another byte."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (64 * 1024, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"x" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def status(db: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "node", "status", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode, done.stdout + done.stderr


def ask(radio: SimulatedRadio, text: str) -> str:
    before = len(radio.texts_to(HANDHELD))
    radio.receive_text(HANDHELD, text, direct=True)
    return radio.wait_for_texts(HANDHELD, before + 1, timeout=REPLY_TIMEOUT)[before]


def eventually(check: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.2)
    return False


def stored_texts(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return sorted(row[0] for row in connection.execute("SELECT text FROM bulletin"))


def test_a_full_disk_is_answered_not_crashed_on_and_service_resumes_when_space_is_freed(
    small_disk: Path, start_daemon: StartDaemon
) -> None:
    db = small_disk / "board.db"
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        daemon = start_daemon(radio.port, db)
        radio.wait_connected(timeout=30)
        first = ask(radio, "post meal Soup before the disk filled")
        assert first.startswith("ok #")

        filler = fill(small_disk)
        answers = [ask(radio, f"post notice Party number {i}") for i in range(3)]
        assert all(not a.startswith("ok") for a in answers), answers  # never a false ok
        assert CANNOT_STORE in answers
        assert ask(radio, "list").startswith("#")  # reading still works
        code, report = status(db)
        assert code == 5, report
        assert "cannot store" in report and "full" in report

        filler.unlink()
        assert eventually(lambda: status(db)[0] == 0), status(db)
        after = ask(radio, "post meal Soup after the disk was freed")
        assert after.startswith("ok #")
        assert daemon.process.poll() is None  # it never died
        acknowledged = [t for t in radio.texts_to(HANDHELD) if t.startswith("ok #")]
        assert daemon.stop() == 0
    assert len(acknowledged) == 2
    assert stored_texts(db) == ["Soup after the disk was freed", "Soup before the disk filled"]
    assert "Traceback" not in daemon.log
    assert daemon.log.count("cannot store: database or disk is full") == 1


def test_a_database_deleted_under_the_daemon_acknowledges_nothing_more_and_is_rescued(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    db = tmp_path / "board.db"
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        daemon = start_daemon(radio.port, db)
        radio.wait_connected(timeout=30)
        assert ask(radio, "post meal Soup at the hall").startswith("ok #")
        db.unlink()
        for text in ("post notice Lost if acknowledged", "list"):
            assert ask(radio, text) == CANNOT_STORE
        code, report = status(db)
        assert code == 5, report
        assert "was deleted under the running board" in report
        assert daemon.process.poll() is None
        assert daemon.stop() == 0
    [rescued] = tmp_path.glob("board.db.rescued-*")
    assert stored_texts(rescued) == ["Soup at the hall"]
    assert daemon.log.count("was deleted under the running board") == 1
