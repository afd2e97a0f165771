"""`meshboard status` against what a real daemon on a simulated radio wrote, and without one."""

from __future__ import annotations

import json
import os
import re
import select
import time
import tty
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.cli import cli
from node.health import DaemonState, DaemonStatus, Liveness, assess, status_path
from node.sim.radio import ChannelSpec, RadioProfile, SimulatedRadio, node_id
from tests.node.daemon_process import StartDaemon

HANDHELD = 0x1234ABCD
TWO_RINGS = RadioProfile(channels=(ChannelSpec(), ChannelSpec("street", bytes(range(16)))))


def rings_file(tmp_path: Path, street_channel: int) -> Path:
    """A configuration with the public ring and the ring `street`."""
    path = tmp_path / "meshboard.toml"
    path.write_text(
        '[[ring]]\nname = "public"\nchannel = 0\n'
        f'[[ring]]\nname = "street"\nchannel = {street_channel}\n'
    )
    return path


def status(db: Path, *args: str, config: Path | None = None) -> tuple[int, str]:
    options = [] if config is None else ["--config", str(config)]
    result = CliRunner().invoke(cli, [*options, "status", "--db", str(db), "--tz", "UTC", *args])
    return result.exit_code, result.output


def status_json(db: Path, config: Path | None = None) -> tuple[int, dict[str, Any]]:
    code, output = status(db, "--json", config=config)
    return code, json.loads(output)


