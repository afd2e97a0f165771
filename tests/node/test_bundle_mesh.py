"""Bulletins imported from a bundle go on to sync over the simulated mesh like any others.

The import is the real `meshboard import` writing to a board's database file, as an operator at
the Pi would run it, while that board's daemon is running or while it is off.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from board.bulletin import new_bulletin
from board.signing import BoardKey
from board.sync.bundle import encode_bundle
from board.types import TypeRegistry
from node.cli import cli
from node.demo.neighbourhood import BoardNode, Neighbourhood, ask
from node.sim.mesh import Mesh
from tests.node.meshes import board_line

CONVERGE = 30.0  # real seconds


def carried_bundle(mesh: Mesh, path: Path, texts: list[str]) -> set[str]:
    """A bundle from a board far away (another neighbourhood), written to `path`."""
    now = mesh.clock.now()
    bulletins = [
        new_bulletin(TypeRegistry(), type="skill", text=text, author="!0badcafe", ring=0, now=now)
        for text in texts
    ]
    path.write_bytes(encode_bundle(BoardKey.generate(), [0], bulletins, [], now))
    return {b.id for b in bulletins}


def import_file(node: BoardNode, bundle: Path) -> str:
    result = CliRunner().invoke(cli, ["import", str(bundle), "--db", str(node.db_path)])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_bundle_imported_beside_a_running_board_reaches_its_neighbours(
    mesh: Mesh, hood: Neighbourhood, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="board.sync.engine")
    nodes = board_line(hood, 3)
    wanted = carried_bundle(mesh, tmp_path / "far.mbundle", ["Bike repair sat", "Knife sharpening"])
    output = import_file(nodes[0], tmp_path / "far.mbundle")
    assert "2 new, 0 already here" in output
    assert hood.wait_until(lambda: hood.converged(wanted), CONVERGE)
    # The running board noticed the rows and announced them as news, rather than leaving them
    # to the next digest comparison (up to Trickle's two hours away).
    assert "2 items appeared in the store from outside; announcing them" in caplog.text
    person = hood.neighbour(nodes[2])
    assert "Knife sharpening" in ask(person, nodes[2], "list skill")


def test_a_bundle_imported_while_a_board_was_off_syncs_when_it_is_back(
    mesh: Mesh, hood: Neighbourhood, tmp_path: Path
) -> None:
    nodes = board_line(hood, 3)
    hood.stop(nodes[0])
    wanted = carried_bundle(mesh, tmp_path / "far.mbundle", ["Sourdough starter to share"])
    import_file(nodes[0], tmp_path / "far.mbundle")
    assert not wanted & (hood.holdings(nodes[1]) | hood.holdings(nodes[2]))
    hood.start(nodes[0])
    assert hood.wait_until(lambda: hood.converged(wanted), CONVERGE)
