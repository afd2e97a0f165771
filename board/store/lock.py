"""One daemon per database: an exclusive lock on a file beside it, held while the daemon runs.

Two daemons on one database (each with its own radio) would sign with the same key, write the
same status file and answer the same people twice. The lock is `flock(2)` on `<db>.lock`: the
kernel lets go of it when the process ends however it ends, so a daemon killed with -9 leaves
nothing that blocks its restart. The file itself stays (it holds the last holder's pid, for the
error message); removing it while a daemon runs would let a second daemon lock a new file, so it
is never removed. CLI commands do not take it: they read (and `post` writes) beside a daemon.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from board.errors import BoardError

logger = logging.getLogger(__name__)


class AlreadyServing(BoardError):
    """Another daemon holds this database."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


@contextmanager
def one_daemon(db_path: Path) -> Iterator[None]:
    """Hold the database's daemon lock for the block; AlreadyServing at once if it is held."""
    path = lock_path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise BoardError(f"cannot lock {path}: {error.strerror or error}") from error
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise AlreadyServing(
                f"another meshboard daemon (pid {holder}) is serving {db_path}; "
                "stop it first (sudo systemctl stop meshboard)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        logger.debug("holding %s", path)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
