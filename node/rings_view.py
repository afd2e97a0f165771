"""What `meshboard config`, `moderators` and `members` show: the rings, for a person or a script.

Kept apart from the CLI (which only parses options and echoes) so the shapes are plain data.
A radio key is shown as the Meshtastic apps show it, in base64, and shortened to a fingerprint
(its first and last characters) that an operator can read out to a moderator over the phone.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from board.config import MeshboardConfig, RingSpec
from board.rings import duty, format_duration
from board.wire.members import MemberMsg

NO_FILE = "none: one ring, public, on channel 0 (meshboard config --example shows a file)"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def key_text(key: bytes) -> str:
    """A radio public key as the Meshtastic apps show it: base64, 44 characters."""
    return base64.b64encode(key).decode("ascii")


def fingerprint(key: bytes) -> str:
    """The key's first 8 and last 6 base64 characters: enough to compare by eye or voice."""
    if not key:
        return "none"
    text = key_text(key)
    return f"{text[:8]}...{text[-6:]}"


def _keys_json(spec: RingSpec, moderators: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for node in moderators:
        key = spec.pinned_key(node)
        out.append(
            {
                "node": node,
                "pinned": key is not None,
                "key": None if key is None else key_text(key),
                "fingerprint": None if key is None else fingerprint(key),
            }
        )
    return out


def _keys_line(spec: RingSpec, moderators: Sequence[str]) -> str:
    if not spec.pinned_keys:
        return "  radio keys: none pinned (meshboard moderators --pin --port PORT pins them)"
    cells = []
    for node in moderators:
        key = spec.pinned_key(node)
        cells.append(f"{node} not pinned" if key is None else f"{node} {fingerprint(key)}")
    return f"  radio keys pinned: {'; '.join(cells)}"


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
        "web": spec.web and not spec.private,
        "bridge": None if spec.bridge is None else spec.bridge.url,
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
    for spec in config.rings:
        if spec.web and not spec.private:
            lines.append(f"{spec.name}: on the web page (meshboard web)")
        if spec.bridge is not None:
            user = "" if spec.bridge.username is None else f" as {spec.bridge.username}"
            lines.append(f"{spec.name}: also through the MQTT broker {spec.bridge.url}{user}")
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
                keys=_keys_json(spec, rotation.moderators),
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
        lines.append(_keys_line(spec, rotation.moderators))
    lines.append(f"this board's key: {board_key}")
    lines.append("  (other boards list it under boards = [...] to accept its moderation)")
    return lines


#: Each private ring with its members' records, joined or left, as the store holds them.
Rosters = Sequence[tuple[RingSpec, Sequence[MemberMsg]]]


def _member_json(msg: MemberMsg) -> dict[str, Any]:
    return {
        "node": msg.node,
        "joined_at" if msg.joined else "left_at": _iso(msg.at),
        "expires_at": _iso(msg.expires_at),
        "key": key_text(msg.radio_key),
        "fingerprint": fingerprint(msg.radio_key),
        "board_key": key_text(msg.board_key),
    }


def members_json(rosters: Rosters) -> dict[str, Any]:
    """Per ring: who is a member (joined, unexpired) and who left, each with their radio key."""
    return {
        "rings": [
            {
                "ring": spec.name,
                "channel": spec.channel,
                "members": [_member_json(m) for m in records if m.joined],
                "left": [_member_json(m) for m in records if not m.joined],
            }
            for spec, records in rosters
        ]
    }


def members_lines(rosters: Rosters, tz: tzinfo) -> list[str]:
    """Per ring a head line, then one line per member and one per person who left."""

    def local(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%d %b %Y %H:%M %Z")

    lines: list[str] = []
    for spec, records in rosters:
        joined = sorted((m for m in records if m.joined), key=lambda m: m.node)
        left = sorted((m for m in records if not m.joined), key=lambda m: m.node)
        head = f"{spec.name} (channel {spec.channel}): {len(joined)} member(s)"
        lines.append(head + (f", {len(left)} left" if left else ""))
        if not joined:
            lines.append("  nobody has joined")
        for m in joined:
            lines.append(
                f"  {m.node}  joined {local(m.at)}  expires {local(m.expires_at)}  "
                f"key {fingerprint(m.radio_key)}"
            )
        for m in left:
            lines.append(f"  {m.node}  left {local(m.at)}  key {fingerprint(m.radio_key)}")
    if not rosters:
        lines.append("no private rings: only channel 0, which everyone on the mesh can read")
    return lines
