"""`meshboard post`, `list`, `show` and `delete`: the bulletins of this board, from the Pi
itself rather than over the radio.

What the board operator types here goes through the same store and rules as a neighbour's
handheld message; a deletion is signed with the board's key so that other boards follow it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from board.bulletin import new_bulletin
from board.config import RingSpec
from board.handheld.commands import BoardConfig
from board.signing import BoardKey, key_path
from board.when import format_when, is_day_only, parse_when_text
from node.clock import SYSTEM_CLOCK
from node.records import bulletin_record
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

LOCAL_AUTHOR = "!00000000"  # bulletins posted on the Pi itself, by whoever runs the board


@click.command()
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


@click.command(name="list")
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


@click.command()
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


@click.command()
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
