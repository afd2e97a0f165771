"""The printed poster: read back from the PDF the command writes, as a reader of the wall would.

Real parts: a SQLite file, `meshboard poster` through click's CliRunner, the PDF read back by
pypdf (text extraction), and its QR code decoded by ZXing from the image inside the PDF.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader

from board.bulletin import Bulletin, new_bulletin
from board.store.bulletins import Store
from board.types import TypeRegistry
from node.cli import cli
from node.web.poster import FONT, PosterError, find_font
from tests.node.webpages import SECRET, WEB_AND_GARDEN


def _font_missing() -> bool:
    try:
        find_font(FONT)
    except PosterError:
        return True
    return False


pytestmark = pytest.mark.skipif(
    _font_missing(), reason="DejaVu Sans is not installed (Debian: fonts-dejavu-core)"
)


def post(store: Store, ring: int, text: str, hours: float | None, type: str = "meal") -> Bulletin:
    now = datetime.now(UTC)
    bulletin = new_bulletin(
        TypeRegistry(),
        type=type,
        text=text,
        author="!a1b2c3d4",
        ring=ring,
        now=now,
        event_time=None if hours is None else now + timedelta(hours=hours),
    )
    assert store.add(bulletin, now)
    return bulletin


def make(tmp_path: Path, *args: str) -> tuple[str, PdfReader]:
    config = tmp_path / "meshboard.toml"
    config.write_text(WEB_AND_GARDEN, encoding="utf-8")
    out = tmp_path / "week.pdf"
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "poster", "--db", str(tmp_path / "board.db"), "-o", str(out),
         "--tz", "UTC", *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output, PdfReader(str(out))


def test_the_poster_holds_every_public_event_of_the_week_and_nothing_private(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "board.db")
    events = [post(store, 0, f"Soup number {i} at the hall", 2 + 20 * i) for i in range(6)]
    ladder = post(store, 0, "Ladder to lend", None, type="tool")
    sewing = post(store, 0, "درس خياطة في القاعة", 30, type="skill")
    post(store, 1, SECRET, 5)
    store.close()
    _, pdf = make(tmp_path, "--url", "http://10.42.0.1/")
    assert len(pdf.pages) == 1
    text = pdf.pages[0].extract_text()
    for bulletin in events:
        assert bulletin.text in text and f"#{bulletin.ref}" in text
    assert f"#{sewing.ref}" in text
    assert f"#{ladder.ref} free: {ladder.text}" in text
    assert "Garden" not in text and "allotments" not in text
    assert "Post and read by radio" in text
    (image,) = pdf.pages[0].images
    (code,) = zxingcpp.read_barcodes(image.image)
    assert code.text == "http://10.42.0.1/"


def test_a_full_week_says_how_many_more_and_where_and_cuts_no_word(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "board.db")
    long = "Bring-and-share supper with music, games for the children and a quiz afterwards"
    for i in range(60):
        post(store, 0, f"{long} number {i}", 1 + 2.5 * i)
    store.close()
    output, pdf = make(tmp_path)
    text = pdf.pages[0].extract_text()
    assert len(pdf.pages) == 1
    assert "more this week: http://10.42.0.1/" in text
    assert "did not fit" in output
    flowing = " ".join(text.split())  # the lines joined again: a word cut in two would not match
    shown = [i for i in range(60) if f"{long} number {i}" in flowing]
    assert shown and shown == list(range(len(shown)))  # in time order, the first ones whole


def test_an_emoji_the_font_cannot_draw_is_replaced_visibly(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "board.db")
    post(store, 0, "Soup night 🍲 at the hall", 3)
    store.close()
    _, pdf = make(tmp_path)
    assert "Soup night \ufffd at the hall" in pdf.pages[0].extract_text()


def test_without_a_web_ring_the_poster_says_so(tmp_path: Path) -> None:
    Store.open(tmp_path / "board.db").close()
    result = CliRunner().invoke(
        cli, ["poster", "--db", str(tmp_path / "board.db"), "-o", str(tmp_path / "x.pdf")]
    )
    assert result.exit_code == 1 and "web = true" in result.output
    assert not (tmp_path / "x.pdf").exists()


def test_ring_names_the_ring_printed_and_a_private_one_is_refused(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "board.db")
    soup = post(store, 0, "Soup at the hall", 5)
    post(store, 1, SECRET, 5)
    store.close()
    _, pdf = make(tmp_path, "--ring", "public")
    assert soup.text in pdf.pages[0].extract_text()
    for ring in ("garden", "1"):
        result = CliRunner().invoke(
            cli,
            ["--config", str(tmp_path / "meshboard.toml"), "poster", "--ring", ring,
             "--db", str(tmp_path / "board.db"), "-o", str(tmp_path / "garden.pdf")],
        )  # fmt: skip
        assert result.exit_code == 1 and "a private ring is never printed" in result.output
        assert not (tmp_path / "garden.pdf").exists()


def test_next_weeks_poster_holds_next_weeks_events(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "board.db")
    soon = post(store, 0, "Soup tomorrow", 24)
    later = post(store, 0, "Soup in ten days", 24 * 10)
    store.close()
    _, pdf = make(tmp_path, "--week", "next")
    text = pdf.pages[0].extract_text()
    assert later.text in text and soon.text not in text


def test_png_gives_a_picture_of_the_page_whose_qr_code_leads_to_the_web_page(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "board.db")
    post(store, 0, "Soup at the hall", 5)
    store.close()
    config = tmp_path / "meshboard.toml"
    config.write_text(WEB_AND_GARDEN, encoding="utf-8")
    out = tmp_path / "week.png"
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "poster", "--db", str(tmp_path / "board.db"), "-o", str(out),
         "--png", "--url", "http://10.42.0.1/"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    picture = Image.open(out)
    assert picture.format == "PNG" and picture.size[1] > picture.size[0] > 1000  # A4 upright
    assert [code.text for code in zxingcpp.read_barcodes(picture)] == ["http://10.42.0.1/"]
    assert not list(tmp_path.glob("*.pdf"))  # the PDF it rendered from is not left behind
