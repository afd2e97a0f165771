"""The daemon's health, written where `meshboard status` can read it while the daemon runs.

The daemon keeps a `Health` current (connected since when, last packet heard, last error, outbox
depth); `StatusFile` writes it as JSON next to the database (`<db>.status.json`) on every change
and every HEARTBEAT seconds. A file rather than a row in the board's database: the daemon then
never takes SQLite's write lock, nor pays a synchronous=FULL fsync, for something that is stale
a minute later and worthless after a power cut, and a reader can never slow the daemon down.
`os.replace` makes each write atomic, so a reader sees the previous status or the next one.

A status file outlives its daemon (kill -9 writes nothing), so `assess` never trusts it alone:
it is believed only while it is fresh and its pid is alive.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.clock import SYSTEM_CLOCK, Clock
from node.link import LinkError

if TYPE_CHECKING:  # paho loads only in a daemon that bridges, not in every command
    from node.bridge.broker import BrokerStatus

logger = logging.getLogger(__name__)

#: Seconds between status writes while nothing changes: a live daemon's file is never older.
HEARTBEAT = 5.0
#: A status older than this is not believed, whatever its pid (pids are reused).
STALE_AFTER = timedelta(seconds=30)
#: Every status is written as this many bytes (padded with blanks, which JSON ignores), so a
#: status can be rewritten in place, in blocks the file already has, when the disk is full.
STATUS_BYTES = 4096
MAX_ERROR_CHARS = 200


class DaemonState(enum.StrEnum):
    STARTING = "starting"  # opening the radio
    CONNECTED = "connected"  # serving
    DISCONNECTED = "disconnected"  # lost the radio
    STOPPED = "stopped"  # the daemon ended (cleanly or not: see last_error)


class DaemonStatus(BaseModel):
    """What the daemon writes and `meshboard status` reads.

    To report something new, add a field with a default: an older status file still reads, and
    a newer one's unknown fields are ignored. Counts that only grow can go in `counters` instead
    (`Health.count`), with no change here.
    """

    model_config = ConfigDict(extra="ignore")

    pid: int
    state: DaemonState
    started_at: datetime
    updated_at: datetime
    port: str | None = None
    node_id: str | None = None
    connected_since: datetime | None = None
    last_heard: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    outbox_depth: int = 0
    counters: dict[str, int] = Field(default_factory=dict)
    #: Why the board cannot store now (a full disk, a read-only file system, its database
    #: deleted under it); None while it can. It answers "cannot store" instead of `ok`.
    storage: str | None = None
    storage_since: datetime | None = None
    brokers: list[BrokerReport] = Field(default_factory=list)  # the bridge's, if any


class BrokerReport(BaseModel):
    """One MQTT broker the board's bridged rings meet through (node/bridge), as of a write."""

    url: str
    connected: bool = False
    connected_since: datetime | None = None
    last_message_at: datetime | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    last_error: str | None = None

    @classmethod
    def of(cls, status: BrokerStatus) -> BrokerReport:
        error = None if status.last_error is None else status.last_error[:MAX_ERROR_CHARS]
        return cls(
            url=status.url,
            connected=status.connected,
            connected_since=status.connected_since,
            last_message_at=status.last_message_at,
            bytes_in=status.bytes_in,
            bytes_out=status.bytes_out,
            messages_in=status.messages_in,
            messages_out=status.messages_out,
            last_error=error,
        )


def status_path(db_path: Path) -> Path:
    """Next to the database, so every command's `--db` finds its daemon's status."""
    return db_path.with_name(db_path.name + ".status.json")


Listener = Callable[[bool], None]


