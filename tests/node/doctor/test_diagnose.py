"""`meshboard doctor` against simulated radios on real ptys, through the real client and CLI.

Each misconfiguration is a radio that reports it in the config handshake, as firmware does;
each test asserts the finding a person would read and the fix they would run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from board.config import load_config
from board.store.bulletins import Store
from node.cli import cli
from node.doctor.clock import ClockFacts
from node.doctor.diagnose import diagnose
from node.doctor.findings import Status
from node.meshtastic_link import MeshtasticLink
from node.sim.radio import (
    ChannelSpec,
    GpsMode,
    Preset,
    RadioProfile,
    Region,
    Role,
    SimulatedRadio,
)
from tests.unprivileged import as_unprivileged, shared_directory

PRIVATE_KEY = bytes(range(32))  # a channel key of its own
RADIO_KEY = bytes(range(100, 132))  # the radio's PKI public key
GARDEN = """\
[[ring]]
name = "public"
channel = 0

[[ring]]
name = "garden"
channel = 1
"""
MODERATED = """\
[[ring]]
name = "public"
channel = 0

[ring.moderation]
moderators = ["!1234abcd", "!5678ef01"]
"""
TOOLS_ON_2 = """\
[[ring]]
name = "public"
channel = 0

[[ring]]
name = "tools"
channel = 2
"""
HEALTHY = RadioProfile(
    channels=(ChannelSpec(), ChannelSpec("garden", PRIVATE_KEY)), public_key=RADIO_KEY
)
#: A Pi whose clock a time source keeps right: the radio findings do not depend on the host.
SYNCED = ClockFacts(now=datetime.now(UTC), synchronized=True, rtc=False)
TIMEOUT = "5"  # seconds for a handshake that should work; a simulated radio needs about 0.5
LIST_PORTS = "ls -l /dev/serial/by-id/ /dev/ttyUSB* /dev/ttyACM*"
HANDSHAKE_FIXES = (
    "unplug the radio's USB cable and plug it in again (a reboot), then run this again",
    "meshtastic --ble-scan   # if it still does not answer: over Bluetooth, then",
    "meshtastic --ble NAME --set serial.enabled false --set security.serial_enabled true",
)


def write_config(tmp_path: Path, text: str | None) -> Path | None:
    if text is None:
        return None
    path = tmp_path / "meshboard.toml"
    path.write_text(text)
    return path


def doctor_json(
    port: str, db: Path, config: Path | None = None, *options: str
) -> tuple[int, dict[str, Any]]:
    args = [] if config is None else ["--config", str(config)]
    args += ["doctor", "--port", port, "--db", str(db), "--json", "--timeout", TIMEOUT, *options]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def the(report: dict[str, Any], check: str) -> dict[str, Any]:
    """The one finding of `check` that is not the channel listing."""
    found = [f for f in report["findings"] if f["check"] == check]
    if check == "channels" and len(found) > 1:
        found = found[1:]  # the first is the listing
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A board database as `meshboard run` leaves it."""
    path = tmp_path / "board.db"
    Store.open(path).engine.dispose()
    return path


def test_a_healthy_board_node_is_all_ok(tmp_path: Path, db: Path) -> None:
    config = write_config(tmp_path, GARDEN)
    with SimulatedRadio(profile=HEALTHY) as radio:
        diagnosis = diagnose(
            radio.port,
            db,
            load_config(config),
            clock=SYNCED,
            min_free=0,  # the host's free space is not what this test is about
            handshake_timeout=5,
        )
    assert [(f.check, f.status) for f in diagnosis.findings] == [
        ("config", Status.OK),
        ("port", Status.OK),
        ("link", Status.OK),
        ("firmware", Status.OK),
        ("region", Status.OK),
        ("modem", Status.OK),
        ("role", Status.OK),
        ("channels", Status.OK),
        ("pki", Status.OK),
        ("radiotime", Status.OK),
        ("clock", Status.OK),
        ("database", Status.OK),
        ("integrity", Status.OK),
        ("schema", Status.OK),
        ("writable", Status.OK),
        ("disk", Status.OK),
    ]
    assert diagnosis.exit_code == 0


