"""Log lines of the real `meshboard run`: syslog priorities for journald, a timestamp for a person.

The daemon runs as a child process whose stderr is a pipe we made, so JOURNAL_STREAM can name
that pipe's device and inode exactly as systemd names its journal stream.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.logs import JournalFormatter

CANNOT_REACH = "WARNING node.supervisor: cannot reach the radio (attempt 1): cannot open radio at "
STOPPED = "INFO node.daemon: board stopped"
PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ")


def stream_id(fd: int) -> str:
    """What systemd puts in JOURNAL_STREAM for a descriptor: `<st_dev>:<st_ino>`."""
    stat = os.fstat(fd)
    return f"{stat.st_dev}:{stat.st_ino}"


def run_until_it_cannot_reach_the_radio(tmp_path: Path, journal_stream: str | None) -> list[str]:
    """`meshboard run` on a port that does not exist: it logs that, then a SIGTERM stops it."""
    read_end, write_end = os.pipe()
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if journal_stream == "this pipe":
        env["JOURNAL_STREAM"] = stream_id(write_end)
    elif journal_stream is not None:
        env["JOURNAL_STREAM"] = journal_stream
    command = [sys.executable, "-m", "node", "run", "--port", str(tmp_path / "no-radio")]
    command += ["--db", str(tmp_path / "board.db"), "--tz", "UTC"]
    daemon = subprocess.Popen(command, stderr=write_end, env=env)
    os.close(write_end)
    log = b""
    try:
        deadline = time.monotonic() + 30
        while CANNOT_REACH.encode() not in log:
            left = deadline - time.monotonic()
            assert left > 0, f"no 'cannot reach the radio' line in 30 s; log:\n{log.decode()}"
            if select.select([read_end], [], [], left)[0]:
                chunk = os.read(read_end, 65536)
                assert chunk, f"the daemon ended early; log:\n{log.decode()}"
                log += chunk
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        while chunk := os.read(read_end, 65536):  # the daemon has exited: read to the end
            log += chunk
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        os.close(read_end)
    return log.decode().splitlines()


def test_under_journald_every_line_carries_its_syslog_priority_and_no_timestamp(
    tmp_path: Path,
) -> None:
    lines = run_until_it_cannot_reach_the_radio(tmp_path, journal_stream="this pipe")
    for line in lines:
        match = re.fullmatch(r"<(\d)>([A-Z]+) \S+: .*", line)
        assert match is not None, f"not a journald line: {line!r}"
        assert int(match[1]) == PRIORITY[match[2]], line
    assert any(line.startswith("<4>" + CANNOT_REACH) for line in lines), lines
    assert lines[-1] == "<6>" + STOPPED


@pytest.mark.parametrize(
    "journal_stream",
    [None, "0:0"],
    ids=["outside-systemd", "stderr-redirected-away-from-the-journal"],
)
def test_a_person_gets_local_timestamps_and_no_priority_prefix(
    tmp_path: Path, journal_stream: str | None
) -> None:
    lines = run_until_it_cannot_reach_the_radio(tmp_path, journal_stream)
    for line in lines:
        assert TIMESTAMP.match(line), f"no timestamp: {line!r}"
    assert any(line[24:].startswith(CANNOT_REACH) for line in lines), lines
    assert lines[-1][24:] == STOPPED


def test_a_traceback_keeps_the_priority_on_every_line() -> None:
    try:
        raise ValueError("bad frame")
    except ValueError:
        record = logging.LogRecord(
            "node.link", logging.ERROR, __file__, 1, "radio %s failed", ("!5b0a4d01",), True
        )
        record.exc_info = sys.exc_info()
    lines = JournalFormatter().format(record).split("\n")
    assert lines[0] == "<3>ERROR node.link: radio !5b0a4d01 failed"
    assert lines[1] == "<3>Traceback (most recent call last):"
    assert lines[-1] == "<3>ValueError: bad frame"
    assert all(line.startswith("<3>") for line in lines)


@pytest.mark.parametrize(
    ("level", "prefix"),
    [
        (logging.DEBUG, "<7>"),
        (logging.INFO, "<6>"),
        (logging.WARNING, "<4>"),
        (logging.ERROR, "<3>"),
        (logging.CRITICAL, "<2>"),
        (logging.INFO + 5, "<6>"),  # a custom level between INFO and WARNING is not yet a warning
    ],
)
def test_levels_map_to_the_sd_daemon_priorities(level: int, prefix: str) -> None:
    record = logging.LogRecord("node.daemon", level, __file__, 1, "x", (), None)
    assert JournalFormatter().format(record).startswith(prefix)
