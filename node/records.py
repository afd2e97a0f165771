"""What the read commands show of a bulletin and of a moderation attempt.

Kept apart from the CLI (which parses options and echoes) so the shapes are plain data that a
test or another front end can use without click.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from board.bulletin import Bulletin
from board.config import MeshboardConfig
from board.store.moderation import AuditEntry
from board.sync.bundle import ImportReport
from board.tally import Tally


def bulletin_record(bulletin: Bulletin, config: MeshboardConfig) -> dict[str, Any]:
    """The JSON shape of a bulletin, shared by every read command."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "ref": bulletin.ref,
        "id": bulletin.id,
        "type": bulletin.type,
        "text": bulletin.text,
        "event_time": iso(bulletin.event_time),
        "expires_at": iso(bulletin.expires_at),
        "created_at": iso(bulletin.created_at),
        "author": bulletin.author,
        "ring": config.name_of(bulletin.ring),
        "channel": bulletin.ring,
    }


def audit_line(entry: AuditEntry, tz: ZoneInfo) -> str:
    when = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    verdict = "accepted" if entry.accepted else f"refused: {entry.reason}"
    bulletin = entry.bulletin[:12]
    who = f"{entry.moderator}  {entry.action:<7} #{bulletin:<12}"
    return f"{when}  ring {entry.ring}  {who}  {entry.source}  {verdict}"


def tally_record(tally: Tally, config: MeshboardConfig) -> dict[str, Any]:
    """One ring's month in `meshboard tally --json`."""
    return {
        "ring": tally.ring,
        "ring_name": config.name_of(tally.ring),
        "period": tally.period.label,
        "start": tally.period.start.isoformat(),
        "end": tally.period.end.isoformat(),
        "meals": tally.meals,
        "skills": tally.skills,
        "tools_offered": tally.tools,
        "tools_lent": tally.loans,
        "childcare": tally.childcare,
        "posters": tally.posters,
    }


def import_record(file: Path, report: ImportReport) -> dict[str, Any]:
    """What `meshboard import --json` did."""
    return {
        "file": str(file),
        "exporter": report.exporter,
        "exported_at": report.created_at.isoformat(),
        "new": report.new,
        "already": report.already,
        "removed": report.removed,
        "tombstones": report.tombstones,
        "expired": report.expired,
        "implausible": report.implausible,
    }
