"""What `meshboard status` reports: the daemon's own status file plus figures from the database.

The daemon knows what only a running process can (connected since when, last packet heard,
outbox depth, last error) and writes it to its status file (`node/health.py`). What the database
holds (airtime used in the last hour, bulletins per ring) is read here, so it is right even
when no daemon runs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from board.airtime import AirtimeBudget
from board.bulletin import MAX_RING
from board.config import DEFAULT_CONFIG, MeshboardConfig
from board.store.bulletins import Store
from node.health import (
    Assessment,
    DaemonState,
    DaemonStatus,
    Liveness,
    UnreadableStatus,
    age_text,
    assess,
    read_status,
    status_path,
)

UNREADABLE = "not running (its status file is unreadable)"
REREAD_AFTER = 0.1  # seconds before an unreadable status is read again


@dataclass(frozen=True)
class Airtime:
    """This board's seconds on air in the budget window, against what it may use."""

    used: float
    budget: float  # what sync may use (replies to people may go on to the hard limit)
    hard_limit: float
    window: float

    @classmethod
    def of(cls, store: Store, now: datetime) -> Airtime:
        # The daemon builds its budget the same way (AirtimeBudget.load with the defaults).
        budget = AirtimeBudget.load(store, now)
        window = budget.window.total_seconds()
        return cls(budget.used(now), budget.limit, budget.hard_fraction * window, window)


@dataclass(frozen=True)
class StatusReport:
    now: datetime
    db_path: Path
    status_path: Path
    daemon: DaemonStatus | None
    assessment: Assessment
    airtime: Airtime | None  # None: there is no database
    bulletins: dict[int, int] | None  # active bulletins per ring that has any
    config: MeshboardConfig = DEFAULT_CONFIG  # names the rings

    @property
    def exit_code(self) -> int:
        return int(self.assessment.liveness)


def gather(db_path: Path, now: datetime, config: MeshboardConfig = DEFAULT_CONFIG) -> StatusReport:
    """Read the status file and the database (never creating either)."""
    path = status_path(db_path)
    try:
        daemon = _read_twice(path)
        assessment = assess(daemon, now, writable=lambda: folder_writable(path.parent))
    except UnreadableStatus:
        # Only a daemon that no longer runs leaves it so: a live one rewrites it within seconds.
        daemon, assessment = None, Assessment(Liveness.NOT_RUNNING, UNREADABLE)
    airtime = bulletins = None
    if db_path.exists():
        store = Store.open(db_path)
        try:
            airtime = Airtime.of(store, now)
            counts = {ring: store.count(ring, now=now) for ring in range(MAX_RING + 1)}
            bulletins = {ring: n for ring, n in counts.items() if n}
        finally:
            store.close()
    return StatusReport(now, db_path, path, daemon, assessment, airtime, bulletins, config)


def _read_twice(path: Path) -> DaemonStatus | None:
    """The status, read again once if unreadable: a daemon on a full disk rewrites it in place,
    and a read may catch it half-written."""
    try:
        return read_status(path)
    except UnreadableStatus:
        time.sleep(REREAD_AFTER)
        return read_status(path)


def folder_writable(folder: Path) -> bool:
    """Whether a file can be written in `folder` now (not a read-only mount, not denied)."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
    return not read_only and os.access(folder, os.W_OK)


def report_json(report: StatusReport) -> dict[str, Any]:
    """The `--json` shape: the verdict, the daemon's status as written, the database's figures."""
    airtime = report.airtime
    return {
        "running": report.assessment.liveness is not Liveness.NOT_RUNNING,
        "serving": report.assessment.liveness is Liveness.SERVING,
        "summary": report.assessment.summary,
        "daemon": None if report.daemon is None else report.daemon.model_dump(mode="json"),
        "airtime": None
        if airtime is None
        else {
            "used_s": round(float(airtime.used), 2),
            "budget_s": airtime.budget,
            "hard_limit_s": airtime.hard_limit,
            "window_s": airtime.window,
        },
        "bulletins": None
        if report.bulletins is None
        else {str(ring): n for ring, n in sorted(report.bulletins.items())},
        "rings": None
        if report.bulletins is None
        else [
            {"ring": report.config.name_of(ring), "channel": ring, "bulletins": n}
            for ring, n in sorted(report.bulletins.items())
        ],
        "database": str(report.db_path),
        "status_file": str(report.status_path),
    }


def report_lines(report: StatusReport, tz: tzinfo) -> list[str]:
    """A short summary for a person, one fact per line."""

    def when(moment: datetime | None) -> str:
        if moment is None:
            return "never"
        local = moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        return f"{local} ({age_text(report.now - moment)} ago)"

    status, liveness = report.daemon, report.assessment.liveness
    lines = [f"daemon:      {report.assessment.summary}"]
    if status is not None:
        radio = f"{status.node_id or 'radio'} on {status.port or '?'}"
        if liveness is not Liveness.NOT_RUNNING and status.state is DaemonState.CONNECTED:
            lines.append(f"radio:       {radio}, connected since {when(status.connected_since)}")
        else:
            lines.append(f"radio:       {radio}, not connected")
        if status.storage is not None and liveness is not Liveness.NOT_RUNNING:
            lines.append(f"storage:     cannot store since {when(status.storage_since)}")
            lines.append(f"             {status.storage}")
        lines.append(f"last heard:  {when(status.last_heard)}")
        if liveness is not Liveness.NOT_RUNNING:
            lines.append(f"outbox:      {status.outbox_depth} waiting")
            for broker in status.brokers:
                state = "connected" if broker.connected else "not connected"
                if broker.connected and broker.connected_since is not None:
                    state += f" since {when(broker.connected_since)}"
                lines.append(f"broker:      {broker.url}, {state}")
                lines.append(
                    f"             last message {when(broker.last_message_at)}; "
                    f"{broker.bytes_in:,} bytes in ({broker.messages_in}), "
                    f"{broker.bytes_out:,} out ({broker.messages_out})"
                )
                if broker.last_error is not None and not broker.connected:
                    lines.append(f"             {broker.last_error}")
    if report.airtime is not None:
        a = report.airtime
        lines.append(
            f"airtime:     {a.used:.1f} s in the last hour; "
            f"budget {a.budget:.0f} s for sync, {a.hard_limit:.0f} s in all"
        )
    if report.bulletins is not None:
        name = report.config.name_of
        per_ring = ", ".join(f"{name(r)}: {n}" for r, n in sorted(report.bulletins.items()))
        lines.append(f"bulletins:   {per_ring or 'none'}")
    if status is not None:
        error = "none"
        if status.last_error is not None:
            error = f"{status.last_error} ({when(status.last_error_at)})"
        lines.append(f"last error:  {error}")
        if status.counters:
            counted = ", ".join(f"{name} {n}" for name, n in sorted(status.counters.items()))
            lines.append(f"counters:    {counted}")
    database = str(report.db_path) + ("" if report.airtime is not None else " (does not exist)")
    lines.append(f"database:    {database}")
    written = " (none)" if status is None else f", updated {when(status.updated_at)}"
    lines.append(f"status file: {report.status_path}{written}")
    return lines
