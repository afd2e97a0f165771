"""What a board node needs from its radio's settings, and the `meshtastic` command that fixes each.

The facts come from the config handshake (`RadioState`), reduced to plain values here, so every
check is a function of (facts, configuration) and every fix names the port the person gave.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from meshtastic.protobuf import channel_pb2, config_pb2

from board.config import MeshboardConfig, RingSpec
from node.doctor.findings import Finding, fail, ok, warn
from node.meshtastic_link import RadioState

Region = config_pb2.Config.LoRaConfig.RegionCode
Preset = config_pb2.Config.LoRaConfig.ModemPreset
Role = config_pb2.Config.DeviceConfig.Role
GpsMode = config_pb2.Config.PositionConfig.GpsMode

#: Firmware 2.5 brought PKI direct messages: the only sender identity a shared channel key
#: cannot forge, and the only way a moderator's `mod del` is accepted (firmware_notes/radio.md).
PKI_FIRMWARE = (2, 5)
#: The protocol Meshboard is written and tested against (client pinned `<2.8`); the notes ask
#: people not to install a newer major line until Meshboard says it supports it.
NEWEST_TESTED = (2, 7)
FLASHER = "https://flasher.meshtastic.org"

#: The well-known AES-128 key behind the public channel's 1-byte PSK `AQ==` (0x01). A 1-byte
#: PSK n stands for this key with n - 1 added to its last byte, so every key that differs from
#: it only in the last byte is known to the world as well.
DEFAULT_KEY = bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e6901")

#: Roles under which a radio serves a board: CLIENT, the default the notes recommend, and
#: CLIENT_MUTE, which never relays (fine beside a better-placed node).
GOOD_ROLES = frozenset({Role.CLIENT, Role.CLIENT_MUTE})
#: Roles that relay more than a client (or hide the board): the board still works, but it
#: spends the airtime it needs for replies on rebroadcasts, or handhelds never learn its key.
DOUBTFUL_ROLES = {
    Role.ROUTER: "rebroadcasts every packet, spending the airtime the board needs",
    Role.ROUTER_LATE: "rebroadcasts every packet late, spending the airtime the board needs",
    Role.ROUTER_CLIENT: "is deprecated and rebroadcasts like a router",
    Role.CLIENT_BASE: "rebroadcasts its favourites' packets like a router",
    Role.CLIENT_HIDDEN: "does not announce itself: handhelds never learn the board's name or key",
}
#: Roles built for something else: they sleep, send only their position or sensor readings,
#: or speak the TAK format, and a board on them does not answer people.
BROKEN_ROLES = {
    Role.REPEATER: "is an infrastructure relay with no client API use",
    Role.TRACKER: "sleeps between position reports",
    Role.SENSOR: "sleeps between sensor reports",
    Role.TAK: "speaks the TAK format to an ATAK app",
    Role.TAK_TRACKER: "sleeps between TAK position reports",
    Role.LOST_AND_FOUND: "broadcasts its position for finding a lost radio",
}


class KeyKind(StrEnum):
    PUBLIC = "public"  # the default key or one derived from it: anyone can read
    PRIVATE = "private"  # a key of its own
    OPEN = "open"  # no encryption at all


def key_kind(psk: bytes) -> KeyKind:
    """Meshtastic's PSK convention: empty or 0x00 is no crypto, one byte names a default key."""
    if psk in (b"", b"\x00"):
        return KeyKind.OPEN
    if len(psk) == 1 or (len(psk) == len(DEFAULT_KEY) and psk[:-1] == DEFAULT_KEY[:-1]):
        return KeyKind.PUBLIC
    return KeyKind.PRIVATE


@dataclass(frozen=True)
class ChannelFacts:
    index: int
    name: str
    psk: bytes

    @property
    def key(self) -> KeyKind:
        return key_kind(self.psk)

    @property
    def label(self) -> str:
        return self.name or "(default name)"


