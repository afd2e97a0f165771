"""A board node keeps serving through unplugs, reboots and a radio that goes silent.

The real meshtastic client talks to the simulated radio over a pty; the radio's faults are
played by closing that pty, opening a fresh one behind the same port path, or going quiet.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from board.wire.codec import Announce, decode
from node.link import BOARD_PORT
from node.sim.radio import SimulatedRadio, Transmission
from node.supervisor import SupervisorConfig
from tests.conftest import HANDHELD, OTHER_HANDHELD, BoardNode, running_board

FAST = SupervisorConfig(first_delay=0.05, max_delay=0.2, watchdog=None)
# For the `board_node` fixture: the public ring alone, reconnecting quickly.
BOARD_RINGS = None
SUPERVISION = FAST


def eventually(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait for a condition of the daemon's (it has no event for it) until a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        time.sleep(0.01)


@contextmanager
def running(
    radio: SimulatedRadio, tmp_path: Path, supervision: SupervisorConfig = FAST
) -> Iterator[tuple[BoardNode, threading.Thread, threading.Event]]:
    """A board on `radio` serving the public ring, reconnecting quickly."""
    with running_board(radio, tmp_path, config=None, supervision=supervision) as running:
        yield running


def replies_per_ref(node: BoardNode) -> Counter[str]:
    texts = node.radio.texts_to(HANDHELD) + node.radio.texts_to(OTHER_HANDHELD)
    return Counter(t.split()[1] for t in texts if t.startswith("ok #"))


def test_an_unplugged_radio_is_reconnected_and_answers_again(board_node: BoardNode) -> None:
    ref = board_node.ask("post notice Street party sat").split()[1]
    board_node.radio.unplug()
    board_node.radio.replug()
    board_node.radio.wait_handshakes(2)
    assert ref in board_node.ask("list")
    health = board_node.daemon.link_health
    assert health.reconnects == 1
    assert health.connected_since is not None
    assert health.last_error is not None  # the loss, or an attempt before the replug


def test_every_stored_command_is_answered_once_across_an_unplug(board_node: BoardNode) -> None:
    radio = board_node.radio
    for i in range(4):
        radio.receive_text(HANDHELD, f"post notice Before {i}")
    radio.wait_for_texts(HANDHELD, 1)  # the outbox is now pacing out the other replies
    for i in range(2):
        radio.receive_text(HANDHELD, f"post notice Racing {i}")  # may or may not get through
    radio.unplug()
    # From a second person: one person's nine commands in a minute would meet the rate limit.
    for i in range(2):
        radio.receive_text(OTHER_HANDHELD, f"post notice During {i}")  # the radio keeps them
    radio.replug()
    radio.receive_text(OTHER_HANDHELD, "help")  # handled after every earlier command
    radio.wait_for(lambda sent: any("post <type>" in (t.text or "") for t in sent))
    radio.wait_until(lambda: board_node.daemon.outbox.replies_waiting == 0, timeout=30)

    stored = {b.ref: b.text for b in board_node.store.active(datetime.now(UTC))}
    assert {f"During {i}" for i in range(2)} <= set(stored.values())
    assert replies_per_ref(board_node) == Counter({f"#{ref}": 1 for ref in stored})


def announces_of(transmissions: list[Transmission], text: str) -> int:
    """Board-plane announces of the bulletin whose text is `text` among `transmissions`."""
    count = 0
    for sent in transmissions:
        if sent.packet.decoded.portnum != BOARD_PORT:
            continue
        message = decode(sent.packet.decoded.payload)
        if isinstance(message, Announce) and message.bulletin().text == text:
            count += 1
    return count


def test_a_sync_packet_queued_when_the_radio_goes_is_sent_once_it_is_back(
    board_node: BoardNode,
) -> None:
    """The cable comes out as the radio takes the post's `ok`: the announce, queued behind it
    (replies go first), has not reached the radio."""
    radio = board_node.radio
    radio.unplug_after(lambda sent: (sent.text or "").startswith("ok #"))
    radio.receive_text(HANDHELD, "post notice Seed swap sunday")
    eventually(lambda: len(radio.texts_to(HANDHELD)) == 1 and not radio.plugged_in, "unplugged")
    assert announces_of(radio.transmissions, "Seed swap sunday") == 0  # queued when it went
    radio.replug()
    radio.wait_for(lambda sent: announces_of(sent, "Seed swap sunday") >= 1)
    time.sleep(1.0)  # a second copy would leave about now
    assert announces_of(radio.transmissions, "Seed swap sunday") == 1
    assert len(radio.texts_to(HANDHELD)) == 1
    assert board_node.daemon.link_health.reconnects == 1


def test_a_rebooting_radio_is_reconnected(board_node: BoardNode) -> None:
    board_node.radio.reboot()
    board_node.radio.wait_handshakes(2)
    assert board_node.ask("list") == "no bulletins"
    assert board_node.daemon.link_health.reconnects == 1


def test_the_daemon_waits_for_a_radio_that_is_not_plugged_in_yet(tmp_path: Path) -> None:
    with SimulatedRadio() as radio:
        radio.unplug()
        with running(radio, tmp_path) as (node, _, _):
            eventually(lambda: node.daemon.link_health.last_error is not None, "a failed attempt")
            assert not node.daemon.connected.is_set()
            radio.replug()
            assert node.ask("list") == "no bulletins"
            assert node.daemon.link_health.reconnects == 0  # the first connection is no reconnect


def test_the_watchdog_reconnects_a_radio_that_went_silent(tmp_path: Path) -> None:
    supervision = SupervisorConfig(first_delay=0.05, max_delay=0.2, watchdog=1.0, probe_timeout=0.5)
    with (
        SimulatedRadio(telemetry_interval=0.1) as radio,
        running(radio, tmp_path, supervision) as (node, _, _),
    ):
        assert node.daemon.connected.wait(15)
        # Telemetry keeps a healthy radio's link alive well past the watchdog's limit.
        radio.wait_until(lambda: radio.counters.telemetry_reports >= 20)
        assert radio.counters.handshakes == 1

        radio.go_silent()
        radio.receive_text(HANDHELD, "post notice Heard while silent")
        radio.wait_handshakes(2)  # the watchdog gave up on the link and connected again
        [reply] = radio.wait_for_texts(HANDHELD, 1)
        assert reply.startswith("ok #")
        health = node.daemon.link_health
        assert health.reconnects == 1
        assert health.last_error is not None
        assert health.last_error.startswith("nothing heard from the radio")
        assert health.last_error.endswith("and no answer to a heartbeat")


def test_a_quiet_mesh_is_not_taken_for_a_dead_radio(tmp_path: Path) -> None:
    """No telemetry and nobody talking: the radio answers the watchdog's heartbeats, so the
    board keeps its link (and its sync timers) instead of reconnecting every watchdog period."""
    supervision = SupervisorConfig(first_delay=0.05, max_delay=0.2, watchdog=0.5, probe_timeout=0.5)
    with SimulatedRadio() as radio, running(radio, tmp_path, supervision) as (node, _, _):
        assert node.daemon.connected.wait(15)
        heartbeats = radio.counters.heartbeats
        radio.wait_until(lambda: radio.counters.heartbeats >= heartbeats + 4, timeout=15)
        assert radio.counters.handshakes == 1
        assert node.daemon.link_health.reconnects == 0
        assert node.ask("list") == "no bulletins"


def test_stop_ends_the_daemon_during_a_long_backoff(tmp_path: Path) -> None:
    slow = SupervisorConfig(first_delay=600.0, max_delay=600.0, watchdog=None)
    with SimulatedRadio() as radio, running(radio, tmp_path, slow) as (node, thread, stop):
        assert node.daemon.connected.wait(15)
        radio.unplug()
        eventually(lambda: (node.daemon.link_health.last_error or "").startswith("cannot open"), "")
        stop.set()
        thread.join(timeout=10)  # far less than the 300-600 s backoff
        assert not thread.is_alive()


def test_stop_ends_the_daemon_during_a_handshake_the_radio_never_answers(tmp_path: Path) -> None:
    with SimulatedRadio() as radio:
        radio.hang()
        with running(radio, tmp_path) as (node, thread, stop):
            radio.wait_until(lambda: radio.counters.frames_in >= 1)  # want_config_id sent
            stop.set()
            thread.join(timeout=10)  # the client alone would wait 30 s for the handshake
            assert not thread.is_alive()
            assert not node.daemon.connected.is_set()


def test_stop_ends_the_daemon_while_a_silent_radio_holds_up_a_reply(tmp_path: Path) -> None:
    with (
        SimulatedRadio(tx_queue_len=3) as radio,
        running(radio, tmp_path) as (node, thread, stop),
    ):
        assert node.daemon.connected.wait(15)
        for i in range(6):
            radio.receive_text(HANDHELD, f"post notice Item {i}")
        radio.wait_for_texts(HANDHELD, 1)
        radio.go_silent()  # no more queue status: the client counts the radio's 3 slots down
        # The client counts the slots the radio last reported down; the rest of the replies
        # wait for room that never comes.
        radio.wait_until(lambda: len(radio.texts_to(HANDHELD)) >= 2)
        stop.set()
        thread.join(timeout=15)  # the watchdog is off: nothing else would end that wait
        assert not thread.is_alive()


def client_threads() -> list[threading.Thread]:
    """The meshtastic client's threads of one connection: its reader and its heartbeat timer."""
    return [
        t
        for t in threading.enumerate()
        if t.name == "stream reader" or isinstance(t, threading.Timer)
    ]


