"""The web page's read-only reader (`node.web.reading`) against the store it stands in for.

The web process reads the daemon's database with the standard library alone, to stay small on a
Pi Zero 2; what it shows must still be exactly what the store shows a person, since what it
leaves out (expired, deleted, removed by a moderator) is a matter of privacy. So each query is
held side by side with `Store`, `ToolStore` and `tally_period` over one busy board, made through
the stores' own write paths (`bench/store_scale.py`'s `build`), in a real SQLite file.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from board.bulletin import Bulletin, new_bulletin
from board.config import parse_config
from board.errors import AmbiguousRef, BoardError, DatabaseUnavailable
from board.mod_policy import sign_action
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.moderation import ModerationStore
from board.store.schema import LATEST
from board.store.shares import tally_period
from board.store.tools import ToolStore, loans_between
from board.tally import Period, calendar_month, lunar_month
from board.types import TypeRegistry
from board.wire.keys import bulletin_key, id_to_bytes
from board.wire.moderation import Action
from board.wire.tools import ToolStateMsg
from node.cli import cli
from node.clock import Clock
from node.web.app import create_app
from node.web.reading import REMOVED, BoardReader, WrongSchema
from tests.node.webpages import WEB_AND_GARDEN

ROOT = Path(__file__).resolve().parents[2]
V1_FIXTURE = ROOT / "tests" / "board" / "fixtures" / "schema_v1.sql"
NOW = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)
RINGS = (0, 1, 2, 7)  # the bench's three rings, and one nobody posts on
MODERATOR = "!5678ef01"
TYPES = TypeRegistry()
WEB = parse_config({"ring": [{"name": "public", "channel": 0, "web": True}]})
#: What `ref` typing a person might do that is no ref at all (a NotFound from both sides).
NONSENSE = ("#", "a3f0'; DROP TABLE bulletin; --", "a" * 40, "zzzz", "#IL0O", "é1")


def _store_scale() -> ModuleType:
    """bench/store_scale.py, loaded from its file (the bench folder is not a package)."""
    spec = importlib.util.spec_from_file_location("store_scale", ROOT / "bench" / "store_scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["store_scale"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Busy:
    db: Path
    stored: list[Bulletin]  # every bulletin with a row, expired or hidden or not
    hidden: set[str]
    deleted: Bulletin
    unreadable: str  # the id of a row whose bytes today's rules refuse
    twins: tuple[Bulletin, Bulletin]  # one ring, one 4-character ref


def meal(text: str, ring: int, at: datetime) -> Bulletin:
    return new_bulletin(TYPES, type="meal", text=text, author="!0a0b0c0d", ring=ring, now=at)


def edges(store: Store, tool: Bulletin) -> list[Bulletin]:
    """What a random board hardly ever holds and a query could still get wrong: bulletins
    posted in the same second (the order's tie), one expiring at this very second, two sharing
    a 4-character ref, and a share and a loan on the first second of this month."""
    posted = [meal(f"Soup number {n}", 0, NOW - timedelta(hours=1)) for n in range(4)]
    posted.append(meal("Soup to the last second", 0, NOW - TYPES.get("meal").lifetime))
    assert posted[-1].expires_at == NOW
    month = calendar_month(NOW, ZoneInfo("UTC")).start
    posted.append(meal("First soup of the month", 1, month))
    seen: dict[str, Bulletin] = {}
    for n in range(100_000):
        twin = meal(f"Jam jar {n}", 2, NOW - timedelta(hours=2))
        if (other := seen.setdefault(twin.ref, twin)) is not twin:
            posted += [other, twin]
            break
    else:
        raise AssertionError("no two jam jars with one ref")
    for bulletin in posted:
        assert store.add(bulletin, bulletin.created_at)
    lent_then = ToolStateMsg(bulletin_key(tool.id), tool.ring, True, int(month.timestamp()))
    ToolStore(store).apply(lent_then)
    return posted


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Busy:
    """The bench's busy board (three rings, every type; expired, deleted, moderator-hidden and
    lent ones), and what its `build` leaves out, made the same way."""
    db = tmp_path_factory.mktemp("busy") / "board.db"
    data = _store_scale().build(db, 900, NOW, random.Random(5))
    assert data.tombstoned and data.hidden and data.lent
    assert any(b.expires_at <= NOW for b in data.stored)
    live = [b for b in data.stored if b.expires_at > NOW and b.id not in data.hidden]
    store = Store.open(db)
    moderation, key = ModerationStore(store.engine), BoardKey.generate()

    def moderate(target: Bulletin, action: Action, ring: int, at: datetime) -> None:
        msg = sign_action(
            key, action, id_to_bytes(target.id), ring, MODERATOR, at, target.expires_at
        )
        moderation.apply(msg, NOW)

    moderate(live[0], Action.REMOVE, (live[0].ring + 1) % 3, NOW)  # on another ring: no effect
    moderate(live[1], Action.REMOVE, live[1].ring, NOW - timedelta(hours=1))
    moderate(live[1], Action.RESTORE, live[1].ring, NOW)  # removed, then brought back
    deleted = live[2]
    store.delete(deleted.id, None, deleted.ring, NOW)  # the operator's deletion: a tombstone
    tools = ToolStore(store)
    free_tools = [b for b in live[3:] if b.type == "tool" and tools.get(b.id) is None]
    back, until, garbled = free_tools[:3]
    stamp = int(NOW.timestamp())
    for lent, ago in ((True, 200), (False, 100)):  # lent, then back
        tools.apply(ToolStateMsg(bulletin_key(back.id), back.ring, lent, stamp - ago))
    friday = int((NOW + timedelta(days=2)).timestamp())
    tools.apply(ToolStateMsg(bulletin_key(until.id), until.ring, True, stamp, friday, "the Smiths"))
    added = edges(store, back)
    store.close()
    # No write path makes these: a row stored before a rule was tightened, and a garbled state.
    unreadable = "0" * 25 + "q"
    with sqlite3.connect(db) as raw:
        raw.execute(
            "INSERT INTO bulletin (id, ref, ring, type, text, author, created_at, event_time, "
            "expires_at, received_at, canonical) VALUES (?, ?, 0, 'meal', 'old', '!00000001', "
            "?, NULL, ?, ?, ?)",
            (unreadable, unreadable[:4], stamp, stamp + 86400, stamp, b"\x00not a bulletin"),
        )
        raw.execute(
            "INSERT INTO tool_state (bulletin_id, ring, stamp, state) VALUES (?, ?, 1, ?)",
            (garbled.id, garbled.ring, b"\xff"),
        )
    raw.close()
    stored = [b for b in data.stored if b.id != deleted.id] + added
    return Busy(db, stored, data.hidden, deleted, unreadable, (added[-2], added[-1]))


@pytest.fixture
def both(busy: Busy) -> Iterator[tuple[Store, BoardReader]]:
    store = Store.open(busy.db)
    with BoardReader.open(busy.db) as reader:
        yield store, reader
    store.close()


def outcome(read: Callable[[], Bulletin]) -> object:
    """What a read gives: the bulletin, or its error's kind and words (and an ambiguous ref's
    candidates)."""
    try:
        return read()
    except AmbiguousRef as error:
        return ("AmbiguousRef", str(error), error.matches)
    except BoardError as error:
        return (type(error).__name__, str(error))


def test_each_ring_lists_exactly_what_the_store_shows_in_its_order(
    busy: Busy, both: tuple[Store, BoardReader]
) -> None:
    store, reader = both
    for now in (NOW, NOW - timedelta(days=3), NOW + timedelta(days=2)):
        for ring in RINGS:
            assert reader.active(now, ring) == store.active(now, ring=ring), (now, ring)
    listed = {b.id for ring in RINGS for b in reader.active(NOW, ring)}
    assert listed and not listed & busy.hidden
    assert busy.deleted.id not in listed and busy.unreadable not in listed
    assert not any(b.expires_at <= NOW for ring in RINGS for b in reader.active(NOW, ring))


def test_a_ref_finds_what_the_store_finds_and_fails_as_the_store_fails(
    busy: Busy, both: tuple[Store, BoardReader]
) -> None:
    store, reader = both
    expired = [b for b in busy.stored if b.expires_at <= NOW]
    hidden = [b for b in busy.stored if b.id in busy.hidden]
    named = [(b.id, b.ring) for b in [*busy.stored[:200], *expired[:50], *hidden, busy.deleted]]
    named.append((busy.unreadable, 0))
    # A ref and the whole id, on the bulletin's own ring and on another one.
    cases = [
        (ref, ring, now)
        for bulletin_id, own in named
        for ref in (bulletin_id[:4], bulletin_id)
        for ring, now in ((own, NOW), (own, None), ((own + 1) % 3, NOW))
    ]
    # Short prefixes (mostly ambiguous), shouted ones, and what is no ref at all, everywhere.
    typed = {i[:n] for i, _ in named[:80] for n in (2, 3)}
    typed |= {f"#{i[:4].upper()}" for i, _ in named[:20]} | set(NONSENSE)
    twin = busy.twins[0].id
    typed |= {twin[:n] for n in range(2, 8)}  # ambiguous at 4: the candidates need 5 or more
    cases += [
        (ref, ring, now) for ref in sorted(typed) for ring in RINGS[:3] for now in (NOW, None)
    ]
    kinds: Counter[str] = Counter()
    for ref, ring, now in cases:
        found = outcome(lambda: reader.get(ref, ring, now=now))  # noqa: B023
        assert found == outcome(lambda: store.get(ref, ring, now=now)), (ref, ring, now)  # noqa: B023
        kinds[found[0] if isinstance(found, tuple) else "found"] += 1
    assert set(kinds) == {"found", "NotFound", "AmbiguousRef", "MalformedBulletin"}, kinds
    gone = next(b for b in expired if b.id not in busy.hidden)
    assert reader.get(gone.id, gone.ring) == gone  # expired, not purged yet: only `now` hides it
    assert outcome(lambda: reader.get(gone.id, gone.ring, now=NOW)) == (
        "NotFound",
        f"no bulletin #{gone.id}",
    )


def test_every_tool_is_as_lent_or_free_as_the_tool_store_says(
    busy: Busy, both: tuple[Store, BoardReader]
) -> None:
    store, reader = both
    tools = ToolStore(store)
    states = {b.id: reader.tool_state(b.id) for b in busy.stored if b.type == "tool"}
    assert states == {i: tools.get(i) for i in states}
    seen = Counter("free" if s is None else ("lent" if s.lent else "back") for s in states.values())
    assert seen["free"] and seen["lent"] and seen["back"], seen
    assert any(s is not None and s.until and s.borrower == "the Smiths" for s in states.values())


def test_the_months_tally_counts_what_the_store_counts(
    both: tuple[Store, BoardReader],
) -> None:
    store, reader = both
    periods: list[Period] = [lunar_month(NOW, UTC), lunar_month(NOW - timedelta(days=30), UTC)]
    for tz in ("UTC", "Europe/London", "Pacific/Auckland"):
        month = calendar_month(NOW, ZoneInfo(tz))
        periods += [month, calendar_month(month.start - timedelta(seconds=1), ZoneInfo(tz))]

    def loans(start: datetime, end: datetime, ring: int) -> int:
        return loans_between(store, start, end, ring)  # as the handheld's `tally` counts them

    tallies = []
    for period in periods:
        for ring in RINGS:
            tally = reader.tally(period, ring)
            assert tally == tally_period(store.engine, period, ring, loans), (period, ring)
            tallies.append(tally)
    assert any(t.meals and t.tools and t.loans for t in tallies)


def test_the_reader_cannot_write_the_board(busy: Busy) -> None:
    before = busy.db.read_bytes()
    with BoardReader.open(busy.db) as reader:
        for statement in (
            "DELETE FROM bulletin",
            "DELETE FROM moderation",
            "PRAGMA user_version = 9",
        ):
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader._db.execute(statement)
    assert busy.db.read_bytes() == before


def _with_version(path: Path, version: int) -> Path:
    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {version:d}")
    db.close()
    return path


def test_a_database_of_another_schema_version_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    newer = _with_version(tmp_path / "newer.db", LATEST + 1)
    with pytest.raises(WrongSchema, match=rf"schema v{LATEST + 1}, newer .* upgrade meshboard"):
        BoardReader.open(newer)
    older = _with_version(tmp_path / "older.db", LATEST - 1)
    with pytest.raises(WrongSchema, match=rf"schema v{LATEST - 1}.*`meshboard run`"):
        BoardReader.open(older)
    v1 = tmp_path / "v1.db"  # a board from before the schema had versions
    with sqlite3.connect(v1) as db:
        db.executescript(V1_FIXTURE.read_text(encoding="utf-8"))
    db.close()
    before = v1.read_bytes()
    with pytest.raises(WrongSchema, match=r"no schema version.*migrates it"):
        create_app(v1, WEB, ZoneInfo("UTC"), Clock(start=NOW))
    assert v1.read_bytes() == before  # the web never migrates: the daemon does
    config = tmp_path / "meshboard.toml"
    config.write_text(WEB_AND_GARDEN, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "web", "--db", str(newer)])
    assert result.exit_code == 1 and "upgrade meshboard" in result.output


def test_a_missing_or_damaged_database_says_so_and_is_not_made(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(DatabaseUnavailable, match="no database at"):
        BoardReader.open(missing)
    assert not missing.exists()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database at all " * 200)
    with pytest.raises(DatabaseUnavailable, match=r"cannot read database .*meshboard doctor"):
        BoardReader.open(damaged)


WEB_PROCESS = """
import json, sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo
from board.config import parse_config
from node.clock import Clock
import node.web.app, node.web.server, node.web.pages, node.web.reading

