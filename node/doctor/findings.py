"""What `meshboard doctor` reports: findings, each one line a person can act on.

A finding names one check, says ok, warn or fail in one short summary, and a warn or a fail
carries the fix: the exact commands to run, in order. A check that could not run (the radio
checks when the radio cannot be reached) is reported as skip, so nobody reads silence as ok.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but something will bite: a board on another preset, a clock adrift
    FAIL = "fail"  # the board cannot serve as it should until this is fixed
    SKIP = "skip"  # not checked, because something it needs failed first


@dataclass(frozen=True)
class Finding:
    check: str  # a short fixed name: port, region, integrity, ...
    status: Status
    summary: str
    fix: tuple[str, ...] = ()  # lines to run or change, in order

    def __post_init__(self) -> None:
        if self.status in (Status.WARN, Status.FAIL) and not self.fix:
            raise ValueError(f"a {self.status} finding needs a fix: {self.check}: {self.summary}")

    def as_json(self) -> dict[str, Any]:
        """`fix` is one string (its lines joined by newlines), or null when there is none."""
        return {
            "check": self.check,
            "status": str(self.status),
            "summary": self.summary,
            "fix": "\n".join(self.fix) if self.fix else None,
        }


def ok(check: str, summary: str) -> Finding:
    return Finding(check, Status.OK, summary)


def warn(check: str, summary: str, *fix: str) -> Finding:
    return Finding(check, Status.WARN, summary, fix)


def fail(check: str, summary: str, *fix: str) -> Finding:
    return Finding(check, Status.FAIL, summary, fix)


def skip(check: str, summary: str) -> Finding:
    return Finding(check, Status.SKIP, summary)


def size_text(size: float) -> str:
    """Bytes for people: `812 B`, `4.1 MB`, `2.3 GB` (powers of 1000, as `df -H`)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