class Health:
    """The daemon's vital signs, safe to update from any thread.

    Every change tells the listeners; `flush=True` asks them to write before returning. Only
    the daemon's own thread flushes, and only where it holds no lock: a flush samples the
    probes (the outbox's depth takes the outbox's lock).
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock.now()
        self._status = DaemonStatus(
            pid=os.getpid(), state=DaemonState.STARTING, started_at=now, updated_at=now
        )
        self._probes: dict[str, Callable[[], object]] = {}
        self._listeners: list[Listener] = []

    def probe(self, field: str, read: Callable[[], object]) -> None:
        """Sample `read()` into `field` at every snapshot (for values that change often)."""
        if field not in DaemonStatus.model_fields:
            raise ValueError(f"DaemonStatus has no field {field!r}")
        self._probes[field] = read

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def note(self, **fields: object) -> None:
        """Set fields that the daemon's owner knows, such as the port; written soon."""
        unknown = set(fields) - set(DaemonStatus.model_fields)
        if unknown:
            raise ValueError(f"DaemonStatus has no fields {sorted(unknown)}")
        self._change(flush=False, **fields)

    def connected(self, node_id: str) -> None:
        now = self._clock.now()
        self._change(state=DaemonState.CONNECTED, node_id=node_id, connected_since=now)

    def disconnected(self, reason: str) -> None:
        self._note_error(reason)
        self._change(state=DaemonState.DISCONNECTED, connected_since=None, flush=False)

    def heard(self) -> None:
        """A text or board-plane packet arrived from the mesh."""
        self._change(last_heard=self._clock.now())

    def storage(self, problem: str | None) -> None:
        """The board cannot store (`problem`), or can again (None)."""
        with self._lock:
            if problem == self._status.storage:
                return
            since = None if problem is None else self._clock.now()
        self._change(storage=problem, storage_since=since)

    def error(self, message: str) -> None:
        """Something went wrong that an operator should see; written soon, not at once."""
        self._note_error(message)
        self._change(flush=False)

    def count(self, counter: str, by: int = 1) -> None:
        """Add to a named counter (reconnects, retries…); shown by `meshboard status`."""
        with self._lock:
            counters = self._status.counters
            counters[counter] = counters.get(counter, 0) + by
        self._change(flush=False)

    def stopped(self, error: str | None = None) -> None:
        if error is not None:
            self._note_error(error)
        self._change(state=DaemonState.STOPPED, connected_since=None)

    def snapshot(self) -> DaemonStatus:
        """The status as of now, probes sampled (outside our lock, so probes may take theirs)."""
        sampled = {field: read() for field, read in self._probes.items()}
        with self._lock:
            return self._status.model_copy(
                update={**sampled, "updated_at": self._clock.now()}, deep=True
            )

    def _note_error(self, message: str) -> None:
        with self._lock:
            self._status.last_error = message[:MAX_ERROR_CHARS]
            self._status.last_error_at = self._clock.now()

    def _change(self, *, flush: bool = True, **fields: object) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self._status, name, value)
        for listener in list(self._listeners):
            listener(flush)


class ErrorLogHandler(logging.Handler):
    """Every warning or error the daemon logs, from any module, becomes its `last_error`."""

    def __init__(self, health: Health) -> None:
        super().__init__(level=logging.WARNING)
        self._health = health

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._health.error(record.getMessage())
        except Exception:  # a logging handler must never raise into the code that logged
            self.handleError(record)


