"""The `meshboard` command: the only module that imports click.

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
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import platformdirs
import tzlocal

from board.bulletin import Bulletin, new_bulletin
from board.bundle import decode_bundle, encode_bundle, export_items, import_bundle, write_atomically
from board.commands import BoardConfig
from board.config import DEFAULT_CONFIG, ConfigError, MeshboardConfig, parse_duration
from board.errors import BoardError
from board.signing import BoardKey, key_path
from board.store import Store
from board.tally import monthly, table_loans
from board.when import format_when, is_day_only, parse_when_text
from node.clock import SYSTEM_CLOCK
from node.daemon import Daemon
from node.demo import run_demo
from node.health import ErrorLogHandler, StatusFile, status_path
from node.link import LinkError
from node.status import gather, report_json, report_lines

LOCAL_AUTHOR = "!00000000"  # bulletins posted on the Pi itself, by whoever runs the board

F = TypeVar("F", bound=Callable[..., Any])


def default_db_path() -> Path:
    """The database lives in the user's data directory, never in the working directory."""
    return platformdirs.user_data_path("meshboard") / "meshboard.db"


def _zone(_ctx: click.Context, _param: click.Parameter, value: str | None) -> ZoneInfo:
    name = value or tzlocal.get_localzone_name() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise click.BadParameter(f"unknown time zone {name!r}") from error


db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MESHBOARD_DB",
    default=default_db_path,
    show_default="meshboard.db in the user data directory; env MESHBOARD_DB",
    help="SQLite database of this board.",
)
tz_option = click.option(
    "--tz",
    "tz",
    envvar="MESHBOARD_TZ",
    callback=_zone,
    help="Time zone for event times people type (default: this machine's).",
)
ring_option = click.option(
    "--ring", type=click.IntRange(0, 7), help="Only this ring (channel index)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Output JSON for scripts.")


@contextmanager
def board_errors() -> Iterator[None]:
    """Turn domain and radio errors into click's one-line error and exit code 1."""
    try:
        yield
    except (BoardError, LinkError) as error:
        raise click.ClickException(str(error)) from error


def open_store(db_path: Path) -> Store:
    with board_errors():
        try:
            return Store.open(db_path)
        except OSError as error:
            raise click.ClickException(f"cannot open database {db_path}: {error}") from error


def bulletin_record(bulletin: Bulletin) -> dict[str, Any]:
    """The JSON shape of a bulletin, shared by every read command."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "ref": bulletin.ref,
        "id": bulletin.id,
        "type": bulletin.type,
        "text": bulletin.text,
        "event_time": iso(bulletin.event_time),
        "expires_at": iso(bulletin.expires_at),
        "created_at": iso(bulletin.created_at),
        "author": bulletin.author,
        "ring": bulletin.ring,
    }


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def logging_options(quiet_level: int) -> Callable[[F], F]:
    """`-v` for debug logging; logs go to stderr, where journald picks them up."""

    def decorate(command: F) -> F:
        @click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
        @functools.wraps(command)
        def wrapper(*args: Any, verbose: bool, **kwargs: Any) -> Any:
            logging.basicConfig(
                level=logging.DEBUG if verbose else quiet_level,
                format="%(levelname)s %(name)s: %(message)s",
                stream=sys.stderr,
            )
            return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@click.group()
@click.version_option(package_name="meshboard", prog_name="meshboard")
def cli() -> None:
    """Meshboard: a neighbourhood bulletin board over a Meshtastic LoRa mesh."""


@cli.command()
@click.option(
    "--port",
    envvar="MESHBOARD_PORT",
    required=True,
    help="Serial device of the radio, e.g. /dev/ttyUSB0 (env MESHBOARD_PORT).",
)
@db_option
@tz_option
@logging_options(logging.INFO)
def run(port: str, db_path: Path, tz: ZoneInfo) -> None:
    """Run the board node daemon on a radio until SIGINT or SIGTERM.

    When the radio goes away (unplugged, rebooted, silent) it keeps reconnecting.
    """
    store = open_store(db_path)
    daemon = Daemon.assemble(port, store, board=BoardConfig(tz=tz))
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
      1  the database cannot be read
    """
    with board_errors():
        try:
            report = gather(db_path, SYSTEM_CLOCK.now())
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
@click.option("--ring", type=click.IntRange(0, 7), default=0, show_default=True, help="Ring.")
@click.option("--author", default=LOCAL_AUTHOR, show_default=True, help="Author's node id.")
@db_option
@tz_option
def post(
    type_name: str,
    words: tuple[str, ...],
    when: str | None,
    ring: int,
    author: str,
    db_path: Path,
    tz: ZoneInfo,
) -> None:
    """Add a bulletin to this board."""
    store = open_store(db_path)
    now = SYSTEM_CLOCK.now()
    with board_errors():
        event_time = parse_when_text(when, now, tz) if when else None
        bulletin = new_bulletin(
            BoardConfig().types,
            type=type_name,
            text=" ".join(words),
            author=author,
            ring=ring,
            now=now,
            event_time=event_time,
            all_day=event_time is not None and is_day_only(event_time, tz),
        )
        store.add(bulletin, now)
    click.echo(f"ok #{bulletin.ref}")


