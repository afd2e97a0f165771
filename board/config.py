"""The configuration file: which channel is which ring, what the board serves, who moderates.

Neighbourhoods organise in rings: a public outer ring on the default channel and invitation-only
inner circles on channels with their own keys. The radio knows channels only by index (0-7);
people and the CLI know rings by name. This file is where the two meet, in TOML (stdlib
`tomllib`), so that an operator can edit it with any text editor on the Pi.

A board with no file serves one ring, `public`, on channel 0. A ring listed with `serve = false`
is known by name (the CLI can show it) but the board neither stores nor relays its bulletins and
does not answer commands on its channel.

Every problem is a `ConfigError` naming the ring and the key, because the person reading it is
at a Pi with an editor open, not at a debugger.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from board.errors import BoardError

MAX_CHANNEL = 7
PUBLIC_KEY_BYTES = (
    32  # a Meshtastic node's Curve25519 public key  # Meshtastic radios have eight channels, 0-7
)
RING_NAME = re.compile(r"[a-z][a-z0-9-]{0,11}")
NODE_ID = re.compile(r"![0-9a-f]{8}")
_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: MQTT's registered ports: 1883 plain, 8883 over TLS (IANA; the MQTT 3.1.1 spec, section 4.2).
BRIDGE_PORTS = {"mqtt": 1883, "mqtts": 8883}
_BRIDGE_KEYS = frozenset({"bridge_username", "bridge_password_file", "bridge_ca_file"})

EXAMPLE = """\
# Meshboard configuration (TOML). `meshboard config --example` prints this file;
# firmware_notes/meshboard.toml is a copy. A board node's service reads
# /etc/meshboard/meshboard.toml at start (MESHBOARD_CONFIG). Other commands take
# `meshboard --config FILE ...` or MESHBOARD_CONFIG. After each edit,
# `meshboard --config FILE config` checks the file and shows what the board will serve.
# Without a file the board serves one ring, "public", on channel 0.

# One [[ring]] table per Meshtastic channel the neighbourhood uses.
[[ring]]
name = "public"          # lowercase, up to 12 characters; used with --ring and shown to people
channel = 0              # the radio's channel index, 0-7 (0 is the primary channel)
serve = true             # store, relay and answer this ring's bulletins on this board
# digest = "6h"          # opt in: broadcast "new: 2 meal, 1 tool" at most once per interval
# web = true             # show this ring on `meshboard web`'s page (never a private ring)

# Moderators of this ring take turns: one is on duty per period, in the order listed,
# starting with the first on `starts` (a date, at 00:00 UTC). These node ids are examples:
# put your moderators' (firmware_notes/radio.md, PKI keys), or delete this whole table for
# a ring without moderators.
[ring.moderation]
moderators = ["!1234abcd", "!5678ef01", "!9abc2345"]
rotation = "1w"          # m, h, d or w: "1w" is one week each
starts = "2026-01-05"
# Public keys of the boards whose moderation and ring members this board accepts over
# the air (`meshboard moderators` prints this board's own key). Empty: only this board's own.
boards = []
# Each moderator's radio public key, pinned: a `mod` command from that node id with any
# other key is refused. `meshboard moderators --pin` copies them from the radio once you
# have compared them with the moderators' own screens. Unpinned moderators are trusted on
# the key their radio presents (the firmware's PKI check alone).
# [ring.moderation.keys]
# "!1234abcd" = "base64 of the 32-byte key"

# An invitation-only circle on its own channel key. Set the channel up on the radio first
# (firmware_notes/radio.md); a board that does not serve it ignores it entirely. Delete this
# ring if your radio has no channel 1, or give it your ring's name and channel.
[[ring]]
name = "garden"
channel = 1
serve = true
# Join this ring through an MQTT broker as well as over the air. Boards on the same channel
# (same name and key) meet there; the broker sees only sealed bytes, under a topic that names
# neither. The files are read when the board connects; a relative path is from this file.
# bridge = "mqtts://broker.example:8883"     # or "mqtt://HOST:PORT"; the port is optional
# bridge_username = "garden-board"
# bridge_password_file = "/etc/meshboard/broker-password"
# bridge_ca_file = "/etc/meshboard/broker-ca.pem"   # mqtts only: a broker with its own CA

# Where `meshboard web` listens (the rings with web = true): the board's Wi-Fi address,
# firmware_notes/wifi-hotspot.md. Without it, "lan:8080": every private address of the Pi.
# [web]
# listen = "10.42.0.1:80"
"""


class ConfigError(BoardError):
    """The configuration file cannot be used as written."""


def parse_duration(text: str, *, where: str) -> timedelta:
    """`"30m"`, `"6h"`, `"7d"`, `"1w"`: a positive duration."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise ConfigError(f"{where}: {text!r} is not a duration such as 30m, 6h, 7d or 1w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@dataclass(frozen=True)
