"""Shared fixtures: a real board node on a simulated radio over a real pty."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from board.commands import BoardConfig
from board.config import MeshboardConfig, RingSpec
from board.store import Store
from node.daemon import Daemon
from node.sim.radio import SimulatedRadio

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


@pytest.fixture
def board_node(tmp_path: Path) -> Iterator[BoardNode]:
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        radio.add_handheld(OTHER_HANDHELD, "Bo")
        db_path = tmp_path / "board.db"
        store = Store.open(db_path)
        daemon = Daemon.assemble(
            radio.port,
            store,
            board=BoardConfig(tz=BOARD_TZ),
            text_interval=FAST_PACING,
            config=THREE_RINGS,
        )
        stop = threading.Event()
        thread = threading.Thread(target=daemon.run, args=(stop,), name="test-daemon")
        thread.start()
        assert daemon.connected.wait(15), "daemon did not connect to the simulated radio"
        try:
            yield BoardNode(radio, daemon, store, db_path)
        finally:
            stop.set()
            thread.join(timeout=15)
            assert not thread.is_alive(), "daemon did not stop"
