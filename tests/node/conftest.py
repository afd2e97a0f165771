"""Fixtures for tests that run the daemon as a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.daemon_process import DaemonProcess, StartDaemon


@pytest.fixture
def start_daemon() -> Iterator[StartDaemon]:
    """Start `meshboard run` processes; any still running at the end are killed."""
    started: list[DaemonProcess] = []

    def start(port: str, db_path: Path, config: Path | None = None) -> DaemonProcess:
        daemon = DaemonProcess(port, db_path, config)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
        if daemon.process.stderr is not None:
            daemon.process.stderr.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here runs daemons on ptys and simulated clocks, whose timing suffers when
    they compete for the CPU: one xdist worker runs them all in turn while the other runs the
    rest of the suite (tests/board and the CLI)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("node"))