class Rotation:
    """Moderators taking turns: `moderators[i]` is on duty in the i-th period after `starts`."""

    moderators: tuple[str, ...]
    period: timedelta
    starts: datetime  # UTC aware

    def on_duty(self, now: datetime) -> str | None:
        """Who moderates at `now`; None before the rotation starts or with nobody listed."""
        if not self.moderators or now < self.starts:
            return None
        turn = (now - self.starts) // self.period
        return self.moderators[turn % len(self.moderators)]

    def next_change(self, now: datetime) -> datetime:
        """When the next moderator takes over (the start itself, before the rotation starts)."""
        if now < self.starts:
            return self.starts
        turn = (now - self.starts) // self.period
        return self.starts + (turn + 1) * self.period


@dataclass(frozen=True)
class BridgeSpec:
    """Where a ring also meets over MQTT (issue 18).

    Only the files' paths are kept: the daemon reads them when it connects, so a changed
    password needs no new configuration and the file can be checked on any machine.
    """

    url: str  # as written, for messages
    host: str
    port: int
    tls: bool
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None  # None with tls: the system's trusted CAs


@dataclass(frozen=True)
class RingSpec:
    """One ring: a name for people, a channel index for the radio."""

    name: str
    channel: int
    serve: bool = True
    digest: timedelta | None = None  # opt-in digest broadcast, at most one per interval
    rotation: Rotation | None = None
    trusted_boards: tuple[str, ...] = ()  # base64 public keys whose moderation we accept
    #: Moderators' radio public keys, as the operator pinned them (`meshboard moderators
    #: --pin`): node id -> 32-byte key. A `mod` command from a pinned moderator's node id is
    #: carried out only when the radio decrypted it with this key.
    pinned_keys: tuple[tuple[str, bytes], ...] = ()
    #: Shown on the board's web page (`meshboard web`), if it is not private: never otherwise.
    web: bool = False
    #: Also joined through this MQTT broker; None: over the air only.
    bridge: BridgeSpec | None = None

    @property
    def private(self) -> bool:
        """An inner circle: any ring but the primary channel's, which everyone can read."""
        return self.channel != 0

    def pinned_key(self, node: str) -> bytes | None:
        return dict(self.pinned_keys).get(node)

    def moderates(self, node: str) -> bool:
        """Whether `node` is one of this ring's moderators (on duty or not)."""
        return self.rotation is not None and node in self.rotation.moderators


@dataclass(frozen=True)
class MeshboardConfig:
    rings: tuple[RingSpec, ...] = field(default_factory=lambda: (RingSpec("public", 0),))
    source: Path | None = None  # the file it was read from, for messages
    #: `[web] listen`: where `meshboard web` listens, "HOST:PORT"; None: its own default.
    web_listen: str | None = None

    @property
    def on_the_web(self) -> tuple[RingSpec, ...]:
        """The rings the web page shows: `web = true` and not private, whatever else says."""
        return tuple(spec for spec in self.rings if spec.web and not spec.private)

    @property
    def bridged(self) -> tuple[RingSpec, ...]:
        """The served rings that also meet through an MQTT broker."""
        return tuple(spec for spec in self.rings if spec.serve and spec.bridge is not None)

    @property
    def served(self) -> frozenset[int]:
        """Channel indexes whose bulletins this board stores, relays and answers."""
        return frozenset(r.channel for r in self.rings if r.serve)

    def by_channel(self, channel: int) -> RingSpec | None:
        return next((r for r in self.rings if r.channel == channel), None)

    def ring(self, name_or_channel: str) -> RingSpec:
        """The ring a person named on the command line: its name, or its channel index."""
        wanted = name_or_channel.strip().lower()
        for spec in self.rings:
            if spec.name == wanted or wanted == str(spec.channel):
                return spec
        known = ", ".join(f"{r.name} ({r.channel})" for r in self.rings)
        raise ConfigError(f"no ring {name_or_channel!r}; rings: {known}")

    def name_of(self, channel: int) -> str:
        """A ring's name, or `ring N` for a channel the file does not mention."""
        spec = self.by_channel(channel)
        return spec.name if spec is not None else f"ring {channel}"


DEFAULT_CONFIG = MeshboardConfig()