@dataclass(frozen=True)
class RadioFacts:
    """What the checks need from the radio, as plain values."""

    node_id: str
    long_name: str
    firmware: str
    region: int
    modem_preset: int
    use_preset: bool
    role: int
    channels: tuple[ChannelFacts, ...]  # the enabled ones, by index
    public_key: bytes
    gps_mode: int
    radio_time: datetime | None  # the radio's clock at the handshake, when it trusts it

    @classmethod
    def of(cls, state: RadioState) -> RadioFacts:
        config = state.config
        user = state.own_node.get("user")
        long_name = user.get("longName", "") if isinstance(user, dict) else ""
        last_heard = state.own_node.get("lastHeard")
        radio_time = None
        if isinstance(last_heard, int) and last_heard > 0:
            radio_time = datetime.fromtimestamp(last_heard, UTC)
        return cls(
            node_id=f"!{state.node_num:08x}",
            long_name=str(long_name),
            firmware=state.metadata.firmware_version if state.metadata is not None else "",
            region=config.lora.region,
            modem_preset=config.lora.modem_preset,
            use_preset=config.lora.use_preset,
            role=config.device.role,
            channels=tuple(
                ChannelFacts(c.index, c.settings.name, bytes(c.settings.psk))
                for c in state.channels
                if c.role != channel_pb2.Channel.Role.DISABLED
            ),
            public_key=bytes(config.security.public_key),
            gps_mode=config.position.gps_mode,
            radio_time=radio_time,
        )

    def channel(self, index: int) -> ChannelFacts | None:
        return next((c for c in self.channels if c.index == index), None)


def check_radio(facts: RadioFacts, config: MeshboardConfig, port: str) -> list[Finding]:
    """Every settings finding about the radio, in the order a person would fix them."""
    cli = f"meshtastic --port {port}"
    return [
        firmware(facts.firmware, cli),
        region(facts.region, cli),
        *modem(facts.modem_preset, facts.use_preset, cli),
        role(facts.role, cli),
        *channels(facts, config, cli),
        pki(facts.public_key, facts.long_name, config, cli),
    ]


def parse_version(text: str) -> tuple[int, int, int] | None:
    """`2.7.15.567b8ea` → (2, 7, 15); None when it does not start with three numbers."""
    match = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])


def firmware(text: str, cli: str) -> Finding:
    """2.5 and later have PKI direct messages; newer than the tested 2.7 line is untested."""
    flash = f"flash the newest 2.7.x at {FLASHER}"
    backup = f"{cli} --export-config > radio-backup.yaml   # first: keeps the radio's keys"
    version = parse_version(text)
    if version is None:
        return warn("firmware", f"cannot read the firmware version {text!r}", backup, flash)
    shown = ".".join(map(str, version))
    if version[:2] < PKI_FIRMWARE:
        return warn(
            "firmware",
            f"{shown}: before 2.5 there are no PKI direct messages, which moderators need",
            backup,
            flash,
        )
    if version[:2] > NEWEST_TESTED:
        return warn(
            "firmware",
            f"{shown}: newer than Meshboard is tested with (2.7)",
            backup,
            flash,
        )
    return ok("firmware", f"{shown} (PKI direct messages supported)")


def region(code: int, cli: str) -> Finding:
    """A radio with region UNSET does not transmit at all: nothing the board says gets out."""
    if code == Region.UNSET:
        return fail(
            "region",
            "UNSET: the radio will not transmit",
            f"{cli} --set lora.region EU_868   # or yours: US, UK_868, ANZ, IN, ...",
        )
    return ok("region", _name(Region, code))


def modem(preset: int, use_preset: bool, cli: str) -> list[Finding]:
    """Radios hear only radios with the same modulation: LONG_FAST is every mesh's default.

    A mesh may agree on another preset (busy ones use MEDIUM_FAST), so that is a warning,
    not a failure; custom modem settings (use_preset off) are rarer still.
    """
    if not use_preset:
        return [
            warn(
                "modem",
                "custom modem settings (use_preset off): the board hears only radios "
                "with exactly the same settings",
                f"{cli} --set lora.use_preset true",
            )
        ]
    name = _name(Preset, preset)
    if preset != Preset.LONG_FAST:
        return [
            warn(
                "modem",
                f"{name}: the board hears only radios on {name}; "
                "meshes use LONG_FAST unless they agreed otherwise",
                f"{cli} --set lora.modem_preset LONG_FAST   # unless your mesh uses {name}",
            )
        ]
    return [ok("modem", "LONG_FAST (the mesh default)")]


