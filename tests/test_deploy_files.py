"""The files a neighbour copies onto the Pi: systemd unit, udev rule, configuration, the docs.

Each is checked by the tool that will read it where one exists on this machine
(`systemd-analyze`, `board.config.load_config`), else by a small parser of its syntax.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from board.config import EXAMPLE, load_config

NOTES = Path(__file__).resolve().parent.parent / "firmware_notes"
UNIT = NOTES / "meshboard.service"
RULES = NOTES / "99-meshboard-radio.rules"
INSTALLED_BINARY = "/usr/local/bin/meshboard"
#: Exposure score of `systemd-analyze security` (0 safest, 10 worst): 0.9 with systemd 252,
#: 1.6 with the bridge's drop-in (the network open).
MAX_EXPOSURE = 2.0

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package systemd; .ci/run installs it)",
)


def unit_for_this_machine(tmp_path: Path, text: str | None = None) -> Path:
    """A copy of the unit whose ExecStart names the `meshboard` installed here.

    `systemd-analyze verify` checks that the command exists, and /usr/local/bin/meshboard does
    not on a test machine. Nothing else changes: User=meshboard may stay, because verify does
    not look the user up (it is resolved only when the service starts).
    """
    binary = Path(sys.executable).parent / "meshboard"
    assert binary.is_file(), f"no {binary}: install the project (pip install -e .) first"
    lines = (UNIT.read_text() if text is None else text).splitlines(keepends=True)
    rewritten = [
        line.replace(INSTALLED_BINARY, str(binary), 1) if line.startswith("ExecStart=") else line
        for line in lines
    ]
    assert sum(a != b for a, b in zip(lines, rewritten, strict=True)) == 1
    copy = tmp_path / UNIT.name
    copy.write_text("".join(rewritten))
    return copy


def verify(unit: Path) -> tuple[int, list[str]]:
    """systemd-analyze verify: its exit code and the stderr lines about this unit."""
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    return result.returncode, [line for line in result.stderr.splitlines() if unit.name in line]


@needs_systemd_analyze
def test_systemd_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    code, warnings = verify(unit_for_this_machine(tmp_path))
    assert (code, warnings) == (0, [])


@needs_systemd_analyze
def test_systemd_accepts_the_web_pages_unit_without_a_warning(tmp_path: Path) -> None:
    text = (NOTES / "meshboard-web.service").read_text()
    binary = Path(sys.executable).parent / "meshboard"
    unit = tmp_path / "meshboard-web.service"
    unit.write_text(
        re.sub(f"^ExecStart={INSTALLED_BINARY}", f"ExecStart={binary}", text, flags=re.M)
    )
    code, warnings = verify(unit)
    assert (code, warnings) == (0, [])


@needs_systemd_analyze
def test_verify_would_report_a_mistake_in_the_unit(tmp_path: Path) -> None:
    """verify exits 0 even for a misspelt setting: only its stderr tells, which the test reads."""
    broken = UNIT.read_text().replace("NoNewPrivileges=true", "NoNewPrivileges=maybe")
    code, warnings = verify(unit_for_this_machine(tmp_path, broken))
    assert code == 0
    assert any("NoNewPrivileges" in line or "maybe" in line for line in warnings), warnings


@needs_systemd_analyze
def test_the_unit_keeps_its_hardening(tmp_path: Path) -> None:
    unit = unit_for_this_machine(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match[1]) <= MAX_EXPOSURE, result.stdout


@needs_systemd_analyze
def test_the_bridge_drop_in_opens_the_network_and_keeps_the_rest(tmp_path: Path) -> None:
    """The unit with firmware_notes/meshboard-bridge.conf applied: systemd reads a drop-in's
    settings after the unit's, as it reads a second [Service] section, so it is appended."""
    drop_in = (NOTES / "meshboard-bridge.conf").read_text()
    unit = unit_for_this_machine(tmp_path, UNIT.read_text() + "\n" + drop_in)
    assert verify(unit) == (0, [])
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Service has access to the host's network" in result.stdout  # the bridge's price
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match[1]) <= MAX_EXPOSURE, result.stdout


def exec_start_port() -> str:
    [line] = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    words = shlex.split(line.removeprefix("ExecStart="))
    return words[words.index("--port") + 1]


