"""`meshboard web` and `meshboard poster`: the board for neighbours without a radio.

Both show only the rings with `web = true` that are not private (`MeshboardConfig.on_the_web`),
whatever else the command line says. Their heavy parts load when they run: the poster's PDF
and image libraries, and neither ever loads the radio client. Both read the board through
`node.web.reading` (read-only, no SQLAlchemy), never the store.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from board.config import RingSpec
from node.clock import SYSTEM_CLOCK
from node.logs import configure_logging
from node.rings_cli import board_errors, config_of, db_option, ring_option, shown, tz_option
from node.web.app import COMMANDS as POSTER_HOW_TO
from node.web.app import create_app
from node.web.pages import week as web_week
from node.web.reading import BoardReader
from node.web.server import DEFAULT_LISTEN, home_of, parse_listen, serve

if TYPE_CHECKING:
    from node.web.poster import Paper


@click.command()
@click.option("--listen", help=f"HOST:PORT or lan:PORT ([web] listen, else {DEFAULT_LISTEN}).")
@db_option
@tz_option
@click.pass_context
def web(ctx: click.Context, listen: str | None, db_path: Path, tz: ZoneInfo) -> None:
    """Serve the public rings (those with `web = true`) as a read-only page, until Ctrl-C."""
    config = config_of(ctx)
    try:
        addresses = parse_listen(listen or config.web_listen or DEFAULT_LISTEN)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen or [web] listen") from error
    if not config.on_the_web:
        raise click.ClickException("no ring has web = true in the configuration: nothing to serve")
    with board_errors():  # a clear error for a mistyped --db, before the server starts
        app = create_app(db_path, config, tz, home=home_of(addresses))
    configure_logging(logging.INFO)
    serve(app, addresses)


@click.command()
@click.option("-o", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@ring_option(help="Only this ring, if it is on the web (default: every ring with web = true).")
@shown("--week", "which", type=click.Choice(["this", "next"]), default="this")
@shown("--paper", type=click.Choice(["A4", "Letter"]), default="A4")
@shown("--url", default="http://10.42.0.1/", help="The board's web page, for the QR code.")
@click.option("--png", is_flag=True, help="Write a PNG picture of the page instead of a PDF.")
@db_option
@tz_option
@click.pass_context
def poster(
    ctx: click.Context,
    /,
    ring: RingSpec | None,
    out: Path,
    which: str,
    paper: Paper,
    url: str,
    png: bool,
    **options: Any,
) -> None:
    """One printed page of the week (rings with `web = true`): events by day, the tool
    library, notices, how to post by radio, and a QR code to the web page."""
    from node.web.poster import PosterError, PosterText, make_poster, to_png  # PDF and image libs

    if not (config := config_of(ctx)).on_the_web:
        raise click.ClickException("no ring has web = true in the configuration: nothing to print")
    if ring is not None:
        if ring not in config.on_the_web:
            why = "a private ring is never printed" if ring.private else "it has no web = true"
            raise click.ClickException(f"cannot print ring {ring.name!r}: {why}")
        config = replace(config, rings=(ring,))
    now = SYSTEM_CLOCK.now() + timedelta(days=0 if which == "this" else 7)
    with board_errors(), BoardReader.open(options["db_path"]) as board:
        week = web_week(board, config, now, options["tz"])
    text = PosterText(f"{which.capitalize()} week on the board", url, POSTER_HOW_TO)
    try:
        pdf = out.with_name(out.name + ".pdf") if png else out
        missing = make_poster(week, text, pdf, paper)
        if png:
            to_png(pdf, out)
            pdf.unlink()
    except (PosterError, OSError) as error:
        raise click.ClickException(f"cannot make the poster: {error}") from error
    click.echo(f"wrote {out}" + (f" ({missing} events did not fit)" if missing else ""))