def test_the_human_report_is_one_aligned_line_per_finding_with_fixes_below(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # so the report names the file as the person typed it
    Path("meshboard.toml").write_text(GARDEN)
    profile = dataclasses.replace(HEALTHY, region=Region.UNSET)
    with SimulatedRadio(profile=profile) as radio:
        result = CliRunner().invoke(
            cli, ["--config", "meshboard.toml", "doctor", "--port", radio.port, "--db", db.name]
        )
    lines = result.output.splitlines()
    assert lines[0] == "ok    config     meshboard.toml: serves public (0), garden (1)"
    # The port's path is under the temporary folder, however long: its summary may wrap.
    port_lines = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("ok    link"))]
    assert port_lines[0].startswith("ok    port       ")
    assert all(line.startswith(" " * 17) for line in port_lines[1:])
    port_summary = " ".join(line[17:].strip() for line in port_lines)
    assert port_summary.replace(" ", "") == f"{radio.port}: a serial port, free".replace(" ", "")
    assert lines[1 + len(port_lines)].startswith(
        "ok    link       radio !5b0a4d01 (Meshboard sim) answered the"
    )
    radio_lines = lines[lines.index("ok    firmware   2.7.26 (PKI direct messages supported)") :]
    assert radio_lines[:9] == [
        "ok    firmware   2.7.26 (PKI direct messages supported)",
        "fail  region     UNSET: the radio will not transmit",
        f"      fix: meshtastic --port {radio.port} --set lora.region EU_868"
        "   # or yours: US, UK_868, ANZ, IN, ...",
        "ok    modem      LONG_FAST (the mesh default)",
        "ok    role       CLIENT",
        "ok    channels   0 (default name) public, 1 garden private",
        "ok    pki        public key ZGVmZ2hpamts...",
        radio_lines[7],  # the radio's clock, a second or so from the Pi's
        radio_lines[8],  # the host's own clock: whatever state it is in
    ]
    agrees = r"ok    radiotime  agrees with the Pi's clock: [012] s apart"
    assert re.fullmatch(agrees, radio_lines[7])
    assert radio_lines[8].startswith(("ok    clock      ", "warn  clock      "))
    # Findings and their wrapped summaries fit 80 columns; fixes stay whole for copying.
    readable = [line for line in lines if line[:1].strip() or line.startswith(" " * 17)]
    # (A path longer than the summary's column, like pytest's tmp paths, is kept whole.)
    column = 80 - 17
    assert all(len(line) <= 80 or max(map(len, line.split())) > column for line in readable)
    assert lines[-1].endswith(", 1 fail: fix the failures first")
    assert result.exit_code == 1


# (profile, configuration, check, status, summary, fix lines with {cli} for the port)
MISCONFIGURED = [
    pytest.param(
        RadioProfile(modem_preset=Preset.MEDIUM_FAST),
        None,
        "modem",
        "warn",
        "MEDIUM_FAST: the board hears only radios on MEDIUM_FAST; meshes use LONG_FAST "
        "unless they agreed otherwise",
        ["{cli} --set lora.modem_preset LONG_FAST   # unless your mesh uses MEDIUM_FAST"],
        id="other-preset",
    ),
    pytest.param(
        RadioProfile(use_preset=False),
        None,
        "modem",
        "warn",
        "custom modem settings (use_preset off): the board hears only radios with exactly "
        "the same settings",
        ["{cli} --set lora.use_preset true"],
        id="custom-modem",
    ),
    pytest.param(
        RadioProfile(role=Role.ROUTER),
        None,
        "role",
        "warn",
        "ROUTER rebroadcasts every packet, spending the airtime the board needs",
        ["{cli} --set device.role CLIENT"],
        id="router",
    ),
    pytest.param(
        RadioProfile(role=Role.TRACKER),
        None,
        "role",
        "fail",
        "TRACKER sleeps between position reports: not a board",
        ["{cli} --set device.role CLIENT"],
        id="tracker",
    ),
    pytest.param(
        RadioProfile(firmware_version="2.4.3.efc27f2"),
        None,
        "firmware",
        "warn",
        "2.4.3: before 2.5 there are no PKI direct messages, which moderators need",
        [
            "{cli} --export-config > radio-backup.yaml   # first: keeps the radio's keys",
            "flash the newest 2.7.x at https://flasher.meshtastic.org",
        ],
        id="old-firmware",
    ),
    pytest.param(
        RadioProfile(channels=(ChannelSpec(), ChannelSpec("chat", b""))),
        None,
        "channels",
        "fail",
        "channel 1 chat has no encryption: anyone can read and forge it",
        ["{cli} --ch-index 1 --ch-set psk random"],
        id="unencrypted-channel",
    ),
    pytest.param(
        RadioProfile(channels=(ChannelSpec(), ChannelSpec("garden", b"\x01"))),
        GARDEN,
        "channels",
        "fail",
        "ring garden (channel 1) is on a well-known key: anyone can read it",
        [
            "{cli} --ch-index 1 --ch-set psk random",
            "then give the new key to the ring's members ({cli} --info shows it)",
        ],
        id="private-ring-on-public-key",
    ),
    pytest.param(
        RadioProfile(),
        GARDEN,
        "channels",
        "fail",
        "ring garden (channel 1) is not on the radio",
        ["{cli} --ch-add garden"],
        id="ring-channel-missing",
    ),
    pytest.param(
        RadioProfile(channels=(ChannelSpec("", PRIVATE_KEY),)),
        None,
        "channels",
        "warn",
        "ring public (channel 0) has a private key: handhelds on the public mesh cannot "
        "reach the board",
        ["{cli} --ch-index 0 --ch-set psk default"],
        id="channel-0-private",
    ),
    pytest.param(
        RadioProfile(public_key=b""),
        MODERATED,
        "pki",
        "fail",
        "no public key: moderators of public cannot reach the board by PKI",
        [
            "flash firmware 2.5 or later at https://flasher.meshtastic.org   # it makes a key pair",
            "{cli} --reboot   # on 2.5+, a radio without a key makes one when it starts",
            '{cli} --set-owner "Meshboard sim"   # leaves ham mode, which has no PKI',
        ],
        id="no-pki-key-with-moderators",
    ),
]


