"""The `meshboard` command: with node/rings_cli.py (`--config`, `--ring`) and node/commands/,
the only modules that import click.

Domain errors from `board/` and link errors become one `Error: …` line and exit code 1.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

from board.bulletin import new_bulletin
from board.config import (
    EXAMPLE,
    ConfigError,
    MeshboardConfig,
    RingSpec,
    parse_duration,
)
from board.handheld.commands import BoardConfig
from board.signing import BoardKey, key_path
from board.store.lock import one_daemon
from board.store.members import MemberStore
from board.store.moderation import ModerationStore
from board.store.shares import monthly
from board.store.tools import loans_between
from board.sync.bundle import (
    decode_bundle,
    encode_bundle,
    export_items,
    import_bundle,
    write_atomically,
)
from board.when import format_when, is_day_only, parse_when_text
from node.clock import SYSTEM_CLOCK
from node.commands.web import poster, web
from node.health import ErrorLogHandler, StatusFile, status_path
from node.link import HANDSHAKE_TIMEOUT
from node.logs import configure_logging
from node.records import audit_line, bulletin_record, import_record, tally_record
from node.rings_cli import (
    CliState,
    board_errors,
    config_of,
    db_option,
    emit_json,
    json_option,
    open_store,
    ring_option,
    shown,
    tz_option,
)
from node.rings_view import (
    config_json,
    config_lines,
    members_json,
    members_lines,
    moderators_json,
    moderators_lines,
)
from node.status import gather, report_json, report_lines

if TYPE_CHECKING:
    from node.demo.spread import SpreadRecord

LOCAL_AUTHOR = "!00000000"  # bulletins posted on the Pi itself, by whoever runs the board

F = TypeVar("F", bound=Callable[..., Any])


def logging_options(quiet_level: int) -> Callable[[F], F]:
    """`-v` for debug logging; logs go to stderr, where journald picks them up."""

    def decorate(command: F) -> F:
        @click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
        @functools.wraps(command)
        def wrapper(*args: Any, verbose: bool, **kwargs: Any) -> Any:
            configure_logging(logging.DEBUG if verbose else quiet_level)
            return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


port_option = click.option(
    "--port",
    envvar="MESHBOARD_PORT",
    required=True,
    help="Serial device of the radio, e.g. /dev/ttyUSB0 (env MESHBOARD_PORT).",
)


@click.group()
@click.version_option(package_name="meshboard", prog_name="meshboard")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MESHBOARD_CONFIG",
    help="Configuration file: rings and moderators (env MESHBOARD_CONFIG; default: one "
    "public ring on channel 0). `meshboard config --example` prints one.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Meshboard: a neighbourhood bulletin board over a Meshtastic LoRa mesh."""
    ctx.obj = CliState(config_path)


@cli.command()
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


@cli.command()
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


@cli.command()
@click.argument("type_name", metavar="TYPE")
@click.argument("words", metavar="TEXT", nargs=-1, required=True)
@click.option("--when", help="Event time: today, tomorrow or a weekday, and/or 18:00 or 6pm.")
@ring_option(default_served=True, must_serve=True)
@click.option("--author", default=LOCAL_AUTHOR, show_default=True, help="Author's node id.")
@db_option
@tz_option
def post(
    type_name: str,
    words: tuple[str, ...],
    when: str | None,
    ring: RingSpec,
    author: str,
    db_path: Path,
    tz: ZoneInfo,
) -> None:
    """Add a bulletin to this board."""
    store = open_store(db_path, create=True)
    now = SYSTEM_CLOCK.now()
    with board_errors():
        event_time = parse_when_text(when, now, tz) if when else None
        bulletin = new_bulletin(
            BoardConfig().types,
            type=type_name,
            text=" ".join(words),
            author=author,
            ring=ring.channel,
            now=now,
            event_time=event_time,
            all_day=event_time is not None and is_day_only(event_time, tz),
        )
        store.add(bulletin, now)
    click.echo(f"ok #{bulletin.ref}")