def load_config(path: Path | None) -> MeshboardConfig:
    """Read `path`; None means no file, the default one public ring."""
    if path is None:
        return DEFAULT_CONFIG
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: no such file") from error
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    return parse_config(data, source=path)


def parse_config(data: Mapping[str, Any], *, source: Path | None = None) -> MeshboardConfig:
    prefix = f"{source}: " if source is not None else ""
    unknown = set(data) - {"ring", "web"}
    if unknown:
        raise ConfigError(
            f"{prefix}unknown section {sorted(unknown)[0]!r}; expected [[ring]] or [web]"
        )
    tables = data.get("ring", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{prefix}no [[ring]] tables: at least one ring is needed")
    base = source.parent if source is not None else None
    rings = tuple(_ring(table, i, prefix, base) for i, table in enumerate(tables))
    for attribute in ("name", "channel"):
        seen: set[object] = set()
        for spec in rings:
            value = getattr(spec, attribute)
            if value in seen:
                raise ConfigError(f"{prefix}two rings have {attribute} {value!r}")
            seen.add(value)
    return MeshboardConfig(rings=rings, source=source, web_listen=_web_listen(data, prefix))


def _web_listen(data: Mapping[str, Any], prefix: str) -> str | None:
    """`[web] listen = "10.42.0.1:80"`; the address itself is checked where it is used."""
    table = data.get("web")
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) - {"listen"}:
        raise ConfigError(f'{prefix}[web] takes one key, listen = "HOST:PORT"')
    listen = table.get("listen")
    if listen is not None and not isinstance(listen, str):
        raise ConfigError(f'{prefix}[web] listen must be "HOST:PORT", got {listen!r}')
    return listen


def _ring(table: object, index: int, prefix: str, base: Path | None) -> RingSpec:
    where = f"{prefix}[[ring]] #{index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: not a table")
    unknown = set(table) - {"name", "channel", "serve", "digest", "moderation", "web", "bridge"}
    unknown -= _BRIDGE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    name = table.get("name")
    if not isinstance(name, str) or RING_NAME.fullmatch(name) is None:
        raise ConfigError(
            f"{where}: name must be lowercase letters, digits or '-', up to 12, got {name!r}"
        )
    where = f"{prefix}ring {name!r}"
    channel = table.get("channel")
    if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel <= 7:
        raise ConfigError(f"{where}: channel must be 0-{MAX_CHANNEL}, got {channel!r}")
    serve = table.get("serve", True)
    if not isinstance(serve, bool):
        raise ConfigError(f"{where}: serve must be true or false, got {serve!r}")
    digest_text = table.get("digest")
    digest = None
    if digest_text is not None:
        if not isinstance(digest_text, str):
            raise ConfigError(f'{where}: digest must be a duration such as "6h"')
        digest = parse_duration(digest_text, where=f"{where}: digest")
    web = table.get("web", False)
    if not isinstance(web, bool):
        raise ConfigError(f"{where}: web must be true or false, got {web!r}")
    if web and channel != 0:
        raise ConfigError(
            f"{where}: web = true on a private ring (channel {channel}): only the public "
            "ring's bulletins may be on the web page"
        )
    rotation, boards, pinned = _moderation(table.get("moderation"), where)
    bridge = _bridge(table, where, base)
    return RingSpec(name, channel, serve, digest, rotation, boards, pinned, web=web, bridge=bridge)


def _bridge(table: Mapping[str, Any], where: str, base: Path | None) -> BridgeSpec | None:
    """`bridge = "mqtts://HOST:PORT"` and its `bridge_*` keys; no file is read here."""
    url = table.get("bridge")
    if url is None:
        extra = sorted(_BRIDGE_KEYS & set(table))
        if extra:
            raise ConfigError(f'{where}: {extra[0]} without bridge = "mqtts://HOST:PORT"')
        return None
    host, port, tls = _broker(url, f"{where}: bridge")
    username = table.get("bridge_username")
    if username is not None and (not isinstance(username, str) or not username.strip()):
        raise ConfigError(f"{where}: bridge_username must be a user name, got {username!r}")
    password_file = _bridge_file(table, "bridge_password_file", where, base)
    if password_file is not None and username is None:
        raise ConfigError(
            f"{where}: bridge_password_file needs bridge_username: MQTT sends them together"
        )
    ca_file = _bridge_file(table, "bridge_ca_file", where, base)
    if ca_file is not None and not tls:
        raise ConfigError(
            f"{where}: bridge_ca_file is for TLS, but {url!r} is plain mqtt://: use mqtts://"
        )
    return BridgeSpec(url, host, port, tls, username, password_file, ca_file)