class StatusFile:
    """Keeps a daemon's status file current while the daemon runs; the last write says stopped.

    Use as a context manager around the daemon's run: an exception leaving it becomes the
    status's last error.
    """

    def __init__(self, path: Path, health: Health, *, heartbeat: float = HEARTBEAT) -> None:
        self.path = path
        self._health = health
        self._heartbeat = heartbeat
        self._write_lock = threading.Lock()
        self._failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-file", daemon=True)

    def __enter__(self) -> StatusFile:
        self.write()
        self._health.subscribe(self._on_change)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._health.unsubscribe(self._on_change)
        self._health.stopped(None if exc is None else describe(exc))
        self.write()

    def write(self) -> None:
        """Write the current status atomically (temp file, then rename over the old one), or,
        when that fails for want of space, over the old one in place."""
        with self._write_lock:
            data = self._health.snapshot().model_dump_json(indent=2).encode("utf-8") + b"\n"
            data = data.ljust(STATUS_BYTES)
            try:
                self._replace(data)
            except OSError as error:
                try:
                    self._overwrite(data)  # a full disk: the old file's blocks are still ours
                except OSError:
                    # Warn once: a warning becomes the last error, which asks for another write.
                    if not self._failing:
                        logger.warning("cannot write status %s: %s", self.path, error)
                    self._failing = True
                    return
            if self._failing:
                logger.info("writing status %s again", self.path)
            self._failing = False

    def _replace(self, data: bytes) -> None:
        temp = self.path.with_name(self.path.name + ".tmp")
        # Created with the umask's mode, as the database was: whoever may read the database may
        # read its status. No fsync: a status is worthless after power loss.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)
            raise

    def _overwrite(self, data: bytes) -> None:
        """Rewrite the existing file without growing it (a reader may see it half-written for
        a moment, and reads again)."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            if os.fstat(fd).st_size < len(data):
                raise OSError(f"{self.path} is too short to rewrite in place")
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def _on_change(self, flush: bool) -> None:
        if flush:
            self.write()
        else:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._heartbeat)
            self._wake.clear()
            if not self._stop.is_set():
                self.write()


def describe(error: BaseException) -> str:
    """An exception as one line for the status: the message, with the type for the unexpected."""
    message = str(error)
    if isinstance(error, LinkError) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class UnreadableStatus(Exception):
    """A status file that is there but cannot be read or is not a status (a power cut can
    leave it empty: it is written without fsync)."""


def read_status(path: Path) -> DaemonStatus | None:
    """The status a daemon last wrote, or None if there is none."""
    try:
        return DaemonStatus.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as error:
        raise UnreadableStatus(f"cannot read {path}: {error}") from error


class Liveness(enum.IntEnum):
    """How a daemon is doing; the values are `meshboard status`'s exit codes."""

    SERVING = 0
    NOT_RUNNING = 3
    NOT_CONNECTED = 4
    DEGRADED = 5  # running, but it cannot store (or cannot write its status) now


@dataclass(frozen=True)
class Assessment:
    liveness: Liveness
    summary: str  # one line for a person: what is going on, and why we think so


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def assess(
    status: DaemonStatus | None,
    now: datetime,
    *,
    alive: Callable[[int], bool] = pid_alive,
    stale_after: timedelta = STALE_AFTER,
    writable: Callable[[], bool] = lambda: True,
) -> Assessment:
    """Whether a daemon is serving, from its last status, the time and whether its pid lives.

    `writable` tells whether the daemon could write its status now: a live pid with a stale
    status in a folder nobody can write to is a daemon that cannot report, not a hung one.
    """
    if status is None:
        return Assessment(Liveness.NOT_RUNNING, "not running (no daemon has written a status here)")
    if status.state is DaemonState.STOPPED:
        return Assessment(Liveness.NOT_RUNNING, "not running (stopped)")
    if not alive(status.pid):
        return Assessment(
            Liveness.NOT_RUNNING, f"not running (pid {status.pid} is gone: killed or crashed)"
        )
    age = now - status.updated_at
    if age > stale_after:
        if not writable():
            return Assessment(
                Liveness.DEGRADED,
                f"running (pid {status.pid}), but it cannot write its status: the folder is "
                f"read-only or full; its last status is {age_text(age)} old",
            )
        return Assessment(
            Liveness.NOT_RUNNING,
            f"not running (no status update for {age_text(age)}: pid {status.pid} hung?)",
        )
    if status.storage is not None:
        return Assessment(
            Liveness.DEGRADED,
            f"running but cannot store: {status.storage} (pid {status.pid}); "
            "it answers 'cannot store' instead of ok",
        )
    if status.state is DaemonState.CONNECTED:
        return Assessment(Liveness.SERVING, f"serving (pid {status.pid})")
    return Assessment(Liveness.NOT_CONNECTED, f"running, {status.state} (pid {status.pid})")


def age_text(age: timedelta) -> str:
    """A duration as a person reads it at a glance: 12 s, 4 min, 3 h, 2 d."""
    seconds = max(0, int(age.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
