"""What every `meshboard` command shares (`--db`, `--tz`, `--json`, the store, the `--config`
file, `--ring`) and the ring commands' work (`moderators --pin`).

Kept out of node/cli.py, which holds the commands, so that each stays a size one can read.

`--config` is read lazily, once, so that `config --example`, `demo` and `--help` work even
beside a broken file; `--ring` takes a ring's name or its channel index.

`moderators --pin` copies moderators' radio keys from the radio into the config file. A `mod`
command is only as trustworthy as the node id it comes from, and the firmware vouches for a
node id with whatever key it first heard for it. Pinning the key an operator has compared with
the moderator's own app closes that gap: the board then refuses a `mod` from that node id with
any other key (an impostor who took the id, or a moderator who reset their radio). The radio
is the only place that knows the keys, so this opens a link to it like `doctor` does; the file
is the operator's, so node/pin_file.py edits it keeping their comments and layout, and checks
it before and after writing so a board never starts on a file we broke. A pin that
differs from the radio's is never changed without `replace`: that is the very case pinning is
there to catch. The conversation (echo, confirm) is passed in, so the pinning itself can be
driven by a test or another front end.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import platformdirs
import tzlocal

from board.config import ConfigError, MeshboardConfig, RingSpec, load_config
from board.errors import BoardError
from board.store.bulletins import Store
from node.link import HANDSHAKE_TIMEOUT, LinkError
from node.rings_view import fingerprint, key_text

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


# -- moderators --pin -----------------------------------------------------------------------


LIST_PORTS = "ls -l /dev/serial/by-id/"


class PinError(BoardError):
    """The keys cannot be pinned as asked; the message says what to do."""


class PinState(Enum):
    NEW = "new"  # the radio has a key, none is pinned: it will be pinned
    SAME = "same"  # pinned already, the radio agrees
    DIFFERS = "differs"  # pinned, and the radio holds another key: an impostor, or a reset
    UNKNOWN = "unknown"  # the radio has no key for this node: nothing to pin


@dataclass(frozen=True)
class Pin:
    """One moderator of one ring: the key the radio holds and the one the file pins."""

    ring: RingSpec
    node: str
    radio: bytes | None
    pinned: bytes | None

    @property
    def state(self) -> PinState:
        if self.radio is None:
            return PinState.UNKNOWN
        if self.pinned is None:
            return PinState.NEW
        return PinState.SAME if self.pinned == self.radio else PinState.DIFFERS


def plan(rings: Sequence[RingSpec], radio_keys: Mapping[str, bytes]) -> list[Pin]:
    """Every listed moderator of `rings`, in the file's order, beside the radio's key."""
    return [
        Pin(spec, node, radio_keys.get(node) or None, spec.pinned_key(node))
        for spec in rings
        if spec.rotation is not None
        for node in spec.rotation.moderators
    ]


def radio_keys(port: str, timeout: float = HANDSHAKE_TIMEOUT) -> tuple[str, dict[str, bytes]]:
    """The radio's own node id and the public key its node database holds per node id."""
    from node.meshtastic_link import MeshtasticLink  # only `moderators --pin` opens the radio

    link = MeshtasticLink(port, handshake_timeout=timeout)
    try:
        link.start(lambda _received: None, lambda: None)
        return link.node_id, link.known_keys()
    except LinkError as error:
        raise PinError(
            f"no radio answered on {port}: {error}. Is it the radio's port ({LIST_PORTS})? "
            "A running board holds the port: stop it first (sudo systemctl stop meshboard)"
        ) from error
    finally:
        link.close()


def report_lines(pins: Sequence[Pin]) -> list[str]:
    """Per ring, each moderator's key as the radio holds it and what pinning will do."""
    lines: list[str] = []
    ring: RingSpec | None = None
    for pin in pins:
        if pin.ring is not ring:
            ring = pin.ring
            lines.append(f"{ring.name} (channel {ring.channel}):")
        state, node = pin.state, pin.node
        if state is PinState.UNKNOWN:
            kept = "" if pin.pinned is None else f"; keeps its pin {fingerprint(pin.pinned)}"
            lines.append(f"  {node}  no key: cannot pin{kept}")
            lines.append("      the radio has not heard its NodeInfo: ask the moderator to send")
            lines.append("      a message (any, on the mesh), then run this again")
            continue
        assert pin.radio is not None
        what = {
            PinState.NEW: "new, to pin",
            PinState.SAME: "pinned already, the same",
            PinState.DIFFERS: "DIFFERS FROM THE PINNED KEY",
        }[state]
        lines.append(f"  {node}  {fingerprint(pin.radio)}  {what}")
        lines.append(f"      radio key: {key_text(pin.radio)}")
        if state is PinState.DIFFERS:
            assert pin.pinned is not None
            lines.append(f"      pinned:    {key_text(pin.pinned)}")
            lines.append("      WARNING: someone may be using this moderator's node id (an")
            lines.append(
                "      impostor), or the moderator reset their radio: a new key. Ask them."
            )
    return lines


def pin_moderators(
    config: MeshboardConfig,
    rings: Sequence[RingSpec],
    port: str,
    *,
    replace: bool,
    echo: Callable[[str], None],
    confirm: Callable[[str], bool] | None,
    timeout: float = HANDSHAKE_TIMEOUT,
) -> None:
    """The whole `--pin`: read, show, ask (`confirm` None: don't), write, check; PinError
    for anything that stops it, and at the end for a differing pin left alone."""
    path = config.source
    if path is None:
        raise PinError(
            "--pin writes the keys into the configuration file: name it with "
            "`meshboard --config FILE moderators --pin ...` or MESHBOARD_CONFIG"
        )
    if not os.access(path, os.W_OK):  # now, before the operator compares any keys
        raise PinError(f"cannot write {path}: permission denied (sudo, or the file's owner)")
    moderated = [r for r in rings if r.rotation is not None and r.rotation.moderators]
    if not moderated:
        names = ", ".join(r.name for r in rings)
        raise PinError(f"{names}: no moderators listed in {path}, so no keys to pin")
    own, keys = radio_keys(port, timeout)
    pins = plan(moderated, keys)
    echo(f"keys held by radio {own} on {port}, in base64 as the Meshtastic apps show them")
    echo("(compare each with the moderator's app: its Security settings, Public Key):")
    for line in report_lines(pins):
        echo(line)
    differs = [p for p in pins if p.state is PinState.DIFFERS]
    writes = [p for p in pins if p.state is PinState.NEW or (replace and p in differs)]
    if writes:
        question = f"pin {len(writes)} key(s) in {path}?"
        if confirm is not None and not confirm(question):
            raise PinError("nothing written")
        from node.pin_file import write_pins  # tomlkit: only when something is written

        loaded = write_pins(path, writes)
        echo(f"wrote {len(writes)} key(s) to {path}; it loads:")
        for spec in (loaded.ring(r.name) for r in moderated):
            assert spec.rotation is not None
            count = sum(spec.pinned_key(m) is not None for m in spec.rotation.moderators)
            echo(f"  {spec.name}: {count} of {len(spec.rotation.moderators)} moderator key(s)")
        echo("restart the board to use them: sudo systemctl restart meshboard")
    else:
        echo(f"nothing to write to {path}")
    left = [p for p in differs if p not in writes]
    if left:
        who = ", ".join(f"{p.node} ({p.ring.name})" for p in left)
        raise PinError(
            f"the radio's key differs from the pinned one for {who}; the pin is unchanged. "
            "Check the key with the moderator, then run again with --replace to pin the radio's"
        )
