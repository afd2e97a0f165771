"""The opt-in ring digest leaves as one broadcast text on the ring's channel, through the client."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from board.config import MeshboardConfig, RingSpec
from board.handheld.commands import BoardConfig
from board.store.bulletins import Store
from node.clock import Clock
from node.daemon import Daemon
from node.link import BROADCAST_NUM
from node.sim.radio import SimulatedRadio
from tests.conftest import HANDHELD

SPEED = 100.0  # the 10-minute interval passes in 6 real seconds
DIGEST = MeshboardConfig(rings=(RingSpec("public", 0, digest=timedelta(minutes=10)),))


def test_new_bulletins_are_broadcast_once_per_interval(tmp_path: Path) -> None:
    # One clock for the board and its radio: the firmware's 2 s between the client's texts
    # and the board's 2.25 s pacing are both counted in it, and the airtime too.
    clock = Clock(speed=SPEED)
    with SimulatedRadio(clock=clock) as radio:
        radio.add_handheld(HANDHELD, "Ana")
        store = Store.open(tmp_path / "board.db")
        daemon = Daemon.assemble(
            radio.port,
            store,
            board=BoardConfig(),
            clock=clock,
            config=DIGEST,
        )
        stop = threading.Event()
        thread = threading.Thread(target=daemon.run, args=(stop,), name="test-daemon")
        thread.start()
        try:
            assert daemon.connected.wait(15)
            for text in ("post meal Soup at the hall", "post meal Stew", "post tool Ladder"):
                radio.receive_text(HANDHELD, text)
            radio.wait_for_texts(HANDHELD, 3)
            radio.wait_for(
                lambda sent: any(t.packet.to == BROADCAST_NUM and t.text for t in sent), timeout=20
            )
            broadcasts = [t for t in radio.transmissions if t.packet.to == BROADCAST_NUM and t.text]
            assert [t.text for t in broadcasts] == ["new: 2 meal, 1 tool (send list)"]
            assert broadcasts[0].packet.channel == 0
            assert not broadcasts[0].packet.want_ack  # nobody would acknowledge a broadcast
            assert not radio.refused  # the replies and the digest all kept the firmware's pace
        finally:
            stop.set()
            thread.join(timeout=15)
            store.close()
    assert not thread.is_alive()
