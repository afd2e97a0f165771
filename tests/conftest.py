"""Shared fixtures: a real board node on a simulated radio over a real pty."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from board.config import MeshboardConfig, RingSpec
from board.handheld.commands import BoardConfig
from board.store.bulletins import Store
from node.daemon import Daemon
from node.sim.radio import SimulatedRadio
from node.supervisor import SupervisorConfig

HANDHELD = 0x1234ABCD
OTHER_HANDHELD = 0x0BADCAFE
BOARD_TZ = ZoneInfo("Europe/Berlin")
FAST_PACING = 0.2  # seconds between replies in tests that are not about pacing
#: The board node fixture serves three rings, so tests can post and list on channels 0-2.
THREE_RINGS = MeshboardConfig(
    rings=(RingSpec("public", 0), RingSpec("garden", 1), RingSpec("elders", 2))
)


@dataclass
class BoardNode:
    radio: SimulatedRadio
    daemon: Daemon
    store: Store
    db_path: Path

    def ask(self, text: str, *, sender: int = HANDHELD, channel: int = 0) -> str:
        """Send a direct message as a handheld and return the board's next reply to it."""
        before = len(self.radio.texts_to(sender))
        self.radio.receive_text(sender, text, channel=channel, direct=True)
        return self.radio.wait_for_texts(sender, before + 1)[before]


@contextmanager
def running_board(
    radio: SimulatedRadio,
    tmp_path: Path,
    *,
    config: MeshboardConfig | None = THREE_RINGS,
    supervision: SupervisorConfig | None = None,
) -> Iterator[tuple[BoardNode, threading.Thread, threading.Event]]:
    """A board daemon on `radio`, not necessarily connected yet; stopped (promptly) at the end.

    Yields the node, the daemon's thread and the event that stops it, for tests of stopping.
    """
    radio.add_handheld(HANDHELD, "Ana")
    radio.add_handheld(OTHER_HANDHELD, "Bo")
    db_path = tmp_path / "board.db"
    store = Store.open(db_path)
    daemon = Daemon.assemble(
        radio.port,
        store,
        board=BoardConfig(tz=BOARD_TZ),
        text_interval=FAST_PACING,
        supervision=supervision,
        config=config,
    )
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), name="test-daemon")
    thread.start()
    try:
        yield BoardNode(radio, daemon, store, db_path), thread, stop
    finally:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "daemon did not stop"


@pytest.fixture
def board_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BoardNode]:
    """A connected board node on a fresh simulated radio, serving the test module's
    `BOARD_RINGS` (default: three rings; None: the public ring alone) and supervised by its
    `SUPERVISION` (default: the daemon's own)."""
    config = getattr(request.module, "BOARD_RINGS", THREE_RINGS)
    supervision = getattr(request.module, "SUPERVISION", None)
    with (
        SimulatedRadio() as radio,
        running_board(radio, tmp_path, config=config, supervision=supervision) as (node, _, _),
    ):
        assert node.daemon.connected.wait(15), "daemon did not connect to the simulated radio"
        yield node
