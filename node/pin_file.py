"""`moderators --pin`'s write: the moderators' radio keys into the operator's config file.

The file is the operator's, so it is edited with tomlkit, which keeps their comments and
layout, and what is written must load before it replaces anything. Its own module so that the
commands that never pin (`meshboard web` among them, on a Pi Zero's memory) do not load tomlkit.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import InlineTable, Table, Whitespace

from board.config import ConfigError, MeshboardConfig, load_config, parse_config
from node.rings_cli import Pin, PinError
from node.rings_view import key_text

logger = logging.getLogger(__name__)


def write_pins(path: Path, pins: Sequence[Pin]) -> MeshboardConfig:
    """Set each pin's radio key in its ring's `[ring.moderation.keys]`, keeping the rest of
    the file as the operator wrote it; the file as written, loaded again."""
    try:
        with path.open(encoding="utf-8", newline="") as file:  # keep its line endings
            text = file.read()
    except OSError as error:
        raise PinError(f"cannot read {path}: {error.strerror or error}") from error
    document = tomlkit.parse(text)
    for pin in pins:
        assert pin.radio is not None
        keys = _keys_table(_ring_table(document, pin.ring.name, path), path)
        held = next((k for k in keys if str(k).lower() == pin.node), None)
        if held is not None:
            keys[held] = key_text(pin.radio)  # in place: a comment beside it stays
        else:
            _add(keys, pin.node, tomlkit.item(key_text(pin.radio)))
    written = tomlkit.dumps(document)
    try:
        parse_config(tomllib.loads(written), source=path)
    except (ConfigError, tomllib.TOMLDecodeError) as error:  # a bug here, not the operator's
        raise PinError(f"not written: {path} would not load with the keys: {error}") from error
    try:
        # In place, not a new file renamed over it: that would lose the file's owner and
        # group, and the board's service reads it as another user.
        with path.open("r+", encoding="utf-8", newline="") as file:
            file.write(written)
            file.truncate()
    except OSError as error:
        raise PinError(
            f"cannot write {path}: {error.strerror or error} (sudo, or the file's owner)"
        ) from error
    logger.info("pinned %d moderator key(s) in %s", len(pins), path)
    try:
        return load_config(path)
    except ConfigError as error:
        raise PinError(f"{path} was written but does not load: {error}") from error


def _ring_table(document: tomlkit.TOMLDocument, name: str, path: Path) -> Any:
    for table in document.get("ring", []):
        if table.get("name") == name:
            return table
    raise PinError(f"{path}: ring {name!r} is no longer in the file; run this again")


def _keys_table(ring: Any, path: Path) -> Any:
    """The ring's `[ring.moderation.keys]`, made if missing (inline if moderation is inline)."""
    moderation = ring.get("moderation")
    if moderation is None:
        raise PinError(f"{path}: ring {ring.get('name')!r} has no moderation table any more")
    if "keys" not in moderation:
        inline = isinstance(moderation, InlineTable)
        _add(moderation, "keys", tomlkit.inline_table() if inline else tomlkit.table())
    return moderation["keys"]


def _add(table: Any, key: str, item: Any) -> None:
    """Add `key` after the table's last entry and the comments right below it, but before a
    blank line and what follows: tomlkit appends after every trailing comment, and those
    usually introduce the next table (`[[ring]]`), so a key appended there would look as if
    it belonged to the next ring."""
    if not isinstance(table, Table):
        table[key] = item
        return
    body = table.value.body
    end = len(body)
    while end > 0 and body[end - 1][0] is None:  # comments and blank lines have no key
        end -= 1
    blank = next((i for i in range(end, len(body)) if isinstance(body[i][1], Whitespace)), None)
    insert_at = getattr(table.value, "_insert_at", None)  # private: a later tomlkit may lack it
    if blank is None or insert_at is None:
        table.append(key, item)
    else:
        insert_at(blank, key, item)