@cli.command(name="list")
@click.argument("type_name", metavar="[TYPE]", required=False)
@ring_option
@db_option
@tz_option
@json_option
def list_(
    type_name: str | None, ring: int | None, db_path: Path, tz: ZoneInfo, as_json: bool
) -> None:
    """List active bulletins, newest first."""
    store = open_store(db_path)
    now = SYSTEM_CLOCK.now()
    with board_errors():
        if type_name is not None:
            type_name = BoardConfig().types.get(type_name).name
        bulletins = store.active(now, ring=ring, type=type_name)
    if as_json:
        emit_json([bulletin_record(b) for b in bulletins])
        return
    if not bulletins:
        click.echo("no bulletins")
    for b in bulletins:
        when = format_when(b.event_time, now, tz) if b.event_time else "-"
        click.echo(f"#{b.ref}  ring {b.ring}  {b.type:<9} {when:<12} {b.text}")


@cli.command()
@click.argument("ref")
@db_option
@tz_option
@json_option
def show(ref: str, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """Show one bulletin by its reference (#a3f0 or a3f0)."""
    store = open_store(db_path)
    with board_errors():
        bulletin = store.get(ref)
    if as_json:
        emit_json(bulletin_record(bulletin))
        return

    def local(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%a %d %b %Y %H:%M %Z")

    click.echo(f"#{bulletin.ref}  {bulletin.type}  ring {bulletin.ring}")
    click.echo(bulletin.text)
    if bulletin.event_time:
        click.echo(f"when:    {local(bulletin.event_time)}")
    click.echo(f"by:      {bulletin.author}")
    click.echo(f"posted:  {local(bulletin.created_at)}")
    click.echo(f"expires: {local(bulletin.expires_at)}")
    click.echo(f"id:      {bulletin.id}")


@cli.command()
@click.argument("ref")
@db_option
def delete(ref: str, db_path: Path) -> None:
    """Remove a bulletin (the board operator may remove any)."""
    store = open_store(db_path)
    with board_errors():
        removed = store.delete(ref, requester=None, ring=None, now=SYSTEM_CLOCK.now())
    click.echo(f"deleted #{removed.ref}")


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
@tz_option
@logging_options(logging.WARNING)
def demo(nodes: int, loss: float, seed: int, tz: ZoneInfo) -> None:
    """Run a simulated neighbourhood of board nodes: a post spreads from one end to the other."""
    result = run_demo(click.echo, nodes=nodes, loss=loss, seed=seed, tz=tz)
    if not result.converged:
        raise click.ClickException(
            f"only {result.boards_holding} of {result.boards} boards got the post"
        )
    click.echo(f"demo done: all {result.boards} boards hold the post")


# -- sneakernet bundles and the monthly tally --------------------------------------------

#: A file this big gets a progress bar on a terminal (smaller ones finish before it would draw).
PROGRESS_BYTES = 64 * 1024


def current_config() -> MeshboardConfig:
    """The rings this invocation works with.

    Until the global `--config` option lands this is the default configuration (channel 0,
    "public"); on merge it becomes the shared configuration lookup.
    """
    return DEFAULT_CONFIG


def _ring_spec(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """`--ring public` or `--ring 0`: the ring's channel index."""
    if value is None:
        return None
    try:
        return current_config().ring(value).channel
    except ConfigError as error:
        raise click.BadParameter(str(error)) from error


named_ring_option = click.option(
    "--ring",
    callback=_ring_spec,
    metavar="RING",
    help="Only this ring: its name, or its channel index (default: every ring served).",
)


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


def _rings(ring: int | None) -> list[int]:
    served = sorted(current_config().served)
    if ring is None:
        return served
    if ring not in served:
        raise click.ClickException(f"ring {current_config().name_of(ring)!r} is not served here")
    return [ring]


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
@named_ring_option
@click.option("--since", help="Only bulletins posted since: 7d, 2w, or a date like 2025-11-01.")
@db_option
@tz_option
@json_option
def export_(
    file: Path, ring: int | None, since: str | None, db_path: Path, tz: ZoneInfo, as_json: bool
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
    store = open_store(db_path)
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
        emit_json(
            {
                "file": str(file),
                "exporter": report.exporter,
                "exported_at": report.created_at.isoformat(),
                "new": report.new,
                "already": report.already,
                "removed": report.removed,
                "tombstones": report.tombstones,
                "expired": report.expired,
                "implausible": report.implausible,
            }
        )
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
@named_ring_option
@click.option("--moon", is_flag=True, help="Lunar months, new moon to new moon.")
@db_option
@tz_option
@json_option
def tally(ring: int | None, moon: bool, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """What was shared per month: meals, skills, tools offered and lent, childcare, posters.

    A "-" under lent means this board does not track tool loans.
    """
    store = open_store(db_path)
    now = SYSTEM_CLOCK.now()
    loans = table_loans(store.engine)
    config = current_config()
    tallies = {r: monthly(store.engine, r, now, tz, moon=moon, loans=loans) for r in _rings(ring)}
    if as_json:
        emit_json(
            [
                {
                    "ring": t.ring,
                    "ring_name": config.name_of(t.ring),
                    "period": t.period.label,
                    "start": t.period.start.isoformat(),
                    "end": t.period.end.isoformat(),
                    "meals": t.meals,
                    "skills": t.skills,
                    "tools_offered": t.tools,
                    "tools_lent": t.loans,
                    "childcare": t.childcare,
                    "posters": t.posters,
                }
                for ring_tallies in tallies.values()
                for t in ring_tallies
            ]
        )
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
