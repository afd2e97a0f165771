"""`meshboard tally`: what the neighbourhood shared per month (meals, skills, tools offered
and lent, childcare, posters), per ring, in calendar or lunar months.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from board.config import RingSpec
from board.store.shares import monthly
from board.store.tools import loans_between
from node.clock import SYSTEM_CLOCK
from node.commands.common import current_config, served_rings
from node.records import tally_record
from node.rings_cli import db_option, emit_json, json_option, open_store, ring_option, tz_option


@click.command()
@ring_option()
@click.option("--moon", is_flag=True, help="Lunar months, new moon to new moon.")
@db_option
@tz_option
@json_option
def tally(ring: RingSpec | None, moon: bool, db_path: Path, tz: ZoneInfo, as_json: bool) -> None:
    """What was shared per month: meals, skills, tools offered and lent (each `lend` said that
    month), childcare, posters."""
    store = open_store(db_path)
    now = SYSTEM_CLOCK.now()

    def loans(start: datetime, end: datetime, ring: int) -> int:
        return loans_between(store, start, end, ring)

    config = current_config()
    tallies = {
        r: monthly(store.engine, r, now, tz, moon=moon, loans=loans) for r in served_rings(ring)
    }
    if as_json:
        emit_json([tally_record(t, config) for ts in tallies.values() for t in ts])
        return
    for channel, ring_tallies in tallies.items():
        kind = "lunar months" if moon else f"months ({tz.key})"
        click.echo(f"ring {config.name_of(channel)} ({channel}), {kind}")
        click.echo(
            f"{'period':<16} {'meals':>5} {'skills':>6} {'tools':>5} {'lent':>4} "
            f"{'childcare':>9} {'posters':>7}"
        )
        for t in ring_tallies:
            lent = "-" if t.loans is None else str(t.loans)
            click.echo(
                f"{t.period.label:<16} {t.meals:>5} {t.skills:>6} {t.tools:>5} {lent:>4} "
                f"{t.childcare:>9} {t.posters:>7}"
            )
