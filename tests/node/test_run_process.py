"""`meshboard run` as a real process: serves the simulated radio and stops cleanly on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from node.sim.radio import SimulatedRadio

HANDHELD = 0x1234ABCD


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_and_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
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
        )
        try:
            radio.wait_connected(timeout=30)
            radio.receive_text(HANDHELD, "post notice Street party sat")
            [reply] = radio.wait_for_texts(HANDHELD, 1, timeout=30)
            assert reply.startswith("ok #")
            daemon.send_signal(signum)
            _, log = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    assert daemon.returncode == 0, log
    assert "board stopped" in log
