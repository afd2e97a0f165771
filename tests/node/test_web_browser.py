"""The web page in a real browser: Debian's Chromium, driven by Selenium, JavaScript off.

The database is filled by a real daemon through the simulated mesh (a neighbour posts by radio
at another board; sync brings it), and a private ring's bulletin is in the same file. The page
comes from `meshboard web` as a subprocess. Skips with one line where Chromium and its driver
are not installed (`.ci/run` installs the Debian packages chromium and chromium-driver).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from board.bulletin import new_bulletin
from board.store.bulletins import Store
from board.types import TypeRegistry
from node.demo.neighbourhood import Neighbourhood
from tests.node.meshes import TWO_RINGS, board_line, post
from tests.node.webpages import SECRET, WEB_AND_GARDEN, free_port

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.chrome.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Chromium and chromedriver are not installed (Debian: chromium chromium-driver)",
)
SYNC_RINGS = frozenset({0, 1})


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=420,900",
    ):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"profile.managed_default_content_settings.javascript": 2}
    )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def serve(db: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "node", "--config", str(config), "web", "--db", str(db),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/").close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("meshboard web did not answer within 20 s")


def test_a_neighbour_reads_the_week_and_a_bulletin_with_javascript_off(
    hood: Neighbourhood, browser: WebDriver, tmp_path: Path
) -> None:
    far, near = board_line(hood, 2, TWO_RINGS)
    person = hood.neighbour(far, TWO_RINGS)
    ref = post(person, far, "post meal fri 19:00 Pumpkin soup in the shed").lstrip("#")
    hood.wait_until(lambda: len(hood.holdings(near, ring=0)) == 1, 60)
    store = Store.open(near.db_path)
    now = hood.mesh.clock.now()
    secret = new_bulletin(
        TypeRegistry(), type="meal", text=SECRET, author="!a1b2c3d4", ring=1, now=now,
        event_time=now + timedelta(days=1),
    )  # fmt: skip
    assert store.add(secret, now)
    store.close()
    config = tmp_path / "meshboard.toml"
    config.write_text(WEB_AND_GARDEN, encoding="utf-8")
    port = free_port()
    web = serve(near.db_path, config, port)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        assert browser.find_element(By.TAG_NAME, "h1").text == "This week on the board"
        assert "Pumpkin soup in the shed" in browser.page_source
        assert SECRET not in browser.page_source and "garden" not in browser.page_source.lower()
        browser.find_element(By.LINK_TEXT, "Pumpkin soup in the shed").click()
        assert browser.current_url.endswith(f"/b/{ref}")
        assert f"read #{ref}" in browser.find_element(By.TAG_NAME, "main").text
        browser.get(f"http://127.0.0.1:{port}/b/{secret.ref}")
        assert SECRET not in browser.page_source and "404" in browser.page_source
        if os.environ.get("MESHBOARD_SCREENSHOT"):
            browser.get(f"http://127.0.0.1:{port}/")
            browser.save_screenshot(os.environ["MESHBOARD_SCREENSHOT"])
    finally:
        web.terminate()
        web.wait(timeout=10)
