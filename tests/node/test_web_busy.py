"""The web page on a busy board: the week page stays small and the rest is a link away; and
where `meshboard web` listens when nobody says (the Pi's LAN, never a public address).

Real parts: a SQLite file filled through the store, the Flask app through its test client.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path

import pytest

from board.store.bulletins import Store
from node.web.pages import CAPS
from node.web.server import DEFAULT_LISTEN, home_of, lan_addresses, parse_listen
from tests.node.test_web import NOW, client, post


@pytest.fixture
def busy(tmp_path: Path) -> Path:
    """A week with 40 events on Wednesday, 70 tools, 25 notices, and a private ring's too."""
    db = tmp_path / "board.db"
    store = Store.open(db)
    wednesday = NOW + timedelta(days=2)
    for n in range(40):
        post(store, 0, "meal", f"Supper number {n:02d}", wednesday + timedelta(minutes=10 * n))
    for n in range(70):
        post(store, 0, "tool", f"Tool number {n:02d}")
    for n in range(25):
        post(store, 0, "notice", f"Notice number {n:02d}")
    for n in range(60):
        post(store, 1, "tool", f"Secret tool {n:02d}")
    store.close()
    return db


def items(html: str, word: str) -> list[str]:
    return re.findall(rf"{word} number \d\d", html)


def test_a_busy_week_page_stays_small_and_says_how_many_more_and_where(busy: Path) -> None:
    web = client(busy)
    page = web.get("/")
    html = page.get_data(as_text=True)
    assert len(page.data) < 30_000
    assert items(html, "Supper") == [f"Supper number {n:02d}" for n in range(CAPS.events)]
    more = 40 - CAPS.events
    assert f'<a href="/day/2026-12-09">{more} more</a>' in html
    assert len(items(html, "Tool")) == CAPS.tools
    assert f'<a href="/tools">{70 - CAPS.tools} more</a>' in html
    assert len(items(html, "Notice")) == CAPS.notices
    assert f'<a href="/notices">{25 - CAPS.notices} more</a>' in html
    assert "Secret" not in html

    day = web.get("/day/2026-12-09").get_data(as_text=True)
    assert items(day, "Supper") == [f"Supper number {n:02d}" for n in range(40)]  # in time order
    assert "Wednesday 9 December" in day


def test_the_tool_library_runs_to_pages_and_a_page_that_is_not_there_is_a_404(
    busy: Path,
) -> None:
    web = client(busy)
    first = web.get("/tools").get_data(as_text=True)
    second = web.get("/tools?page=2").get_data(as_text=True)
    shown = items(first, "Tool") + items(second, "Tool")
    assert sorted(shown) == [f"Tool number {n:02d}" for n in range(70)]
    assert len(items(first, "Tool")) == CAPS.per_page
    assert 'href="?page=2" rel="next"' in first and 'rel="next"' not in second
    assert "Secret" not in first + second
    for bad in ("/tools?page=3", "/tools?page=0", "/tools?page=x", "/tools?page=-1"):
        answer = web.get(bad)
        assert answer.status_code == 404 and answer.mimetype == "text/plain", bad
    assert web.get("/notices").status_code == 200
    for day in ("/day/2026-12-20", "/day/yesterday", "/day/2026-02-30"):
        assert web.get(day).status_code == 404, day  # not a day of this week


def test_by_default_the_page_listens_on_private_addresses_only() -> None:
    found = parse_listen(DEFAULT_LISTEN)
    assert ("127.0.0.1", 8080) in found  # the Pi itself can always check the page
    for host, port in found:
        address = ipaddress.ip_address(host)
        assert port == 8080 and address.is_private and not address.is_link_local
    assert {host for host, _ in found} == set(lan_addresses())
    assert home_of(found) is None or len(found) == 1  # no captive redirect to another network


def test_a_listen_address_is_checked_and_one_address_is_the_captive_home() -> None:
    assert parse_listen("10.42.0.1:80") == [("10.42.0.1", 80)]
    assert home_of([("10.42.0.1", 80)]) == "10.42.0.1"
    assert home_of([("fd00::1", 8080)]) == "[fd00::1]:8080"
    assert parse_listen("lan:80") == [(host, 80) for host in lan_addresses()]
    for bad, says in (("pi:80", "IP address"), ("10.42.0.1", "HOST:PORT"), ("lan:0", "1-65535")):
        with pytest.raises(ValueError, match=says):
            parse_listen(bad)