@pytest.mark.parametrize(("profile", "toml", "check", "status", "summary", "fix"), MISCONFIGURED)
def test_a_misconfigured_radio(
    tmp_path: Path,
    db: Path,
    profile: RadioProfile,
    toml: str | None,
    check: str,
    status: str,
    summary: str,
    fix: list[str],
) -> None:
    config = write_config(tmp_path, toml)
    with SimulatedRadio(profile=profile) as radio:
        code, report = doctor_json(radio.port, db, config)
    cli_ = f"meshtastic --port {radio.port}"
    finding = the(report, check)
    assert (finding["status"], finding["summary"]) == (status, summary)
    assert finding["fix"] == "\n".join(f.format(cli=cli_, config=config) for f in fix)
    assert (code, report["ok"]) == ((1, False) if status == "fail" else (0, True))


@pytest.mark.parametrize(
    ("profile", "status", "summary", "fix"),
    [
        pytest.param(
            RadioProfile(clock_offset=3 * 3600 + 30),  # half a minute from a unit boundary
            "warn",
            "the radio's clock is 3 h ahead of the Pi's",
            "meshtastic --port {port} --set-time   # sets it from the Pi's",
            id="radio-clock-off",
        ),
        pytest.param(
            RadioProfile(clock_offset=None, gps_mode=GpsMode.ENABLED),
            "warn",
            "GPS on, but no fix yet: the radio does not know the time",
            "put the radio (or its GPS antenna) where it sees the sky\n"
            "meshtastic --port {port} --set-time   # meanwhile, the Pi's time",
            id="gps-without-fix",
        ),
    ],
)
def test_the_radio_reports_its_clock_in_the_handshake(
    db: Path, profile: RadioProfile, status: str, summary: str, fix: str
) -> None:
    with SimulatedRadio(profile=profile) as radio:
        diagnosis = diagnose(radio.port, db, load_config(None), clock=SYNCED, handshake_timeout=5)
    finding = next(f for f in diagnosis.findings if f.check == "radiotime").as_json()
    assert (finding["status"], finding["summary"]) == (status, summary)
    assert finding["fix"] == fix.format(port=radio.port)


# -- the port and the link ---------------------------------------------------------------


