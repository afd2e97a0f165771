"""`meshboard demo`, the README's first command: a post spreads across a simulated street."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import node.demo.plot
from node.cli import cli
from node.demo.spread import SpreadRecord
from tests.pictures import png_size


def midday_zone() -> str:
    """A time zone where it is now about noon: the demo's clock starts at the real time and
    posts for "tomorrow", so a run near local midnight would rightly answer "today" later."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # hours east of UTC, -12 to 11
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/ names flip the sign


def test_demo_spreads_a_post_from_one_end_of_the_street_to_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run (they take seconds): the story on the terminal, and the picture of it drawn
    from the same record."""
    drawn: list[SpreadRecord] = []
    draw = node.demo.plot.save_spread_plot

    def keep_and_draw(record: SpreadRecord, path: Path) -> None:
        drawn.append(record)  # the real drawing still happens: the PNG is checked below
        draw(record, path)

    monkeypatch.setattr(node.demo.plot, "save_spread_plot", keep_and_draw)
    picture = tmp_path / "spread.png"
    args = ["demo", "--nodes", "4", "--tz", midday_zone(), "--plot", str(picture)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    ref = re.search(r"board-0 → Ana: ok #(\w+) meal tmrw 18:00", result.output)
    assert ref, result.output
    for board in range(4):
        assert f"board-{board} has #{ref[1]}" in result.output
    assert f"board-3 → Ben: #{ref[1]} tmrw 18:00: Soup at the hall" in result.output
    assert f"drew the spread in {picture}\n" in result.output
    assert result.output.endswith("demo done: all 4 boards hold the post\n")

    width, height = png_size(picture)
    assert 1000 <= width <= 2000 and 700 <= height <= 1400

    (spread,) = drawn
    boards = [f"board-{i}" for i in range(4)]
    assert [b.name for b in spread.boards] == boards
    assert (spread.ref, spread.origin, spread.poster) == (f"#{ref[1]}", "board-0", "Ana")
    arrivals = {name: at for name, at in spread.arrivals.items() if at is not None}
    assert sorted(arrivals) == boards  # every board stored it, as the output says
    assert spread.posted_at == arrivals["board-0"] == min(arrivals.values())
    # What the terminal said is what was recorded: seconds after board-0 stored it.
    said = re.findall(r"\+\s*(\d+) s  (board-\d) has", result.output)
    assert {name: float(seconds) for seconds, name in said} == dict(spread.reached())

    street = {frozenset((link.a, link.b)): link.loss for link in spread.links}
    assert street == {
        **{frozenset((f"board-{i}", f"board-{i + 1}")): 0.1 for i in range(3)},
        frozenset(("Ana", "board-0")): 0.0,
        frozenset(("Ben", "board-3")): 0.0,
    }
    # Ana's post went on the air, and every other board heard a neighbour's board-plane frame
    # that ended before it stored the post (its store keeps whole seconds: up to 1 s early).
    assert any(t.sender == "Ana" and not t.board_plane for t in spread.transmissions)
    for name in boards[1:]:
        ends = [(link.a, link.b) for link in spread.links if name in (link.a, link.b)]
        neighbours = {a if b == name else b for a, b in ends}
        assert any(
            t.board_plane and t.sender in neighbours and t.at + t.airtime < arrivals[name] + 1
            for t in spread.transmissions
        ), name
