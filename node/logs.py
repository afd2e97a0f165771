"""Log lines for whoever reads them: the systemd journal, or a person at a terminal.

Under systemd, stderr is a stream to journald, which stamps each line with its own time and
reads a leading `<N>` (sd-daemon(3)) as the syslog priority. Prefixed lines let
`journalctl -p warning` find the board's warnings and errors and let journalctl colour them;
a timestamp of ours would only repeat journald's. Run by hand, a person wants to see when
each thing happened, so the line starts with the local time instead.

systemd tells a service its stderr goes to the journal with JOURNAL_STREAM=<device>:<inode>
(systemd.exec(5)). The variable is inherited by child processes, including ones whose stderr
was redirected to a file or a pipe, so it counts only while it names the stream we write to.

Written with the standard library alone: python-systemd would need libsystemd's headers to
build on the Pi, for two things a format string does.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

#: Python's levels as syslog priorities (syslog(3)): what journald records as PRIORITY.
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
HUMAN_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
HUMAN_DATE = "%Y-%m-%d %H:%M:%S"


def syslog_priority(levelno: int) -> int:
    """The priority of a level, custom levels rounding to the next standard one below them."""
    for level in sorted(SYSLOG_PRIORITY, reverse=True):
        if levelno >= level:
            return SYSLOG_PRIORITY[level]
    return SYSLOG_PRIORITY[logging.DEBUG]


class JournalFormatter(logging.Formatter):
    """`<N>` before every line of a record, and no timestamp.

    journald's stream protocol ends an entry at each newline, so a traceback becomes one entry
    per line whatever we do. Repeating the priority keeps all of it under `journalctl -p err`,
    in order and readable; squeezing it onto one line would make it hard to read anywhere.
    """

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def human_formatter() -> logging.Formatter:
    """Local time to the millisecond, level, logger, message: for a person at a terminal."""
    return logging.Formatter(HUMAN_FORMAT, datefmt=HUMAN_DATE)


def writes_to_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `stream` is the journal stream systemd gave this process (JOURNAL_STREAM)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # no real descriptor (a test's StringIO)
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def configure_logging(level: int, stream: TextIO | None = None) -> None:
    """Log to stderr (or `stream`) in the format its reader wants; a no-op if already set up."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter() if writes_to_journal(stream) else human_formatter())
    logging.basicConfig(level=level, handlers=[handler])
