"""The web page's routes, as a Flask app over one board's database.

Every response is rendered on the server (no JavaScript, nothing fetched from outside the Pi)
and carries an ETag of its body: a phone reloading an unchanged page gets a 304 and no bytes.
Unknown paths, refs that are not refs, and bulletins of rings not on the web all get the same
plain 404. The database is read through `node.web.reading`, opened read-only, one connection
per request (made on the request's first read, closed when it ends), so that each request sees
the board as it is now and the server's threads share no connection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from board.config import MeshboardConfig
from board.errors import BoardError
from node.clock import SYSTEM_CLOCK, Clock
from node.health import UnreadableStatus, read_status, status_path
from node.web import pages
from node.web.reading import BoardReader

logger = logging.getLogger(__name__)

#: The handheld commands every page repeats, so a reader knows how to answer by radio.
COMMANDS = ("list", "read #ref", "post skill sat 10:00 Bike repair in the yard", "help")
FEED_ENTRIES = 30  # the newest bulletins in /feed.xml
#: Nothing from outside the Pi, no scripts at all; the one stylesheet is inline.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'none'"


@dataclass(frozen=True)
class Site:
    """What every page needs: where the board is, and how to reach it by radio."""

    config: MeshboardConfig
    tz: ZoneInfo
    clock: Clock
    db_path: Path

    def radio(self) -> str | None:
        """The board radio's node id, from the daemon's status file, if it is readable."""
        try:
            status = read_status(status_path(self.db_path))
        except (UnreadableStatus, OSError):  # a file being rewritten: the page goes on
            return None
        return None if status is None else status.node_id


def create_app(
    db_path: Path,
    config: MeshboardConfig,
    tz: ZoneInfo,
    clock: Clock = SYSTEM_CLOCK,
    *,
    home: str | None = None,
) -> Flask:
    """The app for the board whose database is `db_path` (it must exist: the daemon makes it;
    one this page cannot read is a BoardError here rather than on the first request).

    With `home` (the page's own `host[:port]`), a request for any other host is sent to the
    week page: on the board's Wi-Fi every name resolves to the Pi (firmware_notes/
    wifi-hotspot.md), so a phone's captive-portal check lands on the board.
    """
    BoardReader.open(db_path).close()
    site = Site(config, tz, clock, db_path)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 0  # a read-only site takes no request bodies

    def board() -> BoardReader:
        """This request's reader: opened on its first read, closed when the request ends."""
        if "board" not in g:
            g.board = BoardReader.open(db_path)
        reader: BoardReader = g.board
        return reader

    @app.teardown_appcontext
    def close_board(_error: BaseException | None) -> None:
        reader: BoardReader | None = g.pop("board", None)
        if reader is not None:
            reader.close()

    @app.before_request
    def captive() -> WerkzeugResponse | None:
        if home is not None and request.host != home:
            return redirect(f"http://{home}/", code=302)
        return None

    def page(template: str, **values: Any) -> Response:
        html = render_template(
            template,
            rings=config.on_the_web,
            radio=site.radio(),
            commands=COMMANDS,
            cap=pages.CAPS,
            **values,
        )
        return conditional(Response(html, mimetype="text/html"))

    @app.get("/")
    def week() -> Response:
        now = clock.now()
        return page("week.html", week=pages.week(board(), config, now, tz), now=now)

    @app.get("/day/<day>")
    def day(day: str) -> Response:
        now = clock.now()
        for shown in pages.week(board(), config, now, tz).days:
            if shown.day.isoformat() == day:
                return listing("event", shown.day.strftime("%A %-d %B"), shown.events)
        abort(404)  # not a day of this week, or not a date at all

    @app.get("/tools")
    def tools() -> Response:
        week = pages.week(board(), config, clock.now(), tz)
        return listing("tool", "Tool library", week.tools)

    @app.get("/notices")
    def notices() -> Response:
        week = pages.week(board(), config, clock.now(), tz)
        return listing("notice", "Also on the board", week.notices)

    def listing(kind: str, title: str, items: Sequence[object]) -> Response:
        """One page of a long list, `?page=N` (from 1); a page that is not there is a 404."""
        per_page = pages.CAPS.per_page
        count = max(1, -(-len(items) // per_page))
        number = request.args.get("page", "1")
        if not number.isdigit() or not 1 <= int(number) <= count:
            abort(404)
        at = (int(number) - 1) * per_page
        shown = items[at : at + per_page]
        return page("list.html", kind=kind, title=title, items=shown, page=int(number), pages=count)

    @app.get("/b/<ref>")
    def bulletin(ref: str) -> Response:
        reader = board()  # a database it cannot read is an error, not a 404
        try:
            shown = pages.bulletin(reader, config, ref, clock.now(), tz)
        except BoardError:
            shown = None  # not a ref at all: the same answer as a ref nobody posted
        if shown is None:
            abort(404)
        return page("bulletin.html", bulletin=shown)

    @app.get("/feed.xml")
    def feed() -> Response:
        now = clock.now()
        shown = pages.everything(board(), config, now, tz)[:FEED_ENTRIES]
        updated = max((s.posted for s in shown), default=now).isoformat()
        xml = render_template("feed.xml", bulletins=shown, base=request.url_root, updated=updated)
        return conditional(Response(xml, mimetype="application/atom+xml"))

    @app.get("/bulletins.json")
    def bulletins_json() -> Response:
        now = clock.now()
        shown = pages.everything(board(), config, now, tz)
        return conditional(jsonify([_record(s) for s in shown]))

    @app.errorhandler(HTTPException)
    def plain_error(error: HTTPException) -> Response:
        text = f"{error.code} {error.name}\n"
        return Response(text, status=error.code or 500, mimetype="text/plain")

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Language"] = "en"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = CSP
        return response

    return app


def conditional(response: Response) -> Response:
    """An ETag of the body, and a 304 when the client already holds it."""
    response.add_etag()
    response.headers["Cache-Control"] = "no-cache"  # revalidate: a removal shows at once
    response.make_conditional(request)  # in place: a 304 without the body when it matches
    return response


def _record(shown: pages.Shown) -> dict[str, object]:
    return {
        "ref": shown.ref,
        "ring": shown.ring,
        "type": shown.type,
        "text": shown.text,
        "when": None if shown.when is None else shown.when.isoformat(),
        "posted": shown.posted.astimezone(UTC).isoformat(),
        "expires": shown.expires.astimezone(UTC).isoformat(),
        "url": f"/b/{shown.ref}",
    }
