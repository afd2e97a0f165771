"""The town bench's pictures (`python bench/town.py --plot DIR`); matplotlib is an optional extra.

* DIR/town-spread.png: the town, each board coloured by when it first held the run's first
  bulletin (seconds after its own board stored it); grey crosses never did.
* DIR/town-utilisation.png: the busiest board radio's channel utilisation over a rolling hour,
  minute by minute from the first post, for Meshboard's sync and the two baselines.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from town import BaselineFigures, MeshboardFigures, Town

logger = logging.getLogger("bench.town")


def draw(
    folder: Path,
    town: Town,
    meshboard: MeshboardFigures,
    flood: BaselineFigures,
    push: BaselineFigures,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _spread(folder / "town-spread.png", town, meshboard)
    _utilisation(folder / "town-utilisation.png", meshboard, flood, push)


def _spread(path: Path, town: Town, meshboard: MeshboardFigures) -> None:
    figure = Figure(figsize=(7.5, 6.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for a, b, _ in town.links:
        (xa, ya), (xb, yb) = town.positions[a], town.positions[b]
        axes.plot([xa, xb], [ya, yb], color="#cccccc", linewidth=0.8, zorder=1)
    held = [(i, t) for i, t in enumerate(meshboard.first_held_s) if t is not None]
    cmap = colormaps["viridis"]
    norm = Normalize(0, max((t for _, t in held), default=1.0) or 1.0)
    axes.scatter(
        [town.positions[i][0] for i, _ in held],
        [town.positions[i][1] for i, _ in held],
        c=[cmap(norm(t)) for _, t in held],
        s=70,
        edgecolors="black",
        linewidths=0.5,
        zorder=2,
    )
    never = [i for i, t in enumerate(meshboard.first_held_s) if t is None]
    axes.scatter(
        [town.positions[i][0] for i in never],
        [town.positions[i][1] for i in never],
        marker="x",
        color="grey",
        zorder=2,
    )
    origin = min(held, key=lambda it: it[1])[0] if held else None
    if origin is not None:
        x, y = town.positions[origin]
        axes.annotate("posted here", (x, y), xytext=(6, 6), textcoords="offset points")
    figure.colorbar(ScalarMappable(norm, cmap), ax=axes, label="first held (s after its board)")
    axes.set_title(
        f"{len(town.positions)} boards, {town.diameter} hops across: when each held bulletin 1"
    )
    axes.set_aspect("equal")
    axes.set_xticks([])
    axes.set_yticks([])
    figure.savefig(path, dpi=110, bbox_inches="tight")
    logger.info("drew %s", path)


def _utilisation(
    path: Path, meshboard: MeshboardFigures, flood: BaselineFigures, push: BaselineFigures
) -> None:
    figure = Figure(figsize=(8, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, series in (
        ("Meshboard sync", meshboard.series),
        ("firmware flood, hop limit 7", flood.series),
        ("push to every peer (TC2-BBS)", push.series),
    ):
        axes.plot([m for m, _ in series], [100 * u for _, u in series], label=label)
    axes.set_xlabel("minutes since the first post")
    axes.set_ylabel("busiest radio, rolling hour (%)")
    axes.set_title("Channel utilisation as the firmware counts it")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    logger.info("drew %s", path)
