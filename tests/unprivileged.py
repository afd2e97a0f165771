"""Run a piece of a test as a user without privileges, so permission errors are real.

CI runs as root, and root opens any file whatever its mode. A forked child that gives up
root (setuid to nobody) meets the operating system's own EACCES. Without root the caller's
chmod already does that, and the function runs in the test's own process.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

NOBODY = 65534


def as_unprivileged(work: Callable[[], str]) -> str:
    """`work()` as an unprivileged user; its text result comes back through a pipe."""
    if os.geteuid() != 0:
        return work()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(work().encode("utf-8"))
            code = 0
        except BaseException:
            traceback.print_exc(file=sys.stderr)
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        result = pipe.read().decode("utf-8")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed (see stderr)"
    return result


@contextmanager
def shared_directory() -> Iterator[Path]:
    """A directory under /tmp that the unprivileged user can reach and write (like /tmp)."""
    with tempfile.TemporaryDirectory(prefix="meshboard-shared-") as name:
        os.chmod(name, 0o1777)
        yield Path(name)
