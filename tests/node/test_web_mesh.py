"""The web page over a database a real daemon fills through the simulated mesh.

A neighbour posts by radio at one board; the board beside it, whose page a phone reads, has
it on the next request once sync brought it; the poster's `del` removes it from that page.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from board.config import parse_config
from node.demo.neighbourhood import Neighbourhood
from node.web.app import create_app
from tests.node.meshes import answer, board_line, post

TZ = ZoneInfo("UTC")
WEB = parse_config({"ring": [{"name": "public", "channel": 0, "web": True}]})


def test_a_post_by_radio_at_another_board_is_on_the_page_and_its_deletion_is_not(
    hood: Neighbourhood,
) -> None:
    far, near = board_line(hood, 2)
    person = hood.neighbour(far)
    ref = post(person, far, "post meal fri 19:00 Pumpkin soup in the shed")
    bulletin_id = next(iter(hood.holdings(far)))
    hood.wait_until(lambda: bulletin_id in hood.holdings(near), 60)
    page = create_app(near.db_path, WEB, TZ, hood.mesh.clock).test_client()
    week = page.get("/").get_data(as_text=True)
    assert "Pumpkin soup in the shed" in week
    assert page.get(f"/b/{ref.lstrip('#')}").status_code == 200
    reply = answer(person, far, f"del {ref}", accept=lambda heard: "deleted" in heard.text)
    assert reply.startswith("deleted")
    hood.wait_until(lambda: bulletin_id not in hood.holdings(near), 60)
    assert "Pumpkin soup in the shed" not in page.get("/").get_data(as_text=True)
    assert page.get(f"/b/{ref.lstrip('#')}").status_code == 404
