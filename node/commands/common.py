"""What several `meshboard` command modules share beyond node/rings_cli.py's options: `-v`
logging, the `--config` file of the running command, and the rings a command covers.

These were node/cli.py's own when it held every command; they live here so that node/cli.py,
which each run of `meshboard` imports, stays light, and so that no command module imports
another.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from board.config import MeshboardConfig, RingSpec
from node.logs import configure_logging
from node.rings_cli import config_of

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


def current_config() -> MeshboardConfig:
    """The rings this invocation works with: the `--config` file's, read once."""
    return config_of(click.get_current_context())


def served_rings(ring: RingSpec | None) -> list[int]:
    """The channels a command covers: every ring served here, or the one `--ring` named if it
    is served (`export`, `tally`)."""
    served = sorted(current_config().served)
    if ring is None:
        return served
    if ring.channel not in served:
        raise click.ClickException(f"ring {ring.name!r} is not served here")
    return [ring.channel]