def test_without_a_daemon_status_says_so_and_exits_3(tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    assert status(db) == (
        3,
        "daemon:      not running (no daemon has written a status here)\n"
        f"database:    {db} (does not exist)\n"
        f"status file: {db}.status.json (none)\n",
    )
    assert not db.exists(), "status must not create a database"

    config = rings_file(tmp_path, street_channel=2)
    posted = CliRunner().invoke(
        cli, ["--config", str(config), "post", "tool", "Ladder", "--ring", "2", "--db", str(db)]
    )
    assert posted.exit_code == 0, posted.output
    assert status(db, config=config) == (
        3,
        "daemon:      not running (no daemon has written a status here)\n"
        "airtime:     0.0 s in the last hour; budget 180 s for sync, 360 s in all\n"
        "bulletins:   street: 1\n"
        f"database:    {db}\n"
        f"status file: {db}.status.json (none)\n",
    )


def test_status_of_a_serving_daemon_and_after_it_stops(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    db = tmp_path / "board.db"
    config = rings_file(tmp_path, street_channel=1)
    with SimulatedRadio(profile=TWO_RINGS) as radio:
        radio.add_handheld(HANDHELD, "Ana")
        daemon = start_daemon(radio.port, db, config)
        daemon.wait_for_log("serving")
        radio.receive_text(HANDHELD, "post meal Soup at the hall", channel=0)
        radio.receive_text(HANDHELD, "!post tool Ladder", channel=1, direct=False)
        # The second reply goes out only after the first one's airtime is booked.
        radio.wait_for_texts(HANDHELD, 2, timeout=30)

        code, report = status_json(db, config)
        assert code == 0, report
        assert (report["running"], report["serving"]) == (True, True)
        assert report["summary"] == f"serving (pid {daemon.pid})"
        written = report["daemon"]
        assert written["pid"] == daemon.pid
        assert written["state"] == "connected"
        assert written["node_id"] == node_id(radio.node_num)
        assert written["port"] == radio.port
        assert written["connected_since"] is not None
        assert written["last_heard"] is not None
        assert written["last_error"] is None
        assert written["outbox_depth"] >= 0
        assert report["bulletins"] == {"0": 1, "1": 1}
        assert report["rings"] == [
            {"ring": "public", "channel": 0, "bulletins": 1},
            {"ring": "street", "channel": 1, "bulletins": 1},
        ]
        assert 0 < report["airtime"]["used_s"] < report["airtime"]["budget_s"] == 180.0
        assert report["database"] == str(db)
        assert report["status_file"] == str(status_path(db))

        code, text = status(db, config=config)
        assert code == 0, text
        lines = text.splitlines()
        assert lines[0] == f"daemon:      serving (pid {daemon.pid})"
        assert lines[1].startswith(
            f"radio:       {node_id(radio.node_num)} on {radio.port}, connected since "
        )
        assert lines[2].startswith("last heard:  ")
        assert re.fullmatch(r"outbox:      \d+ waiting", lines[3])
        assert re.fullmatch(
            r"airtime:     \d+\.\d s in the last hour; budget 180 s for sync, 360 s in all",
            lines[4],
        )
        assert lines[5:8] == [
            "bulletins:   public: 1, street: 1",
            "last error:  none",
            f"database:    {db}",
        ]

        assert daemon.stop() == 0

    code, report = status_json(db)
    assert code == 3
    assert (report["running"], report["serving"]) == (False, False)
    assert report["summary"] == "not running (stopped)"
    assert report["daemon"]["state"] == "stopped"
    assert report["daemon"]["last_heard"] >= written["last_heard"]  # ACKs may still arrive
    assert report["daemon"]["last_error"] is None
    assert report["bulletins"] == {"0": 1, "1": 1}


def test_a_daemon_still_opening_its_radio_exits_4_and_once_killed_3(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    db = tmp_path / "board.db"
    # A serial port where nothing answers: the daemon waits for the radio's handshake.
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        daemon = start_daemon(os.ttyname(slave), db)
        readable, _, _ = select.select([master], [], [], 30)
        assert readable, "the daemon never tried to wake the radio"
        os.read(master, 64)

        code, text = status(db)
        assert code == 4, text
        assert text.splitlines()[:2] == [
            f"daemon:      running, starting (pid {daemon.pid})",
            f"radio:       radio on {os.ttyname(slave)}, not connected",
        ]

        daemon.kill()
        code, text = status(db)
        assert code == 3, text
        assert text.splitlines()[0] == (
            f"daemon:      not running (pid {daemon.pid} is gone: killed or crashed)"
        )
    finally:
        os.close(master)
        os.close(slave)


def test_a_status_file_left_empty_by_a_power_cut_means_not_running(tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    status_path(db).write_bytes(b"")
    code, text = status(db)
    assert code == 3
    assert text.splitlines()[0] == "daemon:      not running (its status file is unreadable)"


def test_a_status_nobody_updates_is_not_believed(tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    now = datetime.now(UTC)
    # Our own pid is alive, as a reused pid would be; only the status's age gives it away.
    stale = DaemonStatus(
        pid=os.getpid(),
        state=DaemonState.CONNECTED,
        started_at=now - timedelta(hours=1),
        updated_at=now - timedelta(minutes=2, seconds=5),
        connected_since=now - timedelta(hours=1),
    )
    status_path(db).write_text(stale.model_dump_json(), encoding="utf-8")
    code, text = status(db)
    assert code == 3
    assert text.splitlines()[0] == (
        f"daemon:      not running (no status update for 2 min: pid {os.getpid()} hung?)"
    )


def status_until(db: Path, done: Callable[[int, dict[str, Any]], bool]) -> dict[str, Any]:
    """The daemon writes its status every few seconds: wait for the one a test is about."""
    deadline = time.monotonic() + 30
    while True:
        code, report = status_json(db)
        if done(code, report):
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"status never got there; last: {code} {report}")
        time.sleep(0.2)


def test_a_daemon_waiting_for_its_radio_says_why_and_serves_once_it_is_plugged_in(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    db = tmp_path / "board.db"
    port = tmp_path / "ttyUSB9"  # nothing there yet
    daemon = start_daemon(str(port), db)
    daemon.wait_for_log("cannot reach the radio")
    waiting = status_until(db, lambda _, report: report["daemon"]["last_error"] is not None)
    assert status_json(db)[0] == 4
    assert waiting["summary"] == f"running, starting (pid {daemon.pid})"
    assert f"cannot open radio at {port}: " in waiting["daemon"]["last_error"]

    with SimulatedRadio() as radio:
        port.symlink_to(radio.port)  # plugged in: the udev name appears
        daemon.wait_for_log("serving")
        serving = status_until(db, lambda code, _: code == 0)
        assert serving["daemon"]["node_id"] == node_id(radio.node_num)
        assert daemon.stop() == 0


def test_a_live_daemon_that_cannot_write_its_status_is_not_called_hung() -> None:
    """A folder remounted read-only: the status stops changing while the daemon serves."""
    now = datetime.now(UTC)
    stale = DaemonStatus(
        pid=os.getpid(),
        state=DaemonState.CONNECTED,
        started_at=now - timedelta(hours=1),
        updated_at=now - timedelta(minutes=3),
    )
    verdict = assess(stale, now, writable=lambda: False)
    assert verdict.liveness is Liveness.DEGRADED
    assert verdict.summary == (
        f"running (pid {os.getpid()}), but it cannot write its status: the folder is "
        "read-only or full; its last status is 3 min old"
    )
    assert assess(stale, now, writable=lambda: True).liveness is Liveness.NOT_RUNNING


def test_a_daemon_that_cannot_store_exits_5_and_says_why(tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    now = datetime.now(UTC)
    degraded = DaemonStatus(
        pid=os.getpid(),
        state=DaemonState.CONNECTED,
        started_at=now - timedelta(hours=1),
        updated_at=now,
        connected_since=now - timedelta(hours=1),
        storage="database or disk is full",
        storage_since=now - timedelta(minutes=4),
    )
    status_path(db).write_text(degraded.model_dump_json(), encoding="utf-8")
    code, text = status(db)
    assert code == 5
    lines = text.splitlines()
    assert lines[0] == (
        f"daemon:      running but cannot store: database or disk is full (pid {os.getpid()}); "
        "it answers 'cannot store' instead of ok"
    )
    assert any(line.startswith("storage:     cannot store since ") for line in lines)
