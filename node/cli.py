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
from board.commands import BoardConfig
from board.config import DEFAULT_CONFIG, MeshboardConfig, RingSpec
from board.errors import BoardError
from board.modstore import AuditEntry, ModerationStore
from board.signing import BoardKey, key_path
from board.store import Store
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
    with board_errors():
        key = BoardKey.load_or_create(key_path(db_path))
    daemon = Daemon.assemble(port, store, board=BoardConfig(tz=tz), key=key)
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


@cli.command()
@ring_option
@db_option
@tz_option
@json_option
def audit(ring: int | None, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """Every moderation attempt, oldest first: accepted, and refused with the reason."""
    store = open_store(db_path)
    entries = ModerationStore(store.engine).audit(ring)
    if as_json:
        emit_json([entry.as_json() for entry in entries])
        return
    if not entries:
        click.echo("no moderation yet")
    for entry in entries:
        click.echo(audit_line(entry, tz))


def audit_line(entry: AuditEntry, tz: ZoneInfo) -> str:
    when = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    verdict = "accepted" if entry.accepted else f"refused: {entry.reason}"
    bulletin = entry.bulletin[:12]
    who = f"{entry.moderator}  {entry.action:<7} #{bulletin:<12}"
    return f"{when}  ring {entry.ring}  {who}  {entry.source}  {verdict}"


def ring_config() -> MeshboardConfig:
    """The rings this command works with (the default until `--config` is wired in)."""
    return DEFAULT_CONFIG


@cli.command()
@db_option
@tz_option
@json_option
def moderators(db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """Who moderates each ring, who is on duty now, and this board's key for other boards."""
    with board_errors():
        key = BoardKey.load_or_create(key_path(db_path))
    now = SYSTEM_CLOCK.now()
    rings = []
    for spec in ring_config().rings:
        rotation = spec.rotation
        on_duty = rotation.on_duty(now) if rotation is not None else None
        until = rotation.next_change(now) if rotation is not None else None
        rings.append(
            {
                "ring": spec.name,
                "channel": spec.channel,
                "moderators": list(rotation.moderators) if rotation is not None else [],
                "on_duty": on_duty,
                "until": None if until is None else until.isoformat(),
                "trusted_boards": list(spec.trusted_boards),
            }
        )
    if as_json:
        emit_json({"board_key": key.public, "rings": rings})
        return
    click.echo(f"this board's key: {key.public}")
    for spec in ring_config().rings:
        click.echo(moderators_line(spec, now, tz))


def moderators_line(spec: RingSpec, now: datetime, tz: ZoneInfo) -> str:
    name = f"{spec.name} (channel {spec.channel})"
    rotation = spec.rotation
    if rotation is None or not rotation.moderators:
        return f"{name}: no moderators"
    until = rotation.next_change(now).astimezone(tz)
    return (
        f"{name}: {' '.join(rotation.moderators)}\n"
        f"  on duty: {rotation.on_duty(now) or 'nobody'} until {until:%a %d %b %H:%M}\n"
        f"  trusted boards: {len(spec.trusted_boards)} besides this one"
    )