# -- the udev rule ------------------------------------------------------------------------------
# udev(7): keys that only match, keys that only assign, and keys that may do either.
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEMS", "DRIVER", "DRIVERS"}
MATCH_KEYS |= {"TAGS", "PROGRAM", "RESULT", "TEST", "CONST", "ATTRS", "SUBSYSTEM"}
ASSIGN_KEYS = {"OWNER", "GROUP", "MODE", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS", "SECLABEL"}
EITHER_KEYS = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG"}
ENTRY = re.compile(r'\s*([A-Z]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*')
PINNING_TEMPLATE = "# SUBSYSTEM=="


def rule_entries(rule: str) -> list[tuple[str, str | None, str, str]]:
    """`KEY{attr} op "value"` entries of one rule; AssertionError naming what is wrong."""
    entries = []
    for part in rule.split(","):
        match = ENTRY.fullmatch(part)
        assert match is not None, f'not KEY op "value": {part!r} in {rule!r}'
        key, attribute, operator, value = match.groups()
        assert key in MATCH_KEYS | ASSIGN_KEYS | EITHER_KEYS, f"unknown udev key {key}"
        if key in MATCH_KEYS:
            assert operator in {"==", "!="}, f"{key} can only match, not {operator}"
        if key in ASSIGN_KEYS:
            assert operator in {"=", "+=", "-=", ":="}, f"{key} can only assign, not {operator}"
        entries.append((key, attribute, operator, value))
    return entries


def rules() -> list[str]:
    """The rule lines, with backslash continuations joined; the commented template last."""
    text = RULES.read_text().replace("\\\n", "")
    active = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    templates = [line[2:] for line in text.splitlines() if line.startswith(PINNING_TEMPLATE)]
    assert len(templates) == 1, "the rule file shows one template line for pinning a radio"
    return [*active, *templates]


@pytest.mark.parametrize("rule", rules())
def test_each_udev_rule_names_the_radio_as_the_unit_expects(rule: str) -> None:
    entries = rule_entries(rule)
    assert ("SUBSYSTEM", None, "==", "tty") in entries
    assert ("SYMLINK", None, "+=", exec_start_port().removeprefix("/dev/")) in entries
    assert ("GROUP", None, "=", "dialout") in entries
    assert ("MODE", None, "=", "0660") in entries
    ids = {attribute: value for key, attribute, _, value in entries if key == "ATTRS"}
    # sysfs writes USB ids as four lowercase hex digits; "EA60" would never match.
    assert re.fullmatch(r"[0-9a-f]{4}", ids["idVendor"]), ids
    assert "idProduct" not in ids or re.fullmatch(r"[0-9a-f]{4}", ids["idProduct"]), ids


def test_the_udev_rules_cover_the_usb_chips_of_meshtastic_boards() -> None:
    ids = set()
    for rule in rules()[:-1]:
        attrs = {a: v for key, a, _, v in rule_entries(rule) if key == "ATTRS"}
        ids.add(f"{attrs['idVendor']}:{attrs.get('idProduct', '*')}")
    cp210x, ch340, ch9102, esp32_s3, adafruit_nrf52, rp2040 = (
        "10c4:ea60",
        "1a86:7523",
        "1a86:55d4",
        "303a:1001",
        "239a:*",
        "2e8a:*",
    )
    assert ids == {cp210x, ch340, ch9102, esp32_s3, adafruit_nrf52, rp2040}
    assert "ATTRS{serial}" in rules()[-1]


@pytest.mark.skipif(
    shutil.which("udevadm") is None
    or subprocess.run(["udevadm", "verify", "--help"], capture_output=True).returncode != 0,
    reason="udevadm verify needs systemd 254 or later (Debian bookworm has 252)",
)
def test_udevadm_verify_accepts_the_rules() -> None:
    result = subprocess.run(["udevadm", "verify", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the configuration file ---------------------------------------------------------------------
def test_the_example_configuration_file_is_what_meshboard_prints() -> None:
    assert (NOTES / "meshboard.toml").read_text() == EXAMPLE


def test_the_example_configuration_file_loads() -> None:
    config = load_config(NOTES / "meshboard.toml")
    assert [(r.name, r.channel, r.serve) for r in config.rings] == [
        ("public", 0, True),
        ("garden", 1, True),
    ]


# -- the walkthrough ----------------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)
    return {slug(h) for h in headings}


def test_every_file_in_firmware_notes_is_linked_from_its_readme() -> None:
    linked = {target.split("#")[0] for target in LINK.findall((NOTES / "README.md").read_text())}
    files = {path.name for path in NOTES.iterdir() if path.name != "README.md"}
    assert files - linked == set()


@pytest.mark.parametrize("page", sorted(NOTES.glob("*.md")), ids=lambda p: p.name)
def test_links_between_the_notes_lead_somewhere(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        name, _, anchor = target.partition("#")
        linked = page if name == "" else (page.parent / name).resolve()
        assert linked.exists(), f"{page.name} links to missing {name}"
        if anchor:
            assert anchor in anchors(linked), f"{page.name} links to missing #{anchor}"
