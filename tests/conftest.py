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
from node.clock import Clock
from node.daemon import Daemon
from node.sim.radio import ChannelSpec, RadioProfile, SimulatedRadio
from node.supervisor import SupervisorConfig

HANDHELD = 0x1234ABCD
OTHER_HANDHELD = 0x0BADCAFE
BOARD_TZ = ZoneInfo("Europe/Berlin")
#: Simulated seconds per real second for a board and its radio: the firmware's 2 s between
#: texts and the board's 2.25 s pacing hold in their shared clock, while a test waits 0.2 s.
SPEED = 10.0
#: The board node fixture serves three rings, so tests can post and list on channels 0-2.
THREE_RINGS = MeshboardConfig(
    rings=(RingSpec("public", 0), RingSpec("garden", 1), RingSpec("elders", 2))
)
#: A radio with a channel for each of those rings (each private one with its own key), and a
#: fourth that the board does not serve.
THREE_CHANNELS = RadioProfile(
    channels=(
        ChannelSpec(),
        ChannelSpec("garden", bytes(range(16))),
        ChannelSpec("elders", bytes(range(16, 32))),
        ChannelSpec("outside", bytes(range(32, 48))),
    )
)


@dataclass
class BoardNode:
    radio: SimulatedRadio
    daemon: Daemon
    store: Store
    db_path: Path

    def ask(self, text: str, *, sender: int = HANDHELD, channel: int = 0) -> str:
        """Send a command as a handheld and return the board's next reply to it (always a
        direct message). On channel 0 a direct message; on a private ring's channel a `!`
        command on the channel, since a direct message is always the public ring's (PKI
        direct messages arrive on channel 0: firmware Router.cpp perhapsDecode)."""
        before = len(self.radio.texts_to(sender))
        if channel == 0:
            self.radio.receive_text(sender, text, direct=True)
        else:
            self.radio.receive_text(sender, f"!{text}", channel=channel, direct=False)
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
    clock = Clock(speed=SPEED)
    radio.use_clock(clock)  # the radio's firmware counts its 2 s in the board's time
    db_path = tmp_path / "board.db"
    store = Store.open(db_path)
    daemon = Daemon.assemble(
        radio.port,
        store,
        board=BoardConfig(tz=BOARD_TZ),
        clock=clock,
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
        SimulatedRadio(profile=THREE_CHANNELS if config is THREE_RINGS else None) as radio,
        running_board(radio, tmp_path, config=config, supervision=supervision) as (node, _, _),
    ):
        assert node.daemon.connected.wait(15), "daemon did not connect to the simulated radio"
        yield node
