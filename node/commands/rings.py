"""`meshboard config`, `moderators`, `members` and `audit`: the rings of the configuration
file, who moderates them, who joined the private ones, and every moderation attempt.

All four only read (the config file, the board's key, the database), except `moderators
--pin`, which writes the moderators' radio keys into the config file through
node/commands/pins.py, loaded only then.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import click

from board.config import EXAMPLE, RingSpec
from board.signing import BoardKey, key_path
from board.store.members import MemberStore
from board.store.moderation import ModerationStore
from node.clock import SYSTEM_CLOCK
from node.commands.common import current_config
from node.records import audit_line
from node.rings_cli import (
    board_errors,
    config_of,
    db_option,
    emit_json,
    json_option,
    open_store,
    ring_option,
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


@click.command(name="config")
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


@click.command()
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


@click.command()
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


@click.command()
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