def _broker(url: object, where: str) -> tuple[str, int, bool]:
    """(host, port, tls) from "mqtt://HOST[:PORT]" or "mqtts://HOST[:PORT]", and nothing more."""
    example = '"mqtts://broker.example:8883"'
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where} must be a broker address like {example}, got {url!r}")
    if any(c.isspace() for c in url):
        raise ConfigError(f"{where}: {url!r} has a space in it; write it like {example}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in BRIDGE_PORTS or not url.lower().startswith(parts.scheme + "://"):
        raise ConfigError(
            f"{where}: {url!r} is not an MQTT broker address: it starts with mqtt:// or mqtts://"
        )
    if "@" in parts.netloc:
        raise ConfigError(
            f"{where}: {url!r} has a user name or password in it: use bridge_username and "
            "bridge_password_file, a password does not belong in a config file"
        )
    if parts.path not in ("", "/") or "?" in url or "#" in url:
        raise ConfigError(
            f"{where}: {url!r} has a path, query or fragment: write only "
            f"{parts.scheme}://HOST or {parts.scheme}://HOST:PORT"
        )
    if not parts.hostname:
        raise ConfigError(f"{where}: {url!r} names no broker host, as in {parts.scheme}://HOST")
    try:
        port = parts.port
    except ValueError:  # not a number, or over 65535
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ConfigError(f"{where}: {url!r} has a bad port: it is a number from 1 to 65535")
    tls = parts.scheme == "mqtts"
    return parts.hostname, port if port is not None else BRIDGE_PORTS[parts.scheme], tls


def _bridge_file(table: Mapping[str, Any], key: str, where: str, base: Path | None) -> Path | None:
    """A file the daemon reads when it connects: relative to the configuration file, if known."""
    text = table.get(key)
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: {key} must be a file's path, got {text!r}")
    path = Path(text)
    return base / path if base is not None and not path.is_absolute() else path


def _moderation(
    table: object, where: str
) -> tuple[Rotation | None, tuple[str, ...], tuple[tuple[str, bytes], ...]]:
    if table is None:
        return None, (), ()
    where = f"{where}: moderation"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: not a table")
    unknown = set(table) - {"moderators", "rotation", "starts", "boards", "keys"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    moderators = table.get("moderators", [])
    if not isinstance(moderators, list) or not all(
        isinstance(m, str) and NODE_ID.fullmatch(m.lower()) for m in moderators
    ):
        raise ConfigError(f'{where}: moderators must be node ids like "!1234abcd"')
    period = parse_duration(str(table.get("rotation", "1w")), where=f"{where}: rotation")
    starts_value = table.get("starts", date(2026, 1, 5))
    if isinstance(starts_value, datetime):
        starts = starts_value if starts_value.tzinfo else starts_value.replace(tzinfo=UTC)
    elif isinstance(starts_value, date):
        starts = datetime(starts_value.year, starts_value.month, starts_value.day, tzinfo=UTC)
    elif isinstance(starts_value, str):
        try:
            day = date.fromisoformat(starts_value)
        except ValueError as error:
            raise ConfigError(f"{where}: starts must be a date like 2026-01-05") from error
        starts = datetime(day.year, day.month, day.day, tzinfo=UTC)
    else:
        raise ConfigError(f"{where}: starts must be a date like 2026-01-05")
    boards = table.get("boards", [])
    if not isinstance(boards, list) or not all(isinstance(b, str) and b for b in boards):
        raise ConfigError(f"{where}: boards must be a list of public keys")
    rotation = Rotation(tuple(m.lower() for m in moderators), period, starts.astimezone(UTC))
    return rotation, tuple(boards), _pinned(table.get("keys", {}), rotation, where)


def _pinned(table: object, rotation: Rotation, where: str) -> tuple[tuple[str, bytes], ...]:
    """`keys = { "!1234abcd" = "<base64>" }`: each moderator's radio key, 32 bytes."""
    if not isinstance(table, dict):
        raise ConfigError(f'{where}: keys must be a table like {{ "!1234abcd" = "<base64>" }}')
    pinned = []
    for node, text in table.items():
        node = node.lower()
        if node not in rotation.moderators:
            raise ConfigError(f"{where}: keys: {node!r} is not one of the moderators")
        try:
            key = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
        except binascii.Error:
            key = b""
        if len(key) != PUBLIC_KEY_BYTES:
            raise ConfigError(
                f"{where}: keys: {node}'s key must be the 32-byte public key in base64, "
                "as `meshboard moderators --pin` writes it"
            )
        pinned.append((node, key))
    return tuple(sorted(pinned))
