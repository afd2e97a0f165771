"""Boards in-process on a virtual clock: the town bench's footing (bench/town.py).

They are the daemon's store, handler, sync engine and outbox on stations of the simulated mesh,
so a handheld's post must reach every board through real firmware rules, its author must get
the board's answer, and the same seed must replay the same run to the simulated millisecond.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.clock import VirtualClock
from node.demo.inprocess import InProcessBoard
from node.link import BOARD_PORT
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh


def run_street(workdir: Path, seed: int) -> tuple[list[dict[str, float]], list[str], int]:
    """Six boards in a line at 15 % loss; a neighbour posts at the first; one hour."""
    with Mesh(clock=VirtualClock(), seed=seed, telemetry_interval=None) as mesh:
        stations = mesh.add_line(6, loss=0.15)
        assert all(isinstance(s, VirtualHandheld) for s in stations)
        boards = [
            InProcessBoard(mesh, s, workdir / f"board-{i}.db", seed=i)
            for i, s in enumerate(stations)
            if isinstance(s, VirtualHandheld)
        ]
        person = mesh.add_handheld()
        mesh.link(person, stations[0])
        for board in boards:
            board.start()
        mesh.run_until(60)
        person.send_text("post meal Soup at the hall", to=stations[0].node_num)
        mesh.run_until(3600)
        sync_packets = sum(1 for r in mesh.log if r.port == BOARD_PORT)
        for board in boards:
            board.close()
        return [b.figures.stored_at for b in boards], [t.text for t in person.inbox], sync_packets


def test_a_post_by_radio_reaches_every_board_along_a_lossy_street(tmp_path: Path) -> None:
    held, answers, _ = run_street(tmp_path, seed=3)
    assert answers and answers[0].startswith("ok #")
    (bulletin_id,) = held[0]
    assert all(bulletin_id in board for board in held)
    # Each board stored it after the one before could have passed it on, never before.
    assert held[-1][bulletin_id] > held[0][bulletin_id]


def test_the_same_seed_replays_the_same_run(tmp_path: Path) -> None:
    first = run_street(tmp_path / "a", seed=5)
    second = run_street(tmp_path / "b", seed=5)
    assert [sorted(h.values()) for h in first[0]] == [sorted(h.values()) for h in second[0]]
    assert first[2] == second[2]


def test_a_callback_that_fails_stops_the_virtual_run_at_once() -> None:
    with Mesh(clock=VirtualClock(), telemetry_interval=None) as mesh:
        ran: list[float] = []
        mesh.call_at(10.0, lambda: ran.append(mesh.now()))

        def fail() -> None:
            raise ZeroDivisionError("a board's bug")

        mesh.call_at(20.0, fail)
        with pytest.raises(ZeroDivisionError):
            mesh.run_until(30.0)
        assert ran == [10.0]
        assert mesh.now() == 20.0


def test_nothing_may_sleep_on_a_virtual_clock() -> None:
    clock = VirtualClock()
    with pytest.raises(RuntimeError, match="schedule a timer"):
        clock.sleep(1.0)
    clock.advance_to(5.0)
    clock.advance_to(2.0)  # never backwards
    assert clock.monotonic() == 5.0
