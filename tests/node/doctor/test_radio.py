"""The radio checks on facts as the handshake yields them: every role, version and key form.

tests/node/doctor/test_diagnose.py presents each kind of misconfiguration through a simulated radio;
the variants of one kind are told apart here, without a radio.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from board.config import MeshboardConfig, RingSpec, Rotation
from node.doctor.findings import Status
from node.doctor.radio import (
    DEFAULT_KEY,
    ChannelFacts,
    KeyKind,
    RadioFacts,
    Role,
    channels,
    firmware,
    key_kind,
    pki,
    role,
)

CLI = "meshtastic --port /dev/ttyACM0"
FLASH = (
    f"{CLI} --export-config > radio-backup.yaml   # first: keeps the radio's keys",
    "flash the newest 2.7.x at https://flasher.meshtastic.org",
)
FACTS = RadioFacts(
    node_id="!5b0a4d01",
    long_name="Board",
    firmware="2.7.15",
    region=3,
    modem_preset=0,
    use_preset=True,
    role=Role.CLIENT,
    channels=(ChannelFacts(0, "", b"\x01"),),
    public_key=b"",
    gps_mode=0,
    radio_time=None,
)


@pytest.mark.parametrize(
    ("code", "status", "summary"),
    [
        (Role.CLIENT, Status.OK, "CLIENT"),
        (Role.CLIENT_MUTE, Status.OK, "CLIENT_MUTE"),
        (Role.ROUTER_LATE, Status.WARN, "ROUTER_LATE rebroadcasts every packet late, spending "
         "the airtime the board needs"),
        (Role.CLIENT_BASE, Status.WARN, "CLIENT_BASE rebroadcasts its favourites' packets like "
         "a router"),
        (Role.CLIENT_HIDDEN, Status.WARN, "CLIENT_HIDDEN does not announce itself: handhelds "
         "never learn the board's name or key"),
        (Role.ROUTER_CLIENT, Status.WARN, "ROUTER_CLIENT is deprecated and rebroadcasts like a "
         "router"),
        (Role.REPEATER, Status.FAIL, "REPEATER is an infrastructure relay with no client API "
         "use: not a board"),
        (Role.SENSOR, Status.FAIL, "SENSOR sleeps between sensor reports: not a board"),
        (Role.TAK, Status.FAIL, "TAK speaks the TAK format to an ATAK app: not a board"),
        (Role.TAK_TRACKER, Status.FAIL, "TAK_TRACKER sleeps between TAK position reports: not "
         "a board"),
        (Role.LOST_AND_FOUND, Status.FAIL, "LOST_AND_FOUND broadcasts its position for finding "
         "a lost radio: not a board"),
        (99, Status.WARN, "99 is not a role Meshboard knows"),
    ],
)  # fmt: skip
def test_every_role(code: int, status: Status, summary: str) -> None:
    finding = role(code, CLI)
    assert (finding.status, finding.summary) == (status, summary)
    assert finding.fix == (() if status == Status.OK else (f"{CLI} --set device.role CLIENT",))


@pytest.mark.parametrize(
    ("version", "status", "summary"),
    [
        ("2.5.0.abc", Status.OK, "2.5.0 (PKI direct messages supported)"),
        ("2.7.15.567b8ea", Status.OK, "2.7.15 (PKI direct messages supported)"),
        ("2.4.3", Status.WARN, "2.4.3: before 2.5 there are no PKI direct messages, which "
         "moderators need"),
        ("1.3.48", Status.WARN, "1.3.48: before 2.5 there are no PKI direct messages, which "
         "moderators need"),
        ("2.8.1.abc", Status.WARN, "2.8.1: newer than Meshboard is tested with (2.7)"),
        ("3.0.0", Status.WARN, "3.0.0: newer than Meshboard is tested with (2.7)"),
        ("", Status.WARN, "cannot read the firmware version ''"),
        ("custom", Status.WARN, "cannot read the firmware version 'custom'"),
    ],
)  # fmt: skip
def test_firmware_versions(version: str, status: Status, summary: str) -> None:
    finding = firmware(version, CLI)
    assert (finding.status, finding.summary) == (status, summary)
    assert finding.fix == (() if status == Status.OK else FLASH)


@pytest.mark.parametrize(
    ("psk", "kind"),
    [
        (b"", KeyKind.OPEN),
        (b"\x00", KeyKind.OPEN),
        (b"\x01", KeyKind.PUBLIC),  # AQ==, the public channel's default
        (b"\x0a", KeyKind.PUBLIC),  # simple9: the default key, last byte + 9
        (DEFAULT_KEY, KeyKind.PUBLIC),  # the default key written out
        (DEFAULT_KEY[:-1] + b"\x05", KeyKind.PUBLIC),
        (bytes(range(16)), KeyKind.PRIVATE),
        (bytes(range(32)), KeyKind.PRIVATE),
    ],
)
def test_which_keys_are_public(psk: bytes, kind: KeyKind) -> None:
    assert key_kind(psk) == kind


def test_a_ring_beyond_the_next_free_channel_names_the_channel_it_will_get() -> None:
    config = MeshboardConfig(
        rings=(RingSpec("public", 0), RingSpec("tools", 2)), source=Path("/etc/mb.toml")
    )
    findings = channels(FACTS, config, CLI)
    assert [(f.status, f.summary, f.fix) for f in findings[1:]] == [
        (
            Status.FAIL,
            "ring tools (channel 2) is not on the radio",
            (
                f"{CLI} --ch-add tools   # becomes channel 1",
                "then set channel = 1 for ring tools in /etc/mb.toml",
            ),
        )
    ]


def test_a_ring_the_board_does_not_serve_may_be_missing() -> None:
    config = MeshboardConfig(rings=(RingSpec("public", 0), RingSpec("garden", 1, serve=False)))
    assert [f.status for f in channels(FACTS, config, CLI)] == [Status.OK]


def test_the_channel_listing_names_every_enabled_channel_and_its_key() -> None:
    facts = dataclasses.replace(
        FACTS,
        channels=(
            ChannelFacts(0, "", b"\x01"),
            ChannelFacts(1, "garden", bytes(range(32))),
            ChannelFacts(3, "tools", bytes(range(16))),
        ),
    )
    listing = channels(facts, MeshboardConfig(), CLI)[0]
    assert (listing.status, listing.summary) == (
        Status.OK,
        "0 (default name) public, 1 garden private, 3 tools private",
    )


def moderated(serve: bool) -> MeshboardConfig:
    rotation = Rotation(("!1234abcd",), timedelta(weeks=1), datetime(2026, 1, 5, tzinfo=UTC))
    return MeshboardConfig(rings=(RingSpec("public", 0, serve=serve, rotation=rotation),))


@pytest.mark.parametrize(
    ("key", "config", "summary"),
    [
        (bytes(range(32)), moderated(True), "public key AAECAwQFBgcI..."),
        (b"", MeshboardConfig(), "no public key; not needed: no ring served here has moderators"),
        (b"", moderated(False), "no public key; not needed: no ring served here has moderators"),
    ],
)
def test_pki_is_fine_with_a_key_or_without_moderators(
    key: bytes, config: MeshboardConfig, summary: str
) -> None:
    finding = pki(key, "Board", config, CLI)
    assert (finding.status, finding.summary, finding.fix) == (Status.OK, summary, ())
