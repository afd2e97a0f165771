"""`meshboard run` as a child process, with its log read as it comes so tests wait on lines."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol


class DaemonProcess:
    """One `meshboard run` (as `python -m node`, so PYTHONPATH picks the code under test)."""

    def __init__(self, port: str, db_path: Path, config: Path | None = None) -> None:
        command = [sys.executable, "-m", "node"]
        command += [] if config is None else ["--config", str(config)]
        command += ["run", "--port", port, "--db", str(db_path)]
        command += ["--tz", "UTC"]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        # Reading all the time also keeps a chatty daemon from blocking on a full pipe.
        self._reader = threading.Thread(target=self._read, name=f"log-{self.pid}", daemon=True)
        self._reader.start()

    @property
    def log(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        """Block until `text` has appeared on `count` log lines; fail if the daemon ends first."""

        def seen() -> int:
            return sum(text in line for line in self._lines)

        with self._changed:
            self._changed.wait_for(lambda: seen() >= count or self._ended, timeout)
            if seen() < count:
                raise AssertionError(f"{text!r} not logged {count} times; log:\n{self.log}")

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is flushed or closed."""
        self.stop(signal.SIGKILL)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the daemon and wait until it has ended and its log is read; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        return code

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()


class StartDaemon(Protocol):
    def __call__(self, port: str, db_path: Path, config: Path | None = None) -> DaemonProcess: ...
