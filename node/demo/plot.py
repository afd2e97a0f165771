"""Draw a `SpreadRecord`: the mesh as a graph coloured by when each board got the post, and
the spread over simulated time.

matplotlib is an optional extra (`pip install 'meshboard[plot]'`): a board node never draws, and
matplotlib with numpy is far bigger than the rest of Meshboard. Only this module imports it, and
`node/commands/simulation.py` imports this module only when `--plot` is asked for. It builds a
`Figure` and renders it on the Agg canvas directly, never through pyplot: no GUI backend is
chosen, no global figure state is kept, and nothing needs a display (a headless Pi).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from node.demo.spread import SpreadRecord

Point = tuple[float, float]

COLORMAP = "viridis_r"  # early arrivals light (yellow), late ones dark; fine in greyscale too
MISSED = "#c8c8c8"  # a board that never got the post
BOARD_PLANE = "#1f5f8b"  # board-to-board frames on port 384
OTHER_AIR = "#b0b0b0"  # texts, ACKs and routing frames
POSTER = "#d9480f"
LABELLED_LINKS = 14  # more links than this and their loss labels would clutter the graph
DPI = 110


def save_spread_plot(record: SpreadRecord, path: Path) -> None:
    """Write the picture of `record` to `path`; the format follows the suffix (PNG by default)."""
    spread_figure(record).savefig(path, dpi=DPI)


def spread_figure(record: SpreadRecord) -> Figure:
    """The mesh, boards coloured by when they first stored the post; how many boards held it
    over simulated time; who was on the air when.

    A street-like mesh (much wider than tall) is drawn across the top with the two time
    charts below it; a mesh the simulation placed in a square sits left of them.
    """
    where = layout(record)
    xs, ys = [p[0] for p in where.values()], [p[1] for p in where.values()]
    wide = max(xs) - min(xs) > 2.5 * (max(ys) - min(ys))
    if wide:
        figure = Figure(figsize=(13.0, 9.6), layout="constrained")
        grid = figure.add_gridspec(3, 1, height_ratios=(0.8, 1.0, 1.15))
        graph = figure.add_subplot(grid[0])
        holding = figure.add_subplot(grid[1])
        air = figure.add_subplot(grid[2], sharex=holding)
    else:
        figure = Figure(figsize=(14.0, 7.0), layout="constrained")
        grid = figure.add_gridspec(2, 2, width_ratios=(1.0, 1.05), height_ratios=(1.0, 1.15))
        graph = figure.add_subplot(grid[:, 0])
        holding = figure.add_subplot(grid[0, 1])
        air = figure.add_subplot(grid[1, 1], sharex=holding)
    FigureCanvasAgg(figure)
    for ax, gid in ((graph, "graph"), (holding, "holding-chart"), (air, "air-chart")):
        ax.set_gid(gid)

    reached = dict(record.reached())
    cmap = colormaps[COLORMAP]
    norm = Normalize(vmin=0.0, vmax=max([1.0, *reached.values()]))
    _draw_graph(graph, record, where, reached, cmap, norm, equal_aspect=not wide)
    colorbar = figure.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=graph,
        location="right" if wide else "bottom",
        shrink=0.85,
        aspect=12 if wide else 35,
        pad=0.01 if wide else 0.02,
    )
    colorbar.set_label(
        "first stored (s)"
        if wide
        else f"first stored, simulated seconds after {record.origin} took the post"
    )
    _draw_holding(holding, record, reached, cmap, norm)
    _draw_air(air, record, reached, cmap, norm)

    boards = len(record.boards)
    figure.suptitle(
        f"How {record.ref} spread: {boards} boards ({record.topology}), "
        f"{record.loss:.0%} packet loss per link, seed {record.seed}\n"
        f"{_summary(record, reached)}",
        fontsize=13,
    )
    return figure


def _summary(record: SpreadRecord, reached: dict[str, float]) -> str:
    boards = len(record.boards)
    board_plane = [t for t in record.transmissions if t.board_plane]
    airtime = sum(t.airtime for t in board_plane)
    told = f"{len(board_plane)} board-plane frames, {airtime:.1f} s of airtime"
    if len(reached) == boards:
        return f"all {boards} boards held it after {max(reached.values()):.0f} s; {told}"
    return f"{len(reached)} of {boards} boards held it when the record ended; {told}"


# -- the graph -------------------------------------------------------------------------------


def layout(record: SpreadRecord) -> dict[str, Point]:
    """Where to draw each node: the mesh's own positions if it placed every board, else the
    boards in order along a line (when they form one) or on a circle; handhelds beside the
    board they hear, unless the mesh placed them."""
    boards = record.boards
    placed = {b.name: b.position for b in boards if b.position is not None}
    if len(placed) == len(boards):
        where: dict[str, Point] = dict(placed)
        spacing = _typical_link_length(record, where)
    else:
        order = _path_order(record)
        if order is not None:
            where = {name: (float(i), 0.0) for i, name in enumerate(order)}
            spacing = 1.0
        else:
            step = 2 * math.pi / len(boards)
            where = {
                b.name: (math.cos(math.pi / 2 - i * step), math.sin(math.pi / 2 - i * step))
                for i, b in enumerate(boards)
            }
            spacing = 2 * math.sin(step / 2) if len(boards) > 1 else 1.0
    beside: dict[str, int] = defaultdict(int)
    for node in record.nodes:
        if node.kind == "board":
            continue
        if node.position is not None:
            where[node.name] = node.position
            continue
        heard = next((n for n in _neighbours(record, node.name) if n in where), None)
        x, y = where[heard] if heard is not None else (0.0, 0.0)
        shift = beside[heard or ""]
        beside[heard or ""] += 1
        where[node.name] = (x + 0.3 * spacing * shift, y - 0.5 * spacing)
    return where


def _neighbours(record: SpreadRecord, name: str) -> list[str]:
    ends = ((link.a, link.b) for link in record.links)
    return [b if a == name else a for a, b in ends if name in (a, b)]


def _path_order(record: SpreadRecord) -> list[str] | None:
    """The boards in order if their links form one chain (as in the demo's street), else None;
    the chain starts at the end nearer the board that took the post."""
    boards = [b.name for b in record.boards]
    adjacent: dict[str, list[str]] = {name: [] for name in boards}
    for link in record.links:
        if link.a in adjacent and link.b in adjacent:
            adjacent[link.a].append(link.b)
            adjacent[link.b].append(link.a)
    if len(boards) == 1:
        return boards
    ends = [name for name in boards if len(adjacent[name]) == 1]
    if len(ends) != 2 or any(len(n) > 2 for n in adjacent.values()):
        return None
    start = min(ends, key=lambda end: (end != record.origin, boards.index(end)))
    order = [start]
    while len(order) < len(boards):
        step = [n for n in adjacent[order[-1]] if n not in order]
        if not step:
            return None  # a chain plus a separate ring: not one street
        order.append(step[0])
    return order


def _typical_link_length(record: SpreadRecord, where: dict[str, Point]) -> float:
    ends = ((link.a, link.b) for link in record.links)
    lengths = sorted(math.dist(where[a], where[b]) for a, b in ends if a in where and b in where)
    return lengths[len(lengths) // 2] if lengths else 1.0


def _snr_weight(snr: float, low: float, high: float) -> float:
    return 1.0 if high == low else 0.3 + 0.7 * (snr - low) / (high - low)


def _draw_graph(
    ax: Axes,
    record: SpreadRecord,
    where: dict[str, Point],
    reached: dict[str, float],
    cmap: Colormap,
    norm: Normalize,
    *,
    equal_aspect: bool,
) -> None:
    kinds = {n.name: n.kind for n in record.nodes}
    board_links = [link for link in record.links if kinds[link.a] == kinds[link.b] == "board"]
    other_links = [link for link in record.links if link not in board_links]
    spacing = _typical_link_length(record, where)

    # Thicker for a better link: what gets through (1 - loss), and the SNR where it varies.
    snrs = [link.snr for link in board_links]
    low, high = (min(snrs), max(snrs)) if snrs else (0.0, 0.0)
    widths = [
        1.0 + 3.0 * (1 - link.loss) * _snr_weight(link.snr, low, high) for link in board_links
    ]
    ax.add_collection(
        LineCollection(
            [[where[link.a], where[link.b]] for link in board_links],
            linewidths=widths,
            colors="#6b6b6b",
            zorder=1,
            gid="links",
        )
    )
    ax.add_collection(
        LineCollection(
            [[where[link.a], where[link.b]] for link in other_links],
            linewidths=1.0,
            linestyles="dashed",
            colors="#9a9a9a",
            zorder=1,
            gid="handheld-links",
        )
    )
    if len(board_links) <= LABELLED_LINKS:
        for link in board_links:
            (x1, y1), (x2, y2) = where[link.a], where[link.b]
            ax.annotate(
                f"{link.loss:.0%} loss",
                ((x1 + x2) / 2, (y1 + y2) / 2),
                xytext=(0, -6),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8,
                color="#555555",
                zorder=2,
            )

    boards = record.boards
    ax.scatter(
        [where[b.name][0] for b in boards],
        [where[b.name][1] for b in boards],
        s=380,
        c=[cmap(norm(reached[b.name])) if b.name in reached else MISSED for b in boards],
        edgecolors="#222222",
        linewidths=1.2,
        zorder=3,
        gid="boards",
    )
    for board in boards:
        at = reached.get(board.name)
        ax.annotate(
            f"{board.name}\n{'never' if at is None else f'+{at:.0f} s'}",
            where[board.name],
            xytext=(0, 13),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
            linespacing=1.25,
            zorder=4,
        )

    people = [n for n in record.nodes if n.kind == "handheld"]
    ax.scatter(
        [where[p.name][0] for p in people],
        [where[p.name][1] for p in people],
        s=110,
        marker="s",
        c="white",
        edgecolors=[POSTER if p.name == record.poster else "#222222" for p in people],
        linewidths=[2.2 if p.name == record.poster else 1.2 for p in people],
        zorder=3,
        gid="handhelds",
    )
    for person in people:
        x, y = where[person.name]
        posted = person.name == record.poster
        ax.annotate(
            f"{person.name} posted {record.ref}" if posted else person.name,
            (x, y),
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=9,
            color=POSTER if posted else "#222222",
            fontweight="bold" if posted else "normal",
            zorder=4,
        )

    xs = [p[0] for p in where.values()]
    ys = [p[1] for p in where.values()]
    margin = 0.45 * spacing
    ax.set_xlim(min(xs) - margin, max(xs) + margin)
    ax.set_ylim(min(ys) - margin * 1.2, max(ys) + margin)
    if equal_aspect:  # the mesh placed the nodes: distances are radio ranges
        ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()
    ax.set_title(
        "radio links between board nodes (solid) and handhelds (dashed)", fontsize=10, loc="left"
    )


# -- over time -------------------------------------------------------------------------------


def _draw_holding(
    ax: Axes, record: SpreadRecord, reached: dict[str, float], cmap: Colormap, norm: Normalize
) -> None:
    boards = len(record.boards)
    order = sorted(reached.items(), key=lambda item: (item[1], item[0]))
    start, end = _time_range(record, reached)
    times = [start, *(at for _, at in order), end]
    counts = [0, *range(1, len(order) + 1), len(order)]
    ax.step(times, counts, where="post", color="#333333", linewidth=1.8, gid="holding")
    ax.scatter(
        [at for _, at in order],
        range(1, len(order) + 1),
        s=60,
        c=[cmap(norm(at)) for _, at in order],
        edgecolors="#222222",
        zorder=3,
        gid="arrivals",
    )
    span = end - start
    for count, (name, at) in enumerate(order, start=1):
        early = at - start < 0.2 * span  # no room on the left: above the step instead
        ax.annotate(
            f"{name} +{at:.0f} s",
            (at, count),
            xytext=(6, 3) if early else (-7, 2),
            textcoords="offset points",
            ha="left" if early else "right",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(boards, color="#999999", linestyle=":", linewidth=1)
    ax.set_ylim(0, boards + 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("boards holding the post")
    ax.grid(axis="x", color="#e5e5e5")
    ax.tick_params(labelbottom=False)
    ax.set_title(f"boards holding {record.ref} (dotted: all {boards})", fontsize=10, loc="left")


def _draw_air(
    ax: Axes, record: SpreadRecord, reached: dict[str, float], cmap: Colormap, norm: Normalize
) -> None:
    """One row per node, top to bottom: the poster, then the boards in the order they got it;
    each frame it sent is a bar as long as its airtime."""
    posted = record.posted_at
    later = [b.name for b in record.boards if b.name not in reached]
    rows = [record.poster, *sorted(reached, key=lambda n: (reached[n], n)), *later]
    senders = {t.sender for t in record.transmissions}
    rows += [n.name for n in record.nodes if n.name in senders and n.name not in rows]
    y_of = {name: len(rows) - 1 - i for i, name in enumerate(rows)}
    for name, board_plane in itertools.product(rows, (True, False)):
        bars = [
            (t.at - posted, t.airtime)
            for t in record.transmissions
            if t.sender == name and t.board_plane == board_plane
        ]
        ax.broken_barh(
            bars,
            (y_of[name] - 0.32, 0.64),
            facecolors=BOARD_PLANE if board_plane else OTHER_AIR,
            edgecolors=BOARD_PLANE if board_plane else OTHER_AIR,
            linewidth=0.8,  # a frame stays visible as a hairline on a long time axis
            gid=f"air:{name}:{'board' if board_plane else 'other'}",
        )
    arrived = [n for n in rows if n in reached]
    ax.scatter(
        [reached[n] for n in arrived],
        [y_of[n] for n in arrived],
        s=55,
        marker="o",
        c=[cmap(norm(reached[n])) for n in arrived],
        edgecolors="#222222",
        zorder=3,
        gid="stored",
    )
    ax.axvline(0, color=POSTER, linewidth=1, linestyle="--")
    ax.set_yticks(range(len(rows)), list(reversed(rows)), fontsize=9 if len(rows) <= 12 else 7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    start, end = _time_range(record, reached)
    ax.set_xlim(start, end)
    ax.set_xlabel(f"simulated seconds after {record.origin} took the post")
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_title(
        "on the air: board plane (blue), texts and ACKs (grey); "
        "dot: stored the post (to the second)",
        fontsize=10,
        loc="left",
    )


def _time_range(record: SpreadRecord, reached: dict[str, float]) -> tuple[float, float]:
    posted = record.posted_at
    first = min([record.sent_at - posted, *(t.at - posted for t in record.transmissions)])
    last = max([1.0, *reached.values(), *(t.at + t.airtime - posted for t in record.transmissions)])
    pad = 0.03 * (last - first)
    return first - pad, last + pad


def picture_formats() -> list[str]:
    """File suffixes `save_spread_plot` can write (png, svg, pdf, ...)."""
    return sorted(FigureCanvasAgg.get_supported_filetypes())
