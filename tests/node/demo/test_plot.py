"""The picture of a spread (`node/demo/plot.py`), drawn from hand-made records: no radios needed."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from node.cli import cli
from node.demo.plot import COLORMAP, MISSED, layout, save_spread_plot, spread_figure
from node.demo.spread import SpreadLink, SpreadNode, SpreadRecord, SpreadTransmission
from tests.pictures import png_size

REPO = Path(__file__).resolve().parents[3]


def street(
    *, origin: str = "board-0", positions: dict[str, tuple[float, float]] | None = None
) -> SpreadRecord:
    """Four boards in a line; Ana by board-0, Ben by board-3, which never got the post."""
    where = positions or {}
    boards = [
        SpreadNode(f"board-{i}", 0x10 + i, "board", where.get(f"board-{i}")) for i in range(4)
    ]
    people = [SpreadNode("Ana", 0x20, "handheld"), SpreadNode("Ben", 0x21, "handheld")]
    links = [SpreadLink(f"board-{i}", f"board-{i + 1}", 0.1, 0.0) for i in range(3)]
    links += [SpreadLink("Ana", "board-0", 0.0, 0.0), SpreadLink("Ben", "board-3", 0.0, 0.0)]
    air = [
        SpreadTransmission(98.5, "Ana", 1.0, board_plane=False, kind="origin"),
        SpreadTransmission(100.5, "board-0", 0.8, board_plane=False, kind="origin"),
        SpreadTransmission(101.0, "board-0", 0.7, board_plane=True, kind="origin"),
        SpreadTransmission(105.0, "board-1", 0.7, board_plane=True, kind="origin"),
        SpreadTransmission(112.0, "board-2", 0.7, board_plane=True, kind="origin"),
    ]
    return SpreadRecord(
        ref="#abcd",
        topology="line",
        loss=0.1,
        seed=7,
        nodes=(*boards, *people),
        links=tuple(links),
        poster="Ana",
        origin=origin,
        sent_at=98.5,
        arrivals={"board-0": 100.0, "board-1": 104.0, "board-2": 111.0, "board-3": None},
        transmissions=tuple(air),
    )


def by_gid(figure: Figure, gid: str) -> list[Artist]:
    return list(figure.findobj(lambda artist: artist.get_gid() == gid))


def one(figure: Figure, gid: str) -> Artist:
    (artist,) = by_gid(figure, gid)
    return artist


def texts(figure: Figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


def test_the_graph_shows_every_board_link_and_handheld_coloured_by_arrival() -> None:
    figure = spread_figure(street())
    boards = one(figure, "boards")
    assert isinstance(boards, PathCollection)
    assert len(boards.get_offsets()) == 4
    colours = [tuple(c) for c in boards.get_facecolors()]
    cmap = colormaps[COLORMAP]
    assert colours[0] == pytest.approx(cmap(0.0))  # first to store it: the start of the scale
    assert colours[2] == pytest.approx(cmap(1.0))  # last to store it: the end of the scale
    assert colours[3] == pytest.approx(to_rgba(MISSED))  # never got it: grey
    links, handheld_links = one(figure, "links"), one(figure, "handheld-links")
    assert isinstance(links, LineCollection) and isinstance(handheld_links, LineCollection)
    assert (len(links.get_segments()), len(handheld_links.get_segments())) == (3, 2)
    handhelds = one(figure, "handhelds")
    assert isinstance(handhelds, PathCollection) and len(handhelds.get_offsets()) == 2
    labels = texts(figure)
    for label in ("board-0\n+0 s", "board-1\n+4 s", "board-2\n+11 s", "board-3\nnever"):
        assert label in labels
    assert "Ana posted #abcd" in labels and "Ben" in labels
    assert labels.count("10% loss") == 3
    title = figure.get_suptitle()
    assert "4 boards (line), 10% packet loss per link, seed 7" in title
    assert "3 of 4 boards held it" in title


def test_the_time_charts_step_at_each_arrival_and_show_every_frame() -> None:
    figure = spread_figure(street())
    holding = one(figure, "holding")
    assert isinstance(holding, Line2D)
    steps = list(zip(holding.get_xdata(), holding.get_ydata(), strict=True))
    assert [(x, y) for x, y in steps if 0 <= x <= 11] == [(0.0, 1), (4.0, 2), (11.0, 3)]
    assert steps[-1][1] == 3  # board-3 never got it

    def bars(kind: str) -> int:
        found = figure.findobj(lambda a: str(a.get_gid()).endswith(f":{kind}"))
        return sum(len(c.get_paths()) for c in found if isinstance(c, PolyCollection))

    assert (bars("board"), bars("other")) == (3, 2)
    board_0 = one(figure, "air:board-0:board")
    assert isinstance(board_0, PolyCollection)
    (x0, _), *_ = board_0.get_paths()[0].vertices
    assert x0 == pytest.approx(1.0)  # drawn in seconds after board-0 stored the post
    stored = one(figure, "stored")
    assert isinstance(stored, PathCollection) and len(stored.get_offsets()) == 3
    assert any("simulated seconds" in ax.get_xlabel() for ax in figure.axes)


def test_a_street_is_laid_out_from_the_posting_end_with_people_beside_their_board() -> None:
    where = layout(street(origin="board-3"))
    assert [where[f"board-{i}"] for i in (3, 2, 1, 0)] == [
        (0.0, 0.0),
        (1.0, 0.0),
        (2.0, 0.0),
        (3.0, 0.0),
    ]
    assert where["Ben"][0] == where["board-3"][0] and where["Ben"][1] < 0
    assert where["Ana"][0] == where["board-0"][0] and where["Ana"][1] < 0


def test_boards_that_are_not_one_street_stand_on_a_circle() -> None:
    ring = dataclasses.replace(
        street(), links=(*street().links, SpreadLink("board-3", "board-0", 0.1, 0.0))
    )
    where = layout(ring)
    assert [math.hypot(*where[f"board-{i}"]) for i in range(4)] == pytest.approx([1.0] * 4)
    assert len({where[f"board-{i}"] for i in range(4)}) == 4


def test_places_from_the_mesh_are_kept_and_drawn_to_scale() -> None:
    places = {
        "board-0": (0.1, 0.2),
        "board-1": (0.4, 0.5),
        "board-2": (0.7, 0.3),
        "board-3": (0.9, 0.9),
    }
    record = street(positions=places)
    where = layout(record)
    assert {name: where[name] for name in places} == places
    graph = next(ax for ax in spread_figure(record).axes if ax.get_gid() == "graph")
    assert graph.get_aspect() == 1.0


def test_the_picture_is_a_png(tmp_path: Path) -> None:
    out = tmp_path / "spread.png"
    save_spread_plot(street(), out)
    width, height = png_size(out)
    assert 1000 <= width <= 2000 and 700 <= height <= 1400


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("nowhere/spread.png", "Error: cannot write {path}: no folder {parent}"),
        ("spread.bmp", "Error: cannot draw a .bmp picture; use .png, .svg or .pdf"),
    ],
)
def test_a_plot_that_cannot_be_written_is_refused_before_the_demo_runs(
    tmp_path: Path, name: str, error: str
) -> None:
    path = tmp_path / name
    result = CliRunner().invoke(cli, ["demo", "--plot", str(path)])
    assert result.exit_code == 1
    assert result.output == error.format(path=path, parent=path.parent) + "\n"
    assert not path.exists()


def test_without_matplotlib_plot_says_how_to_install_it(tmp_path: Path) -> None:
    """In a fresh interpreter where `import matplotlib` fails as it does when the package is
    not installed (a None entry in sys.modules raises ModuleNotFoundError). A subprocess,
    because this process has matplotlib and node.demo.plot imported already, and Python hands
    out cached modules without looking at the parent's entry again."""
    out = tmp_path / "spread.png"
    script = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from node.cli import cli; cli(['demo', '--plot', sys.argv[1]])"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "Error: --plot needs matplotlib, which is not installed here (no module 'matplotlib'): "
        "pip install 'meshboard[plot]'\n"
    )
    assert done.stdout == ""  # refused before the demo started
    assert not out.exists()
