"""The files a neighbour copies onto the Pi: systemd unit, udev rule, configuration, the docs.

Each is checked by the tool that will read it where one exists on this machine
(`systemd-analyze`, `board.config.load_config`), else by a small parser of its syntax.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOTES = Path(__file__).resolve().parent.parent / "firmware_notes"
UNIT = NOTES / "meshboard.service"
INSTALLED_BINARY = "/usr/local/bin/meshboard"
#: Exposure score of `systemd-analyze security` (0 safest, 10 worst): 0.9 with systemd 252.
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
