"""What every `meshboard` command shares: `--db`, `--tz`, `--json`, the store, the `--config`
file and `--ring`.

Kept out of node/cli.py (the root group) and node/commands/ (the commands), which import it.
Light on purpose: node/cli.py imports it on every run, so the store (SQLAlchemy) is imported
only inside `open_store`, and `meshboard web`, which never opens the store, never loads it.

`--config` is read lazily, once, so that `config --example`, `demo` and `--help` work even
beside a broken file; `--ring` takes a ring's name or its channel index.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import platformdirs
import tzlocal

from board.config import ConfigError, MeshboardConfig, RingSpec, load_config
from board.errors import BoardError
from node.link import LinkError

if TYPE_CHECKING:
    from board.store.bulletins import Store

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def default_db_path() -> Path:
    """The database lives in the user's data directory, never in the working directory."""
    return platformdirs.user_data_path("meshboard") / "meshboard.db"


def zone(_ctx: click.Context, _param: click.Parameter, value: str | None) -> ZoneInfo:
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
    callback=zone,
    help="Time zone for event times people type (default: this machine's).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Output JSON for scripts.")
shown = functools.partial(click.option, show_default=True)


@contextmanager
def board_errors() -> Iterator[None]:
    """Turn domain and radio errors into click's one-line error and exit code 1."""
    try:
        yield
    except (BoardError, LinkError) as error:
        raise click.ClickException(str(error)) from error


def open_store(db_path: Path, *, create: bool = False) -> Store:
    """The board's store; only commands that write (`run`, `post`, `import`) create the file,
    so a mistyped `--db` is an error rather than a new, empty board."""
    if not create and not db_path.exists():
        raise click.ClickException(
            f"no database at {db_path} (a daemon creates it; `meshboard post` too)"
        )
    from board.store.bulletins import Store  # SQLAlchemy: only for the commands that open it

    with board_errors():
        try:
            return Store.open(db_path)
        except OSError as error:
            raise click.ClickException(f"cannot open database {db_path}: {error}") from error


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@dataclass
class CliState:
    """The click context object: the `--config` file, read once when a command first needs it.

    Read lazily so that `config --example`, `demo` and `--help` work even beside a broken file.
    """

    config_path: Path | None = None
    _config: MeshboardConfig | None = None

    @property
    def config(self) -> MeshboardConfig:
        try:
            return self.config_or_error()
        except ConfigError as error:
            raise click.ClickException(str(error)) from error

    def config_or_error(self) -> MeshboardConfig:
        """The configuration; ConfigError when the file cannot be used."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def config_of(ctx: click.Context) -> MeshboardConfig:
    """The configuration `meshboard --config` named (the default one ring without a file)."""
    return ctx.find_root().ensure_object(CliState).config


def resolve_ring(ctx: click.Context, value: str, *, must_serve: bool = False) -> RingSpec:
    """The ring a person named by name or channel index; a clean error listing the rings."""
    config = config_of(ctx)
    try:
        spec = config.ring(value)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    if must_serve and not spec.serve:
        where = config.source if config.source is not None else "the configuration"
        raise click.ClickException(
            f"this board does not serve ring {spec.name} (channel {spec.channel}); "
            f"set serve = true for it in {where}"
        )
    return spec


def first_served(ctx: click.Context) -> RingSpec:
    """The ring a command acts on when no `--ring` is given: the first the board serves."""
    config = config_of(ctx)
    spec = next((r for r in config.rings if r.serve), None)
    if spec is None:
        raise click.ClickException("this board serves no ring; set serve = true for one")
    return spec


def ring_option(
    *, default_served: bool = False, must_serve: bool = False, help: str | None = None
) -> Callable[[F], F]:
    """`--ring NAME|CHANNEL`, passed to the command as `ring: RingSpec | None`.

    Without the option the command gets None (every ring), or with `default_served` the first
    ring the board serves. `must_serve` refuses a ring the board does not serve (writes).
    """

    def callback(ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return first_served(ctx) if default_served else None
        return resolve_ring(ctx, value, must_serve=must_serve)

    default_help = "Ring: its name or channel index" + (
        " (default: the first ring served)." if default_served else " (default: every ring)."
    )
    return click.option(
        "--ring", "ring", metavar="RING", callback=callback, help=help or default_help
    )