def reconnected(node: BoardNode, times: int) -> bool:
    return node.daemon.link_health.reconnects == times and node.daemon.connected.is_set()


def test_reconnecting_leaves_no_client_threads_behind(board_node: BoardNode) -> None:
    before = threading.enumerate()
    assert len(client_threads()) == 2
    for cycle in range(1, 6):
        board_node.radio.unplug()
        board_node.radio.replug()
        # Each cycle's connection, not just its handshake: the next unplug could end a
        # handshake still under way, and the supervisor would simply try again.
        eventually(lambda n=cycle: reconnected(board_node, n), f"reconnect {cycle}")
    assert "post <type>" in board_node.ask("help")
    eventually(
        lambda: len(client_threads()) == 2 and len(threading.enumerate()) <= len(before),
        f"threads back to {before}, not {threading.enumerate()}",
    )
    assert board_node.daemon.link_health.reconnects == 5


@pytest.mark.parametrize(("restart_after", "restarts"), [(600.0, 0), (0.0, 1)])
def test_only_a_long_outage_restarts_the_sync_timers(
    board_node: BoardNode, monkeypatch: pytest.MonkeyPatch, restart_after: float, restarts: int
) -> None:
    """Trickle at its fastest interval costs airtime: worth it after a long outage only."""
    monkeypatch.setattr("node.daemon.SYNC_RESTART_AFTER", restart_after)
    sync = board_node.daemon._sync
    starts: list[datetime] = []
    start = sync.start
    monkeypatch.setattr(
        sync, "start", lambda now, node_id: (starts.append(now), start(now, node_id))
    )
    board_node.radio.unplug()
    board_node.radio.replug()
    eventually(lambda: reconnected(board_node, 1), "reconnect")
    assert board_node.ask("list") == "no bulletins"
    assert len(starts) == restarts
