"""`meshboard run`, `status` and `doctor`: the board node daemon, and how an operator sees
whether it serves and what is wrong with its radio, clocks or database.

`run` loads the radio client only when it starts the daemon, and `doctor` only when it
diagnoses; `status` reads the status file the daemon writes and never opens the radio.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from board.config import ConfigError, MeshboardConfig
from board.handheld.commands import BoardConfig
from board.signing import BoardKey, key_path
from board.store.lock import one_daemon
from node.clock import SYSTEM_CLOCK
from node.commands.common import logging_options
from node.health import ErrorLogHandler, StatusFile, status_path
from node.link import HANDSHAKE_TIMEOUT
from node.rings_cli import (
    CliState,
    board_errors,
    config_of,
    db_option,
    emit_json,
    json_option,
    open_store,
    tz_option,
)
from node.status import gather, report_json, report_lines

port_option = click.option(
    "--port",
    envvar="MESHBOARD_PORT",
    required=True,
    help="Serial device of the radio, e.g. /dev/ttyUSB0 (env MESHBOARD_PORT).",
)


@click.command()
@port_option
@db_option
@tz_option
@logging_options(logging.INFO)
@click.pass_context
def run(ctx: click.Context, port: str, db_path: Path, tz: ZoneInfo) -> None:
    """Run the board node daemon on a radio until SIGINT or SIGTERM.

    It serves the rings of the configuration file (`--config`) and no others. When the radio
    goes away (unplugged, rebooted, silent) it keeps reconnecting.
    """
    config = config_of(ctx)
    with board_errors(), one_daemon(db_path):
        _serve(port, db_path, config, tz)


def _serve(port: str, db_path: Path, config: MeshboardConfig, tz: ZoneInfo) -> None:
    """`run` with the database's daemon lock held."""
    store = open_store(db_path, create=True)
    with board_errors():
        key = BoardKey.load_or_create(key_path(db_path))
    from node.daemon import Daemon  # the radio's client: only the commands that open one load it

    daemon = Daemon.assemble(port, store, board=BoardConfig(tz=tz), config=config, key=key)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # The client opens the port without O_NOCTTY, so under systemd (a session of its own) the
    # radio becomes our controlling terminal and unplugging it sends SIGHUP. Dying of that
    # counts as a clean exit and Restart=on-failure would never bring the board back.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    daemon.health.note(port=port)
    errors = ErrorLogHandler(daemon.health)
    logging.getLogger().addHandler(errors)
    try:
        with board_errors(), StatusFile(status_path(db_path), daemon.health):
            daemon.run(stop)
    finally:
        logging.getLogger().removeHandler(errors)


@click.command()
@db_option
@tz_option
@json_option
@click.pass_context
def status(ctx: click.Context, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """Whether the daemon is serving, and how: radio, last packet, outbox, airtime, bulletins.

    \b
    Exit codes:
      0  the daemon is running and connected to its radio
      3  no daemon is running: none ever wrote a status next to this database,
         it stopped, its process is gone, or its status is stale (hung)
      4  the daemon is running but not connected to its radio
      5  the daemon is running but cannot store (full disk, read-only, its database
         deleted) or cannot write its status
      1  the database cannot be read
    """
    with board_errors():
        try:
            report = gather(db_path, SYSTEM_CLOCK.now(), config_of(ctx))
        except OSError as error:
            raise click.ClickException(f"cannot read {db_path}: {error}") from error
    if as_json:
        emit_json(report_json(report))
    else:
        for line in report_lines(report, tz):
            click.echo(line)
    ctx.exit(report.exit_code)


@click.command()
@click.option(
    "--port",
    envvar="MESHBOARD_PORT",
    help="Serial device of the radio (env MESHBOARD_PORT); without it only the clock and "
    "the database are checked.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=HANDSHAKE_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the radio to answer the config handshake.",
)
@db_option
@json_option
@click.pass_context
def doctor(
    ctx: click.Context, port: str | None, timeout: float, db_path: Path, as_json: bool
) -> None:
    """Check the radio, the clocks and the database; say how to fix what is wrong.

    One line per finding: ok, warn or fail, and under each warn or fail the command that
    fixes it. The radio must be free: stop a running board first (sudo systemctl stop
    meshboard), or leave out --port to check only the clock and the database. Nothing is
    changed, on the radio or in the database.

    \b
    Exit codes:
      0  nothing failed (warnings may remain)
      1  at least one check failed
    """
    state = ctx.find_root().ensure_object(CliState)
    try:
        config: MeshboardConfig | ConfigError = state.config_or_error()
    except ConfigError as error:
        config = error
    from node.doctor.diagnose import diagnose  # opens the radio: the web page never needs it

    diagnosis = diagnose(
        port, db_path, config, handshake_timeout=timeout, config_path=state.config_path
    )
    if as_json:
        emit_json(diagnosis.as_json())
    else:
        for line in diagnosis.lines():
            click.echo(line)
    ctx.exit(diagnosis.exit_code)