@cli.command(name="list")
@click.argument("type_name", metavar="[TYPE]", required=False)
@ring_option()
@db_option
@tz_option
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    type_name: str | None,
    ring: RingSpec | None,
    db_path: Path,
    tz: ZoneInfo,
    as_json: bool,
) -> None:
    """List active bulletins, newest first."""
    config = config_of(ctx)
    store = open_store(db_path)
    now = SYSTEM_CLOCK.now()
    with board_errors():
        if type_name is not None:
            type_name = BoardConfig().types.get(type_name).name
        bulletins = store.active(now, ring=None if ring is None else ring.channel, type=type_name)
    if as_json:
        emit_json([bulletin_record(b, config) for b in bulletins])
        return
    if not bulletins:
        click.echo("no bulletins")
    width = max((len(config.name_of(b.ring)) for b in bulletins), default=0)
    for b in bulletins:
        when = format_when(b.event_time, now, tz) if b.event_time else "-"
        name = config.name_of(b.ring)
        click.echo(f"#{b.ref}  {name:<{width}}  {b.type:<9} {when:<12} {b.text}")


@cli.command()
@click.argument("ref")
@ring_option(help="Only look in this ring: its name or channel index.")
@db_option
@tz_option
@json_option
@click.pass_context
def show(
    ctx: click.Context, ref: str, ring: RingSpec | None, db_path: Path, tz: ZoneInfo, as_json: bool
) -> None:
    """Show one bulletin by its reference: meshboard show a3f0 ('#a3f0' works quoted; a bare
    # starts a shell comment)."""
    config = config_of(ctx)
    store = open_store(db_path)
    with board_errors():
        bulletin = store.get(ref, None if ring is None else ring.channel)
    if as_json:
        emit_json(bulletin_record(bulletin, config))
        return

    def local(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%a %d %b %Y %H:%M %Z")

    click.echo(f"#{bulletin.ref}  {bulletin.type}  {config.name_of(bulletin.ring)}")
    click.echo(bulletin.text)
    if bulletin.event_time:
        click.echo(f"when:    {local(bulletin.event_time)}")
    click.echo(f"by:      {bulletin.author}")
    click.echo(f"posted:  {local(bulletin.created_at)}")
    click.echo(f"expires: {local(bulletin.expires_at)}")
    click.echo(f"id:      {bulletin.id}")


@cli.command()
@click.argument("ref")
@ring_option(help="Only look in this ring: its name or channel index.")
@db_option
def delete(ref: str, ring: RingSpec | None, db_path: Path) -> None:
    """Remove a bulletin by its reference, e.g. meshboard delete a3f0 (the board operator may
    remove any)."""
    store = open_store(db_path)
    channel = None if ring is None else ring.channel
    with board_errors():
        key = BoardKey.load_or_create(key_path(db_path))  # signed, so other boards follow
        removed = store.delete(ref, requester=None, ring=channel, now=SYSTEM_CLOCK.now(), key=key)
    click.echo(f"deleted #{removed.ref}")


@cli.command(name="config")
@click.option("--example", is_flag=True, help="Print a commented example file and exit.")
@json_option
@click.pass_context
def config_(ctx: click.Context, example: bool, as_json: bool) -> None:
    """Check the configuration file and show its rings: channel, served, digest, moderators."""
    if example:
        click.echo(EXAMPLE, nl=False)
        return
    config = config_of(ctx)
    if as_json:
        emit_json(config_json(config))
        return
    for line in config_lines(config):
        click.echo(line)


@cli.command()
@ring_option()
@click.option("--pin", is_flag=True, help="Pin the moderators' radio keys: see above.")
@click.option(
    "--port",
    envvar="MESHBOARD_PORT",
    help="With --pin: the radio's serial device (MESHBOARD_PORT).",
)
@click.option("--replace", is_flag=True, help="With --pin: change a pinned key that differs.")
@click.option("--yes", "-y", is_flag=True, help="With --pin: write without asking.")
@db_option
@tz_option
@json_option
@click.pass_context
def moderators(
    ctx: click.Context,
    ring: RingSpec | None,
    pin: bool,
    port: str | None,
    replace: bool,
    yes: bool,
    db_path: Path,
    tz: ZoneInfo,
    as_json: bool,
) -> None:
    """Who moderates each ring now, until when, who is next, the fingerprints of their pinned
    radio keys, and this board's public key.

    With --pin --port PORT: read each moderator's public key from the radio's node database
    and write it into the config file's [ring.moderation.keys], keeping your comments. From
    then on a `mod` from that node id with any other key is refused. Compare each key first
    with the one the moderator's Meshtastic app shows, in base64 (its Security settings,
    Public Key), or at least its start and end, as the fingerprint shows. A moderator the
    radio has no key for cannot be pinned: ask them to send a message first. A pinned key
    that differs from the radio's is only changed with --replace. Needs --config FILE; stop
    a running board first (sudo systemctl stop meshboard): it holds the radio.
    """
    config = config_of(ctx)
    rings = list(config.rings) if ring is None else [ring]
    if pin:
        if port is None or as_json:
            raise click.UsageError("--pin needs --port (or MESHBOARD_PORT), and has no --json")
        from node.commands.pins import pin_moderators  # tomlkit, only to pin

        with board_errors():
            confirm = None if yes else click.confirm
            pin_moderators(config, rings, port, replace=replace, echo=click.echo, confirm=confirm)
        return
    with board_errors():
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            key = BoardKey.load_or_create(key_path(db_path)).public
        except OSError as error:
            raise click.ClickException(f"cannot read this board's key: {error}") from error
    now = SYSTEM_CLOCK.now()
    if as_json:
        emit_json(moderators_json(rings, key, now))
        return
    for line in moderators_lines(rings, key, now, tz):
        click.echo(line)


@cli.command()
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


@cli.command()
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


@cli.command()
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


@cli.command()
@ring_option()
@db_option
@tz_option
@json_option
def audit(ring: RingSpec | None, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """Every moderation attempt, oldest first: accepted, and refused with the reason."""
    store = open_store(db_path)
    entries = ModerationStore(store.engine).audit(None if ring is None else ring.channel)
    if as_json:
        emit_json([entry.as_json() for entry in entries])
        return
    if not entries:
        click.echo("no moderation yet")
    for entry in entries:
        click.echo(audit_line(entry, tz))


@cli.command()
@ring_option(help="Ring: its name or channel index (default: every ring but channel 0).")
@db_option
@tz_option
@json_option
def members(ring: RingSpec | None, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """Who joined each private ring (every ring but channel 0) and who left, with their radio
    keys' fingerprints: as this board's database holds them, joined here or heard from boards
    it trusts."""
    rings = [r for r in current_config().rings if r.private] if ring is None else [ring]
    if ring is not None and not ring.private:
        raise click.ClickException(f"ring {ring.name} is channel 0: open to all, nobody joins")
    store = open_store(db_path)
    held = MemberStore(store.engine)
    now = SYSTEM_CLOCK.now()
    rosters = [(spec, held.records(spec.channel, now)) for spec in rings]
    if as_json:
        emit_json(members_json(rosters))
        return
    for line in members_lines(rosters, tz):
        click.echo(line)


# -- sneakernet bundles and the monthly tally --------------------------------------------

#: A file this big gets a progress bar on a terminal (smaller ones finish before it would draw).
PROGRESS_BYTES = 64 * 1024


def current_config() -> MeshboardConfig:
    """The rings this invocation works with: the `--config` file's, read once."""
    return config_of(click.get_current_context())


def parse_since(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """`7d`, `2w`, `12h` ago, or an ISO date or time (in the board's time zone unless given)."""
    try:
        return now - parse_duration(text, where="--since")
    except ConfigError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"cannot read {text!r}; try 7d, 2w, 2025-11-01 or 2025-11-01T18:00",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _rings(ring: RingSpec | None) -> list[int]:
    served = sorted(current_config().served)
    if ring is None:
        return served
    if ring.channel not in served:
        raise click.ClickException(f"ring {ring.name!r} is not served here")
    return [ring.channel]


@contextmanager
def _progress(size: int, length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for a large file, when stderr is a terminal; else nothing."""
    stream = sys.stderr
    if size < PROGRESS_BYTES or not stream.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=stream) as bar:
        yield lambda done: bar.update(done)


@cli.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@ring_option()
@click.option("--since", help="Only bulletins posted since: 7d, 2w, or a date like 2025-11-01.")
@db_option
@tz_option
@json_option
def export_(
    file: Path,
    ring: RingSpec | None,
    since: str | None,
    db_path: Path,
    tz: ZoneInfo,
    as_json: bool,
) -> None:
    """Write this board's bulletins to a signed bundle FILE to carry on a USB drive."""
    store = open_store(db_path)
    now = SYSTEM_CLOCK.now()
    rings = _rings(ring)
    start = parse_since(since, now, tz) if since else None
    with board_errors():
        key = BoardKey.load_or_create(key_path(db_path))
        bulletins, tombstones = export_items(store, rings, now, start)
        data = encode_bundle(key, rings, bulletins, tombstones, now, start)
        try:
            write_atomically(file, data)
        except OSError as error:
            raise click.ClickException(f"cannot write {file}: {error.strerror or error}") from error
    names = ", ".join(current_config().name_of(r) for r in rings)
    if as_json:
        emit_json(
            {
                "file": str(file),
                "bytes": len(data),
                "rings": rings,
                "bulletins": len(bulletins),
                "tombstones": len(tombstones),
                "exporter": key.public,
            }
        )
        return
    click.echo(
        f"exported {len(bulletins)} bulletins and {len(tombstones)} tombstones of {names} "
        f"to {file} ({len(data)} bytes)"
    )
    click.echo(f"signed by this board: {key.public}")


@cli.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@json_option
def import_(file: Path, db_path: Path, as_json: bool) -> None:
    """Merge a bundle FILE exported by a board; a changed or cut file is refused whole."""
    try:
        data = file.read_bytes()
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror or error}") from error
    store = open_store(db_path, create=True)
    now = SYSTEM_CLOCK.now()
    config = current_config()
    with board_errors():
        own = BoardKey.load_or_create(key_path(db_path)).public
        trusted = {r.channel: {own, *r.trusted_boards} for r in config.rings}
        with _progress(len(data), len(data), "checking") as tick:
            bundle = decode_bundle(data, tick)
        items = len(bundle.bulletins) + len(bundle.tombstones)
        with _progress(len(data), items, "importing") as tick:
            report = import_bundle(
                store, bundle, config.served, now, trusted=trusted, progress=tick
            )
    if as_json:
        emit_json(import_record(file, report))
        return
    click.echo(
        f"bundle signed by board {report.exporter}, exported {report.created_at:%Y-%m-%d %H:%M} UTC"
    )
    line = (
        f"{report.new} new, {report.already} already here, "
        f"{report.removed} removed by tombstones, {report.expired} skipped as expired"
    )
    if report.implausible:
        line += f", {report.implausible} skipped as too far ahead"
    click.echo(line)


@cli.command()
@ring_option()
@click.option("--moon", is_flag=True, help="Lunar months, new moon to new moon.")
@db_option
@tz_option
@json_option
def tally(ring: RingSpec | None, moon: bool, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """What was shared per month: meals, skills, tools offered and lent (each `lend` said that
    month), childcare, posters."""
    store = open_store(db_path)
    now = SYSTEM_CLOCK.now()

    def loans(start: datetime, end: datetime, ring: int) -> int:
        return loans_between(store, start, end, ring)

    config = current_config()
    tallies = {r: monthly(store.engine, r, now, tz, moon=moon, loans=loans) for r in _rings(ring)}
    if as_json:
        emit_json([tally_record(t, config) for ts in tallies.values() for t in ts])
        return
    for channel, ring_tallies in tallies.items():
        kind = "lunar months" if moon else f"months ({tz.key})"
        click.echo(f"ring {config.name_of(channel)} ({channel}), {kind}")
        click.echo(
            f"{'period':<16} {'meals':>5} {'skills':>6} {'tools':>5} {'lent':>4} "
            f"{'childcare':>9} {'posters':>7}"
        )
        for t in ring_tallies:
            lent = "-" if t.loans is None else str(t.loans)
            click.echo(
                f"{t.period.label:<16} {t.meals:>5} {t.skills:>6} {t.tools:>5} {lent:>4} "
                f"{t.childcare:>9} {t.posters:>7}"
            )


cli.add_command(web)
cli.add_command(poster)
