"""`meshboard run` as a real process: serves the simulated radio through an unplug, and stops
cleanly on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from node.sim.radio import SimulatedRadio

HANDHELD = 0x1234ABCD


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_through_an_unplug_and_stops_cleanly_on_a_signal(
    tmp_path: Path, signum: int
) -> None:
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node",
                "run",
                "--port",
                radio.port,
                "--db",
                str(tmp_path / "board.db"),
                "--tz",
                "UTC",
            ],
            stderr=subprocess.PIPE,
            text=True,
            # Its own session, as under systemd: the radio becomes its controlling terminal,
            # so unplugging the radio sends it SIGHUP.
            start_new_session=True,
        )
        try:
            radio.wait_connected(timeout=30)
            radio.receive_text(HANDHELD, "post notice Street party sat")
            [reply] = radio.wait_for_texts(HANDHELD, 1, timeout=30)
            assert reply.startswith("ok #")
            radio.unplug()
            radio.replug()
            radio.wait_handshakes(2, timeout=30)
            radio.receive_text(HANDHELD, "list")
            listing = radio.wait_for_texts(HANDHELD, 2, timeout=30)[1]
            assert "Street party sat" in listing
            daemon.send_signal(signum)
            _, log = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    assert daemon.returncode == 0, log
    assert "lost the radio" in log
    assert "reconnected to radio" in log
    assert "board stopped" in log


def test_run_waits_for_a_radio_that_is_not_plugged_in_yet(tmp_path: Path) -> None:
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        radio.unplug()  # its port path does not exist now, as before USB enumeration at boot
        db = str(tmp_path / "board.db")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "node", "run", "--port", radio.port, "--db", db],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert daemon.stderr is not None
            lines = iter(daemon.stderr.readline, "")  # ends if the daemon exits
            attempt = next(line for line in lines if "cannot reach the radio" in line)
            assert f"(attempt 1): cannot open radio at {radio.port}: " in attempt
            radio.replug()
            radio.wait_connected(timeout=30)
            radio.receive_text(HANDHELD, "list")
            assert radio.wait_for_texts(HANDHELD, 1, timeout=30) == ["no bulletins"]
            daemon.send_signal(signal.SIGTERM)
            _, log = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    assert daemon.returncode == 0, log
    assert "Traceback" not in log


def run_command(port: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "node", "run", "--port", port, "--db", str(db), "--tz", "UTC"]


def test_a_second_daemon_on_the_same_database_is_refused_at_once(tmp_path: Path) -> None:
    """Each with its own radio; one line naming the first one's pid. A daemon killed with -9
    leaves no lock behind: the next one starts."""
    db = tmp_path / "board.db"
    with SimulatedRadio() as first_radio, SimulatedRadio(0x5B0A4D02) as second_radio:
        first = subprocess.Popen(run_command(first_radio.port, db), stderr=subprocess.DEVNULL)
        try:
            first_radio.wait_connected(timeout=30)
            second = subprocess.run(
                run_command(second_radio.port, db), capture_output=True, text=True, timeout=5
            )
            assert second.returncode == 1
            assert second.stderr == (
                f"Error: another meshboard daemon (pid {first.pid}) is serving {db}; "
                "stop it first (sudo systemctl stop meshboard)\n"
            )
            assert second_radio.counters.handshakes == 0  # refused before touching its radio
        finally:
            first.kill()
            first.wait()
        again = subprocess.Popen(run_command(second_radio.port, db), stderr=subprocess.DEVNULL)
        try:
            second_radio.wait_connected(timeout=30)
        finally:
            again.send_signal(signal.SIGTERM)
            assert again.wait(timeout=30) == 0
