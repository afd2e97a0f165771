"""`meshboard export` and `import`: bulletins carried between boards on a USB drive, as a
signed bundle file (board/sync/bundle.py), when no radio path joins them.

A large file gets a progress bar on a terminal; a changed or cut file is refused whole.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from board.config import ConfigError, RingSpec, parse_duration
from board.signing import BoardKey, key_path
from board.sync.bundle import (
    decode_bundle,
    encode_bundle,
    export_items,
    import_bundle,
    write_atomically,
)
from node.clock import SYSTEM_CLOCK
from node.commands.common import current_config, served_rings
from node.records import import_record
from node.rings_cli import (
    board_errors,
    db_option,
    emit_json,
    json_option,
    open_store,
    ring_option,
    tz_option,
)

#: A file this big gets a progress bar on a terminal (smaller ones finish before it would draw).
PROGRESS_BYTES = 64 * 1024


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


@contextmanager
def _progress(size: int, length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for a large file, when stderr is a terminal; else nothing."""
    stream = sys.stderr
    if size < PROGRESS_BYTES or not stream.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=stream) as bar:
        yield lambda done: bar.update(done)


@click.command(name="export")
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
    rings = served_rings(ring)
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


@click.command(name="import")
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
