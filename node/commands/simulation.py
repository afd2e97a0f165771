"""`meshboard demo` and `sim`: simulated boards and radios, to watch a post spread or to try
the meshtastic CLI or an app against a board without any hardware.

The simulator (node/demo, node/sim) and matplotlib for `demo --plot` load only when these
commands run: a board on a Pi never loads them.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from node.commands.common import logging_options
from node.rings_cli import json_option, shown, tz_option

if TYPE_CHECKING:
    from node.demo.spread import SpreadRecord


@click.command()
@click.option(
    "--nodes",
    type=click.IntRange(2, 20),
    default=6,
    show_default=True,
    help="Board nodes in the simulated street.",
)
@click.option(
    "--loss",
    type=click.FloatRange(0.0, 0.9),
    default=0.1,
    show_default=True,
    help="Probability that a packet between neighbours is lost.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Replays the same mesh.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the mesh and how the post spread, as a PNG (needs meshboard[plot]).",
)
@tz_option
@logging_options(logging.WARNING)
def demo(nodes: int, loss: float, seed: int, plot_path: Path | None, tz: ZoneInfo) -> None:
    """Run a simulated neighbourhood of board nodes: a post spreads from one end to the other."""
    from node.demo.run import run_demo  # the simulator: a daemon on a Pi never loads it

    save_plot = None if plot_path is None else _spread_plotter(plot_path)  # before a 12 s run
    result = run_demo(click.echo, nodes=nodes, loss=loss, seed=seed, tz=tz)
    if save_plot is not None and plot_path is not None:
        try:
            save_plot(result.spread, plot_path)
        except OSError as error:
            raise click.ClickException(f"cannot write {plot_path}: {error}") from error
        click.echo(f"drew the spread in {plot_path}")
    if not result.converged:
        raise click.ClickException(
            f"only {result.boards_holding} of {result.boards} boards got the post"
        )
    click.echo(f"demo done: all {result.boards} boards hold the post")


@click.command()
@shown("--boards", type=click.IntRange(0, 20), default=2, help="Board daemons, in a street.")
@shown("--handhelds", type=click.IntRange(0, 20), default=2, help="Radios for you, no daemon.")
@shown("--loss", type=click.FloatRange(0.0, 0.9), default=0.0, help="Share of packets lost.")
@shown("--seed", type=int, default=1, help="Replays the same mesh.")
@shown("--speed", type=click.FloatRange(min=0.01), default=1.0, help="Simulated s per real s.")
@shown("--host", default="127.0.0.1", help="Where the TCP ports listen (0.0.0.0: the LAN).")
@click.option(
    "--tcp-port", type=click.IntRange(0, 65535), default=0, help="First TCP port (0: any free)."
)
@tz_option
@json_option
@logging_options(logging.WARNING)
def sim(as_json: bool, **settings: Any) -> None:
    """Simulated boards and handheld radios for the meshtastic CLI or an app, until Ctrl-C.

    Board daemons stand in a street; each handheld radio stands by a board, on a serial path
    and a TCP port (`meshtastic --port PATH` or `--host HOST:PORT`): DM a board `help`."""
    from node.demo.sim import SimSettings, Simulation  # the simulator: not on a Pi's board

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with Simulation(SimSettings(**settings)) as simulation:
            lines = [json.dumps(simulation.as_json())] if as_json else simulation.lines()
            for line in lines:
                click.echo(line)
            simulation.serve(stop)
    except (OSError, OverflowError, RuntimeError) as error:
        raise click.ClickException(f"the simulation failed: {error}") from error


def _spread_plotter(path: Path) -> Callable[[SpreadRecord, Path], None]:
    """The spread's drawer, or a clear error now rather than after the demo's run."""
    try:
        from node.demo.plot import picture_formats, save_spread_plot
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] in ("node", "board"):
            raise
        raise click.ClickException(
            f"--plot needs matplotlib, which is not installed here (no module {error.name!r}): "
            "pip install 'meshboard[plot]'"
        ) from error
    if not path.parent.is_dir():
        raise click.ClickException(f"cannot write {path}: no folder {path.parent}")
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix not in picture_formats():
        raise click.ClickException(f"cannot draw a .{suffix} picture; use .png, .svg or .pdf")
    return save_spread_plot
