"""`meshboard moderators --pin`: moderators' radio keys, from the radio into the config file.

A `mod` command is only as trustworthy as the node id it comes from, and the firmware vouches
for a node id with whatever key it first heard for it. Pinning the key an operator has compared
with the moderator's own app closes that gap: the board then refuses a `mod` from that node id
with any other key (an impostor who took the id, or a moderator who reset their radio). The
radio is the only place that knows the keys, so this opens a link to it like `doctor` does; the
file is the operator's, so it is edited with tomlkit, which keeps their comments and layout,
and checked before and after writing so a board never starts on a file we broke. A pin that
differs from the radio's is never changed without `replace`: that is the very case pinning is
there to catch. The conversation (echo, confirm) is passed in, so the pinning itself can be
driven by a test or another front end. node/commands/rings.py imports this only when it pins,
so the other commands (`meshboard web` on a Pi Zero's memory among them) never load tomlkit.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import InlineTable, Table, Whitespace

from board.config import ConfigError, MeshboardConfig, RingSpec, load_config, parse_config
from board.errors import BoardError
from node.link import HANDSHAKE_TIMEOUT, LinkError
from node.rings_view import fingerprint, key_text

logger = logging.getLogger(__name__)


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
