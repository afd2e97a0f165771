"""Fixtures for tests that run daemons: as real processes, or in-process on a simulated mesh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from board.handheld.commands import BoardConfig
from board.sync.engine import SyncConfig
from node.clock import Clock
from node.demo.neighbourhood import Neighbourhood
from node.sim.mesh import Mesh
from tests.node.daemon_process import DaemonProcess, StartDaemon
from tests.node.meshes import SPEED


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


@pytest.fixture
def mesh(request: pytest.FixtureRequest) -> Iterator[Mesh]:
    """A simulated mesh at `SPEED`, seeded by the test module's `MESH_SEED` (default 11), its
    clock starting at `MESH_START` (default: now)."""
    seed = getattr(request.module, "MESH_SEED", 11)
    start = getattr(request.module, "MESH_START", None)
    with Mesh(clock=Clock(speed=SPEED, start=start), seed=seed) as simulated:
        yield simulated


@pytest.fixture
def hood(request: pytest.FixtureRequest, mesh: Mesh, tmp_path: Path) -> Iterator[Neighbourhood]:
    """Board daemons on `mesh`, syncing the test module's `SYNC_RINGS` (default: ring 0)."""
    rings = getattr(request.module, "SYNC_RINGS", frozenset({0}))
    sync = SyncConfig(rings=rings)
    with Neighbourhood(mesh, tmp_path, board=BoardConfig(), sync=sync) as hood:
        yield hood


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here runs daemons on ptys and simulated clocks, whose timing suffers when
    they compete for the CPU: one xdist worker runs them all in turn while the other runs the
    rest of the suite (tests/board and the CLI)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("node"))
