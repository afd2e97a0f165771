"""What `meshboard config` and `meshboard moderators` show: the rings, for a person or a script.

Kept apart from the CLI (which only parses options and echoes) so the shapes are plain data.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from board.config import MeshboardConfig, RingSpec
from board.rings import duty, format_duration

NO_FILE = "none: one ring, public, on channel 0 (meshboard config --example shows a file)"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def ring_json(spec: RingSpec) -> dict[str, Any]:
    rotation = spec.rotation
    return {
        "ring": spec.name,
        "channel": spec.channel,
        "served": spec.serve,
        "digest": None if spec.digest is None else format_duration(spec.digest),
        "moderators": [] if rotation is None else list(rotation.moderators),
        "rotation": None if rotation is None else format_duration(rotation.period),
        "starts": None if rotation is None else _iso(rotation.starts),
        "boards": list(spec.trusted_boards),
    }


def config_json(config: MeshboardConfig) -> dict[str, Any]:
    return {
        "file": None if config.source is None else str(config.source),
        "rings": [ring_json(spec) for spec in config.rings],
    }


def config_lines(config: MeshboardConfig) -> list[str]:
    """One line per ring, in the file's order, under a header naming the file."""
    lines = [f"file: {config.source if config.source is not None else NO_FILE}"]
    rows = [("ring", "channel", "served", "digest", "moderators")]
    for spec in config.rings:
        moderation = "-"
        if spec.rotation is not None:
            roster = " ".join(spec.rotation.moderators) or "nobody"
            moderation = f"{roster} ({format_duration(spec.rotation.period)} each)"
        digest = "-" if spec.digest is None else format_duration(spec.digest)
        served = "yes" if spec.serve else "no"
        rows.append((spec.name, str(spec.channel), served, digest, moderation))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return lines


def moderators_json(rings: list[RingSpec], board_key: str, now: datetime) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for spec in rings:
        record: dict[str, Any] = {"ring": spec.name, "channel": spec.channel}
        rotation = spec.rotation
        if rotation is None:
            record["moderated"] = False
        else:
            now_on = duty(rotation, now)
            record.update(
                moderated=True,
                moderators=list(rotation.moderators),
                on_duty=now_on.on_duty,
                until=_iso(now_on.until),
                next=now_on.next,
                rotation=format_duration(rotation.period),
                starts=_iso(rotation.starts),
                boards=list(spec.trusted_boards),
            )
        out.append(record)
    return {"board_key": board_key, "rings": out}


def moderators_lines(rings: list[RingSpec], board_key: str, now: datetime, tz: tzinfo) -> list[str]:
    """Per ring: who is on duty until when and who is next; then this board's key."""

    def local(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%a %d %b %Y %H:%M %Z")

    lines: list[str] = []
    for spec in rings:
        head = f"{spec.name} (channel {spec.channel})"
        rotation = spec.rotation
        if rotation is None:
            lines.append(f"{head}: no moderation")
            continue
        if not rotation.moderators:
            lines.append(f"{head}: no moderators listed")
            continue
        now_on = duty(rotation, now)
        assert now_on.until is not None  # there are moderators
        if now_on.on_duty is None:
            lines.append(f"{head}: nobody on duty until {local(now_on.until)}, then {now_on.next}")
        else:
            lines.append(
                f"{head}: {now_on.on_duty} on duty until {local(now_on.until)}, then {now_on.next}"
            )
        roster = ", ".join(
            f"{m} (on duty)" if m == now_on.on_duty else m for m in rotation.moderators
        )
        lines.append(f"  roster: {roster}")
        lines.append(
            f"  turns of {format_duration(rotation.period)} from {local(rotation.starts)}; "
            f"moderation accepted from {len(spec.trusted_boards)} other board(s)"
        )
    lines.append(f"this board's key: {board_key}")
    lines.append("  (other boards list it under boards = [...] to accept its moderation)")
    return lines