def role(code: int, cli: str) -> Finding:
    """CLIENT (or CLIENT_MUTE) answers people and relays only when that helps the mesh."""
    name = _name(Role, code)
    fix = f"{cli} --set device.role CLIENT"
    if code in GOOD_ROLES:
        return ok("role", name)
    if code in BROKEN_ROLES:
        return fail("role", f"{name} {BROKEN_ROLES[code]}: not a board", fix)
    reason = DOUBTFUL_ROLES.get(code, "is not a role Meshboard knows")
    return warn("role", f"{name} {reason}", fix)


def channels(facts: RadioFacts, config: MeshboardConfig, cli: str) -> list[Finding]:
    """Which channels the radio has, and whether the configuration's rings fit them.

    Every served ring needs its channel on the radio. A ring other than channel 0 on a
    well-known key is no private circle: anyone can read it. A channel without encryption
    lets anyone read and forge it. Channel 0 on a private key locks out the public mesh.
    """
    listing = ", ".join(f"{c.index} {c.label} {c.key}" for c in facts.channels)
    findings = [ok("channels", listing or "none enabled")]
    for open_channel in (c for c in facts.channels if c.key == KeyKind.OPEN):
        index = open_channel.index
        findings.append(
            fail(
                "channels",
                f"channel {index} {open_channel.label} has no encryption: "
                "anyone can read and forge it",
                f"{cli} --ch-index {index} --ch-set psk {'default' if index == 0 else 'random'}",
            )
        )
    for ring in config.rings:
        channel = facts.channel(ring.channel)
        if channel is None:
            if ring.serve:
                findings.append(_missing(ring, facts, config, cli))
            continue
        if ring.channel == 0:
            if ring.serve and channel.key == KeyKind.PRIVATE:
                findings.append(
                    warn(
                        "channels",
                        f"ring {ring.name} (channel 0) has a private key: "
                        "handhelds on the public mesh cannot reach the board",
                        f"{cli} --ch-index 0 --ch-set psk default",
                    )
                )
        elif channel.key == KeyKind.PUBLIC:
            findings.append(
                fail(
                    "channels",
                    f"ring {ring.name} (channel {ring.channel}) is on a well-known key: "
                    "anyone can read it",
                    f"{cli} --ch-index {ring.channel} --ch-set psk random",
                    f"then give the new key to the ring's members ({cli} --info shows it)",
                )
            )
    return findings


def _missing(ring: RingSpec, facts: RadioFacts, config: MeshboardConfig, cli: str) -> Finding:
    """`--ch-add` takes the first free index: right when that is the ring's channel."""
    summary = f"ring {ring.name} (channel {ring.channel}) is not on the radio"
    used = {c.index for c in facts.channels}
    free = next((i for i in range(8) if i not in used), None)
    if free == ring.channel:
        return fail("channels", summary, f"{cli} --ch-add {ring.name}")
    where = config.source if config.source is not None else "the configuration"
    return fail(
        "channels",
        summary,
        f"{cli} --ch-add {ring.name}   # becomes channel {free}",
        f"then set channel = {free} for ring {ring.name} in {where}",
    )


def pki(public_key: bytes, long_name: str, config: MeshboardConfig, cli: str) -> Finding:
    """Moderators' commands count only as PKI direct messages, which need the radio's key pair."""
    moderated = [
        r.name for r in config.rings if r.serve and r.rotation is not None and r.rotation.moderators
    ]
    if public_key:
        return ok("pki", f"public key {_b64(public_key)[:12]}...")
    if not moderated:
        return ok("pki", "no public key; not needed: no ring served here has moderators")
    owner = long_name or "Meshboard"
    return fail(
        "pki",
        f"no public key: moderators of {', '.join(moderated)} cannot reach the board by PKI",
        f"flash firmware 2.5 or later at {FLASHER}   # it makes a key pair",
        f"{cli} --reboot   # on 2.5+, a radio without a key makes one when it starts",
        f'{cli} --set-owner "{owner}"   # leaves ham mode, which has no PKI',
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _name(enum: Any, value: int) -> str:
    """A protobuf enum value's name; the number itself for one newer than our protobufs."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)
