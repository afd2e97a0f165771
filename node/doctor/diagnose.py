"""`meshboard doctor`: what makes or breaks this board node, and the fix for each problem.

It runs without the daemon, against the radio itself: the port, the config handshake through
the same `MeshtasticLink` the daemon uses, the radio's settings beside the configuration's
rings, the clocks, and the database. It changes nothing: it only reads the radio's settings
and rolls back its one test write to the database.
"""

from __future__ import annotations

import dataclasses
import logging
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshtastic.mesh_interface import MeshInterface

from board.config import ConfigError, MeshboardConfig
from node.doctor.clock import ClockFacts, check_clock, check_radio_time, read_clock_facts
from node.doctor.database import MIN_FREE_BYTES, SERVICE_USER, Commands, check_database
from node.doctor.findings import Finding, Status, fail, ok, skip
from node.doctor.port import LIST_PORTS, check_port, port_error
from node.doctor.radio import RadioFacts, check_radio
from node.link import HANDSHAKE_TIMEOUT, LinkError
from node.meshtastic_link import MeshtasticLink

logger = logging.getLogger(__name__)

WIDTH = 80  # a terminal's columns
_HEAD = 17  # "fail  radio time " : status (5), a space, check (10), a space
_FIX_INDENT = " " * 6


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.status == Status.FAIL for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (warnings may remain), 1 when something did."""
        return 0 if self.ok else 1

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [f.as_json() for f in self.findings]}

    def lines(self) -> list[str]:
        """One line per finding (wrapped past 80 columns), its fix below it, and a tally."""
        lines = [line for finding in self.findings for line in finding_lines(finding)]
        counts = {s: sum(f.status == s for f in self.findings) for s in Status}
        tally = ", ".join(f"{counts[s]} {s}" for s in Status if counts[s] or s != Status.SKIP)
        lines.append("")
        lines.append(tally + ("" if self.ok else ": fix the failures first"))
        return lines


def finding_lines(finding: Finding) -> list[str]:
    """`fail  region     UNSET: ...` and under it `      fix: meshtastic ...`.

    Summaries wrap under their own column; fixes never wrap, so they copy and paste whole.
    """
    head = f"{finding.status:<5} {finding.check:<10} "
    summary = textwrap.wrap(
        finding.summary, width=WIDTH - len(head), break_long_words=False, break_on_hyphens=False
    ) or [""]
    lines = [head + summary[0], *(" " * len(head) + more for more in summary[1:])]
    for i, fix in enumerate(finding.fix):
        lines.append(f"{_FIX_INDENT}{'fix:' if i == 0 else '    '} {fix}")
    return lines


def diagnose(
    port: str | None,
    db_path: Path,
    config: MeshboardConfig | ConfigError,
    *,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    clock: ClockFacts | None = None,
    min_free: int = MIN_FREE_BYTES,
    config_path: Path | None = None,
) -> Diagnosis:
    """Every check, in the order a person fixes things: cable, radio, clock, database.

    `config` is the configuration or the error reading it; `clock` presents the Pi's clock
    (read from the system when None); `config_path` only shapes the commands in fixes. Without
    a `port` the radio is not checked: the clock and the database are, so an operator can check
    a database while the daemon holds the radio.
    """
    findings: list[Finding] = [check_config(config)]
    rings = config if isinstance(config, MeshboardConfig) else MeshboardConfig(rings=())
    clock = clock if clock is not None else read_clock_facts()
    radio: tuple[RadioFacts, datetime] | None = None
    if port is None:
        findings.append(skip("port", "not checked: no --port given"))
    else:
        port_finding = check_port(port)
        findings.append(port_finding)
        if port_finding.status == Status.OK:
            link_finding, radio = handshake(port, handshake_timeout)
            findings.append(link_finding)
    if radio is None:
        findings.append(
            skip(
                "radio",
                "firmware, region, modem, role, channels, pki, radio time: "
                "not checked without a link to the radio",
            )
        )
    else:
        facts, pi_time = radio
        assert port is not None
        findings += check_radio(facts, rings, port)
        cli = f"meshtastic --port {port}"
        findings.append(check_radio_time(clock, facts.radio_time, pi_time, facts.gps_mode, cli))
    findings.append(check_clock(clock))
    findings += check_database(db_path, _commands(port, db_path, config_path), min_free=min_free)
    return Diagnosis(tuple(findings))


def check_config(config: MeshboardConfig | ConfigError) -> Finding:
    """Which configuration the ring checks used; a broken file stops the daemon too."""
    if isinstance(config, ConfigError):
        return fail(
            "config",
            str(config),
            "meshboard config --example   # a valid file to compare with",
        )
    served = [f"{r.name} ({r.channel})" for r in config.rings if r.serve]
    where = str(config.source) if config.source is not None else "no file (the default)"
    return ok("config", f"{where}: serves {', '.join(served) or 'no ring'}")


def handshake(port: str, timeout: float) -> tuple[Finding, tuple[RadioFacts, datetime] | None]:
    """Connect as the daemon does and read what the radio says about itself.

    A finished handshake proves the line works both ways: the radio read our want_config
    and we read its answer. Returns the link finding and, when it worked, the radio's facts
    with the Pi's time at the handshake (to compare the radio's clock with).
    """
    link = MeshtasticLink(port, handshake_timeout=timeout)
    started = time.monotonic()
    pi_time = datetime.now(UTC)
    try:
        link.start(lambda _received: None, lambda: None)
    except LinkError as error:
        return link_error(port, error, timeout), None
    try:
        elapsed = time.monotonic() - started
        facts = RadioFacts.of(link.radio_state())
    finally:
        link.close()
    name = f" ({facts.long_name})" if facts.long_name else ""
    summary = f"radio {facts.node_id}{name} answered the handshake in {elapsed:.1f} s"
    return ok("link", summary), (facts, pi_time)


def link_error(port: str, error: LinkError, timeout: float) -> Finding:
    """Why the handshake failed: the port (taken meanwhile, unplugged) or no answer."""
    cause = error.__cause__
    if isinstance(cause, OSError) and cause.errno is not None:
        return dataclasses.replace(port_error(port, cause), check="link")
    if isinstance(cause, MeshInterface.MeshInterfaceError):
        summary = f"no answer to the config handshake within {timeout:g} s"
    else:
        summary = f"the config handshake failed: {error}"
    return fail(
        "link",
        summary,
        f"{LIST_PORTS}   # is {port} the radio?",
        "unplug the radio's USB cable and plug it in again (a reboot), then run this again",
        "meshtastic --ble-scan   # if it still does not answer: over Bluetooth, then",
        "meshtastic --ble NAME --set serial.enabled false --set security.serial_enabled true",
    )


def _commands(port: str | None, db_path: Path, config_path: Path | None) -> Commands:
    config = f"--config {config_path} " if config_path is not None else ""
    port = port or "PORT"
    return Commands(
        start=f"meshboard {config}run --port {port} --db {db_path}",
        rerun=f"sudo -u {SERVICE_USER} meshboard {config}doctor --port {port} --db {db_path}",
    )