def test_a_missing_port_fails_and_the_other_checks_still_run(tmp_path: Path, db: Path) -> None:
    port = str(tmp_path / "ttyACM0")
    code, report = doctor_json(port, db)
    assert code == 1
    assert report["ok"] is False
    assert the(report, "port") == {
        "check": "port",
        "status": "fail",
        "summary": f"{port} does not exist: radio unplugged, a charge-only cable, or another name",
        "fix": f"{LIST_PORTS}   # which one is the radio",
    }
    assert the(report, "radio")["status"] == "skip"
    assert [f["check"] for f in report["findings"]] == [
        "config", "port", "radio", "clock", "database", "integrity", "schema", "writable", "disk"
    ]  # fmt: skip
    for finding in report["findings"]:
        assert set(finding) == {"check", "status", "summary", "fix"}
        assert (finding["fix"] is None) == (finding["status"] in ("ok", "skip"))


def test_a_file_that_is_no_serial_port_fails(tmp_path: Path, db: Path) -> None:
    port = tmp_path / "ttyUSB0"
    port.write_text("not a device")
    _, report = doctor_json(str(port), db)
    assert the(report, "port")["summary"] == f"{port} is not a serial port"


def test_a_port_held_by_a_running_board_fails_as_busy(db: Path) -> None:
    with SimulatedRadio() as radio:
        daemon_link = MeshtasticLink(radio.port)  # what `meshboard run` holds
        daemon_link.start(lambda _received: None, lambda: None)
        try:
            code, report = doctor_json(radio.port, db)
        finally:
            daemon_link.close()
    port = the(report, "port")
    assert port["status"] == "fail"
    assert port["summary"] == (
        f"{radio.port} is in use by another program: the board daemon or a meshtastic command"
    )
    assert port["fix"] == (
        "meshboard status   # a running board reports its radio here\n"
        "sudo systemctl stop meshboard   # to check the radio here instead"
    )
    assert code == 1


@pytest.fixture
def bare_pty() -> Iterator[str]:
    """A serial line with nothing behind it: the other end is open and never answers."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def test_a_port_this_user_may_not_open_fails_with_the_dialout_fix(bare_pty: str) -> None:
    os.chmod(bare_pty, 0)
    with shared_directory() as directory:

        def run() -> str:
            args = ["doctor", "--port", bare_pty, "--db", str(directory / "b.db"), "--json"]
            return CliRunner().invoke(cli, args).output

        report = json.loads(as_unprivileged(run))
    port = the(report, "port")
    assert (port["status"], port["summary"]) == (
        "fail",
        f"{bare_pty}: permission denied; the user needs the dialout group",
    )
    assert port["fix"] == (
        "sudo usermod -aG dialout $USER   # then log out and in again\n"
        "sudo usermod -aG dialout meshboard   # the service's user"
    )


def test_no_answer_to_the_handshake_fails_in_the_time_given(bare_pty: str, db: Path) -> None:
    silent_port = bare_pty  # a radio that is hung, or a port with no radio behind it
    code, report = doctor_json(silent_port, db, None, "--timeout", "0.5")
    link = the(report, "link")
    assert (link["status"], link["summary"]) == (
        "fail",
        "no answer to the config handshake within 0.5 s",
    )
    assert link["fix"].split("\n") == [
        f"{LIST_PORTS}   # is {silent_port} the radio?",
        *HANDSHAKE_FIXES,
    ]
    assert the(report, "radio")["status"] == "skip"
    assert the(report, "clock")["status"] in ("ok", "warn")  # still checked
    assert code == 1


def test_a_broken_configuration_is_a_failure(tmp_path: Path, db: Path) -> None:
    config = write_config(tmp_path, "[[ring]]\nname = 'Bad Name'\nchannel = 0\n")
    code, report = doctor_json(str(tmp_path / "ttyACM0"), db, config)
    finding = the(report, "config")
    assert finding["status"] == "fail"
    assert finding["summary"].startswith(f"{config}: [[ring]] #1: name must be lowercase")
    assert finding["fix"] == "meshboard config --example   # a valid file to compare with"
    assert code == 1


def test_without_a_port_only_the_clock_and_the_database_are_checked(db: Path) -> None:
    """An operator checks a database while the daemon holds the radio."""
    result = CliRunner().invoke(cli, ["doctor", "--db", str(db), "--json"], env={})
    report = json.loads(result.output)
    assert the(report, "port") == {
        "check": "port",
        "status": "skip",
        "summary": "not checked: no --port given",
        "fix": None,
    }
    assert the(report, "radio")["status"] == "skip"
    assert {f["status"] for f in report["findings"] if f["check"] in ("database", "schema")} == {
        "ok"
    }
