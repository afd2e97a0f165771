"""The web page for neighbours without a radio: what it shows, what it never shows, and how.

Real parts: a SQLite file filled through the store, the Flask app over it through Flask's test
client, and `meshboard web` as a subprocess answering real HTTP on a free port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from board.bulletin import Bulletin, new_bulletin
from board.config import ConfigError, MeshboardConfig, parse_config
from board.mod_policy import sign_action
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.moderation import ModerationStore
from board.types import TypeRegistry
from board.wire.keys import id_to_bytes
from board.wire.moderation import Action
from node.cli import cli
from node.clock import Clock
from node.web.app import create_app
from tests.node.webpages import WEB_AND_GARDEN, free_port

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday morning
TZ = ZoneInfo("Europe/London")
CONFIG = parse_config(
    {
        "ring": [
            {"name": "public", "channel": 0, "web": True},
            {"name": "garden", "channel": 1},
        ]
    }
)


def post(store: Store, ring: int, type: str, text: str, event: datetime | None = None) -> Bulletin:
    bulletin = new_bulletin(
        TypeRegistry(),
        type=type,
        text=text,
        author="!a1b2c3d4",
        ring=ring,
        now=NOW,
        event_time=event,
    )
    assert store.add(bulletin, NOW)
    return bulletin


@pytest.fixture
def board(tmp_path: Path) -> tuple[Path, dict[str, Bulletin]]:
    db = tmp_path / "board.db"
    store = Store.open(db)
    posted = {
        "soup": post(store, 0, "meal", "Soup in the shed", NOW + timedelta(days=2, hours=9)),
        "ladder": post(store, 0, "tool", "Ladder to lend"),
        "arabic": post(store, 0, "skill", "درس خياطة في القاعة", NOW + timedelta(days=1, hours=8)),
        "secret": post(
            store, 1, "meal", "Garden feast behind the allotments", NOW + timedelta(days=2)
        ),
        "later": post(store, 0, "meal", "Pie next month", NOW + timedelta(days=20)),
    }
    store.close()
    return db, posted


def client(db: Path, config: MeshboardConfig = CONFIG) -> FlaskClient:
    clock = Clock(start=NOW, speed=1.0)
    return create_app(db, config, TZ, clock).test_client()


def test_the_week_page_lists_the_public_events_by_day_and_nothing_of_a_private_ring(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, posted = board
    response = client(db).get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Soup in the shed" in html and "Wednesday 9 December" in html
    assert html.index("درس خياطة") < html.index("Soup in the shed")  # Tuesday before Wednesday
    assert '<span dir="auto">درس خياطة في القاعة</span>' in html
    assert "Ladder to lend" in html  # no event time: under "Also on the board"
    assert "Pie next month" not in html  # not this week
    assert "garden" not in html.lower()  # neither its bulletin nor its name
    assert f"/b/{posted['soup'].ref}" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert len(response.data) < 30_000


def test_a_bulletin_has_its_own_page_and_a_private_one_does_not_exist(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, posted = board
    web = client(db)
    page = web.get(f"/b/{posted['soup'].ref}")
    assert page.status_code == 200
    assert "Soup in the shed" in page.get_data(as_text=True)
    assert f"read #{posted['soup'].ref}" in page.get_data(as_text=True)
    hidden = web.get(f"/b/{posted['secret'].ref}")
    nonsense = web.get("/b/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
    assert hidden.status_code == nonsense.status_code == 404
    assert hidden.data == nonsense.data  # a private bulletin looks exactly like no bulletin
    assert b"Garden" not in hidden.data


@pytest.mark.parametrize(
    "path",
    [
        "/b/a3f0'; DROP TABLE bulletin; --",
        "/b/..%2F..%2Fetc%2Fpasswd",
        "/../../etc/passwd",
        "/static/../../board.db",
        "/b/" + "a" * 5000,
    ],
)
def test_hostile_paths_get_a_plain_404_and_change_nothing(
    board: tuple[Path, dict[str, Bulletin]], path: str
) -> None:
    db, _ = board
    before = db.read_bytes()
    response = client(db).get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert db.read_bytes() == before
    store = Store.open(db)
    assert store.count(0, now=NOW) == 4
    store.close()


def test_a_reload_of_an_unchanged_page_costs_nothing_and_a_deletion_shows_at_once(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, posted = board
    web = client(db)
    first = web.get("/")
    etag = first.headers["ETag"]
    again = web.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    store = Store.open(db)
    store.delete(posted["soup"].id, None, 0, NOW)
    store.close()
    after = web.get("/", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert "Soup in the shed" not in after.get_data(as_text=True)
    assert web.get(f"/b/{posted['soup'].ref}").status_code == 404


def test_bulletins_json_holds_the_public_rings_only(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, posted = board
    records = client(db).get("/bulletins.json").get_json()
    assert {r["ref"] for r in records} == {
        posted[k].ref for k in ("soup", "ladder", "arabic", "later")
    }
    assert all(r["ring"] == "public" for r in records)


def test_a_private_ring_cannot_be_put_on_the_web() -> None:
    with pytest.raises(ConfigError, match="private ring"):
        parse_config({"ring": [{"name": "garden", "channel": 1, "web": True}]})
    with pytest.raises(ConfigError, match="web must be true or false"):
        parse_config({"ring": [{"name": "public", "channel": 0, "web": "yes"}]})
    assert parse_config({"ring": [{"name": "public", "channel": 0}]}).on_the_web == ()


def test_the_command_says_what_is_wrong_before_it_listens(tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    Store.open(db).close()
    config = tmp_path / "meshboard.toml"
    config.write_text(WEB_AND_GARDEN, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["web", "--db", str(db)])  # no config: nothing on the web
    assert result.exit_code != 0 and "web = true" in result.output
    result = runner.invoke(cli, ["--config", str(config), "web", "--db", str(db), "--listen", "pi"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output
    missing = tmp_path / "nope.db"
    result = runner.invoke(cli, ["--config", str(config), "web", "--db", str(missing)])
    assert result.exit_code == 1 and "no database" in result.output and not missing.exists()


def raw(port: int, request: bytes) -> bytes:
    """What the server answers to `request`, sent as bytes (no client library to tidy it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(200)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_meshboard_web_serves_real_http_until_it_is_stopped(
    board: tuple[Path, dict[str, Bulletin]], tmp_path: Path
) -> None:
    db, posted = board
    config = tmp_path / "meshboard.toml"
    config.write_text(WEB_AND_GARDEN, encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "node", "--config", str(config), "web", "--db", str(db),
         "--listen", f"127.0.0.1:{port}", "--tz", "Europe/London"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        body = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/bulletins.json") as reply:
                    body = reply.read()
                break
            except OSError:
                time.sleep(0.2)
        assert posted["ladder"].ref.encode() in body
        assert b"Garden" not in body
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/b/{posted['secret'].ref}")
        assert error.value.code == 404
        error.value.close()
        # A client that never finishes its request does not hold the page up for others.
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            stalled.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bulletins.json") as reply:
                assert reply.status == 200
        huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        assert status(raw(port, huge)) == 431  # Request Header Fields Too Large, from waitress
        post = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
        assert status(raw(port, post.encode())) == 405  # a read-only site takes no writes
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert re.search(r"serving the board's web page on http://127\.0\.0\.1:\d+/", output), output


def test_the_tool_library_and_the_months_tally_are_on_the_week_page(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, _ = board
    html = client(db).get("/").get_data(as_text=True)
    library = html.split("<h2>Tool library</h2>", 1)[1].split("</section>", 1)[0]
    assert "Ladder to lend" in library and ": free" in library
    notices = html.split("<h2>Also on the board</h2>", 1)[1].split("</section>", 1)[0]
    assert "Ladder to lend" not in notices
    assert "<h2>Shared this month</h2>" in html and "Dec" in html


def test_the_atom_feed_lists_public_bulletins_with_absolute_links(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, posted = board
    response = client(db).get("/feed.xml", base_url="http://10.42.0.1/")
    assert response.mimetype == "application/atom+xml"
    feed = ElementTree.fromstring(response.data)
    atom = "{http://www.w3.org/2005/Atom}"
    ids = [entry.findtext(f"{atom}id") for entry in feed.iter(f"{atom}entry")]
    assert f"http://10.42.0.1/b/{posted['soup'].ref}" in ids
    assert len(ids) == 4  # the four public bulletins; the garden's is not there
    assert b"Garden" not in response.data


def test_on_the_boards_wifi_a_phones_captive_portal_check_lands_on_the_week_page(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, _ = board
    web = create_app(db, CONFIG, TZ, Clock(start=NOW), home="10.42.0.1").test_client()
    check = web.get("/generate_204", headers={"Host": "connectivitycheck.gstatic.com"})
    assert check.status_code == 302 and check.headers["Location"] == "http://10.42.0.1/"
    assert web.get("/", headers={"Host": "10.42.0.1"}).status_code == 200


def test_the_listening_address_comes_from_the_configuration_unless_given(tmp_path: Path) -> None:
    assert parse_config({**_RINGS, "web": {"listen": "10.42.0.1:80"}}).web_listen == "10.42.0.1:80"
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_config({**_RINGS, "web": {"listen": 80}})
    with pytest.raises(ConfigError, match="one key"):
        parse_config({**_RINGS, "web": {"port": 80}})
    db = tmp_path / "board.db"
    Store.open(db).close()
    config = tmp_path / "meshboard.toml"
    config.write_text(WEB_AND_GARDEN + '\n[web]\nlisten = "the-pi:80"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "web", "--db", str(db)])
    assert result.exit_code == 2 and "IP address" in result.output  # read from [web] listen


_RINGS = {"ring": [{"name": "public", "channel": 0, "web": True}]}


def test_a_bulletin_a_moderator_removed_is_gone_on_the_next_request(
    board: tuple[Path, dict[str, Bulletin]],
) -> None:
    db, posted = board
    web = client(db)
    assert "Soup in the shed" in web.get("/").get_data(as_text=True)
    soup = posted["soup"]
    removal = sign_action(
        BoardKey.generate(), Action.REMOVE, id_to_bytes(soup.id), 0, "!5678ef01", NOW,
        soup.expires_at,
    )  # fmt: skip
    store = Store.open(db)
    ModerationStore(store.engine).apply(removal, NOW)
    store.close()
    assert "Soup in the shed" not in web.get("/").get_data(as_text=True)
    assert web.get(f"/b/{soup.ref}").status_code == 404
    assert soup.ref not in web.get("/bulletins.json").get_data(as_text=True)