config = parse_config({"ring": [{"name": "public", "channel": 0, "web": True}]})
now = datetime.fromisoformat(sys.argv[2])
web = node.web.app.create_app(Path(sys.argv[1]), config, ZoneInfo("UTC"), Clock(start=now))
pages = ["/", "/tools", "/notices", "/b/" + sys.argv[3], "/b/zz", "/feed.xml", "/bulletins.json"]
codes = [web.test_client().get(page).status_code for page in pages]
heavy = ("sqlalchemy", "sqlmodel", "cryptography")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
store = "board.store.bulletins" in sys.modules
print(json.dumps({"codes": codes, "loaded": loaded, "store": store}))
"""


def test_the_web_page_serves_every_page_without_loading_sqlalchemy(busy: Busy) -> None:
    """Nor `cryptography`: the reader checks no signature (a removal is `REMOVED`)."""
    assert REMOVED == Action.REMOVE
    shown = next(
        b
        for b in busy.stored
        if b.ring == 0 and b.expires_at > NOW + timedelta(hours=1) and b.id not in busy.hidden
    )
    args = [str(busy.db), NOW.isoformat(), shown.id]
    run = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    answer: dict[str, Any] = json.loads(run.stdout)
    assert answer == {"codes": [200, 200, 200, 200, 404, 200, 200], "loaded": [], "store": False}


def test_the_meshboard_web_command_loads_no_sqlalchemy() -> None:
    code = "import sys, node.cli, node.commands.web; print('sqlalchemy' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
