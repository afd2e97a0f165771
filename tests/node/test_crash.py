"""kill -9 at any moment loses nothing the board acknowledged (docs/design.md: nothing acknowledged
is lost): every post that got an `ok #ref`, and every bulletin stored from the mesh.

`meshboard run` is a real process on a simulated radio; a handheld streams posts at it and the
process is killed at a different moment in each round, then restarted on the same database.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from meshtastic.protobuf import mesh_pb2

from board.bulletin import Bulletin, new_bulletin
from board.store.bulletins import Store
from board.types import TypeRegistry
from board.wire.codec import Announce, encode
from node.cli import cli
from node.link import BOARD_HOP_LIMIT, BOARD_PORT, BROADCAST_NUM
from node.sim.radio import SimulatedRadio, Transmission, node_id
from tests.node.daemon_process import DaemonProcess, StartDaemon

HANDHELD = 0x1234ABCD
NEIGHBOUR_BOARD = 0x0B0A4D02
POSTS_PER_ROUND = 5
OK = re.compile(r"ok #(\w+) meal: (.+)")


class KillOnReply:
    """Kills the daemon, from the radio's thread, the moment its n-th `ok` goes on the air."""

    def __init__(self, radio: SimulatedRadio) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._left = 0
        radio.on_transmit(self._on_transmit)

    def arm(self, daemon: DaemonProcess, replies: int) -> None:
        with self._lock:
            self._pid, self._left = daemon.pid, replies

    def _on_transmit(self, transmission: Transmission) -> None:
        text = transmission.text
        with self._lock:
            if self._pid is None or text is None or not text.startswith("ok #"):
                return
            self._left -= 1
            if self._left == 0:
                os.kill(self._pid, signal.SIGKILL)
                self._pid = None


def stream_posts(radio: SimulatedRadio, round_: int) -> None:
    """A burst of posts, as fast as a handheld's messages can arrive."""
    for n in range(POSTS_PER_ROUND):
        radio.receive_text(HANDHELD, f"post meal Soup r{round_} n{n}", direct=True)


def neighbour_announce(radio: SimulatedRadio, text: str) -> Bulletin:
    """Another board's bulletin, arriving on the board plane as it would over the air."""
    bulletin = new_bulletin(
        TypeRegistry(),
        type="notice",
        text=text,
        author=node_id(NEIGHBOUR_BOARD),
        ring=0,
        now=datetime.now(UTC),
    )
    packet = mesh_pb2.MeshPacket(
        to=BROADCAST_NUM,
        channel=0,
        id=0x5EED0001,
        hop_limit=BOARD_HOP_LIMIT,
        decoded=mesh_pb2.Data(portnum=BOARD_PORT, payload=encode(Announce.of(bulletin))),
    )
    setattr(packet, "from", NEIGHBOUR_BOARD)
    radio.deliver(packet)
    return bulletin


def integrity(db: Path) -> str:
    """SQLite's own check of every page and index, run as the next process to open it would."""
    connection = sqlite3.connect(db)
    try:
        return "\n".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def test_nothing_acknowledged_is_lost_to_kill_9(tmp_path: Path, start_daemon: StartDaemon) -> None:
    db = tmp_path / "board.db"
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        killer = KillOnReply(radio)

        def serving() -> DaemonProcess:
            daemon = start_daemon(radio.port, db)
            daemon.wait_for_log("serving")
            return daemon

        # Round 0: the instant the first reply is on the air (its airtime not yet booked).
        daemon = serving()
        killer.arm(daemon, 1)
        stream_posts(radio, 0)
        daemon.process.wait(timeout=30)
        assert daemon.process.returncode == -signal.SIGKILL
        gone = CliRunner().invoke(cli, ["status", "--db", str(db)])
        assert gone.exit_code == 3
        assert f"not running (pid {daemon.pid} is gone: killed or crashed)" in gone.output
        assert integrity(db) == "ok"

        # Round 1: just after the third post is committed, its reply and the next still queued.
        daemon = serving()
        stream_posts(radio, 1)
        daemon.wait_for_log("stored bulletin", count=3)
        daemon.kill()
        assert integrity(db) == "ok"

        # Round 2: right after the posts arrive, while the daemon is still taking them in.
        daemon = serving()
        stream_posts(radio, 2)
        daemon.kill()
        assert integrity(db) == "ok"

        # Round 3: the instant the fourth reply is on the air, with a fifth queued behind it.
        daemon = serving()
        killer.arm(daemon, 4)
        stream_posts(radio, 3)
        daemon.process.wait(timeout=30)
        assert integrity(db) == "ok"

        # Round 4: a bulletin from a neighbouring board, the instant it is stored.
        daemon = serving()
        from_mesh = neighbour_announce(radio, "Street party sat")
        daemon.wait_for_log(f"stored bulletin {from_mesh.id}")
        daemon.kill()
        assert integrity(db) == "ok"

        # The board comes back on what is left, and serves it.
        daemon = serving()
        radio.receive_text(HANDHELD, "read #" + from_mesh.ref, direct=True)
        radio.wait_for(lambda sent: any("Street party sat" in (t.text or "") for t in sent), 30)
        assert daemon.stop() == 0
        acknowledged = [OK.fullmatch(text) for text in radio.texts_to(HANDHELD)]

    acked = {match[2]: match[1] for match in acknowledged if match is not None}
    assert len(acked) >= 5, "rounds 0 and 3 alone acknowledge five posts"
    store = Store.open(db)
    try:
        held = {b.text: b for b in store.active(datetime.now(UTC))}
    finally:
        store.close()
    lost = {text: ref for text, ref in acked.items() if text not in held}
    assert not lost, f"acknowledged but lost: {lost}"
    assert all(held[text].ref == ref for text, ref in acked.items())
    assert from_mesh.id in {b.id for b in held.values()}
    assert integrity(db) == "ok"
