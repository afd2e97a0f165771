"""The `meshboard` command: the root group, its `--config` option, and which module holds each
subcommand. With node/rings_cli.py (`--config`, `--ring`) and node/commands/, the only modules
that import click.

A subcommand's module is imported only when that subcommand runs (click's "lazily loading
subcommands"), so `meshboard web` on a Pi Zero never loads the store, SQLAlchemy or the
signing library that other commands need. This module therefore imports only click, the
standard library and node/rings_cli.py.

Domain errors from `board/` and link errors become one `Error: …` line and exit code 1.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from node.rings_cli import CliState

#: Each command's name and where it lives, "module:attribute", grouped by job.
COMMANDS: Mapping[str, str] = {
    "run": "node.commands.daemon:run",
    "status": "node.commands.daemon:status",
    "doctor": "node.commands.daemon:doctor",
    "post": "node.commands.bulletins:post",
    "list": "node.commands.bulletins:list_",
    "show": "node.commands.bulletins:show",
    "delete": "node.commands.bulletins:delete",
    "config": "node.commands.rings:config_",
    "moderators": "node.commands.rings:moderators",
    "members": "node.commands.rings:members",
    "audit": "node.commands.rings:audit",
    "export": "node.commands.bundles:export_",
    "import": "node.commands.bundles:import_",
    "tally": "node.commands.tally:tally",
    "demo": "node.commands.simulation:demo",
    "sim": "node.commands.simulation:sim",
    "web": "node.commands.web:web",
    "poster": "node.commands.web:poster",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is asked for.

    `--help` still lists every command (it loads them all to show their help lines), in
    alphabetical order as click's own group does.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.lazy_commands.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = where.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{where} is not a click command")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's, with "Did you mean" looking among the lazy names too: click takes its
        suggestions from the commands already loaded, which here are none."""
        try:
            return super().resolve_command(ctx, args)
        except click.NoSuchCommand as error:
            raise click.NoSuchCommand(
                error.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
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
