"""A board node end to end: handheld texts in through the real meshtastic client, replies out."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta

from click.testing import CliRunner

from board.handheld.paging import MORE_SUFFIX
from node.cli import cli
from node.sim.radio import BROADCAST_NUM
from tests.conftest import BOARD_TZ, HANDHELD, OTHER_HANDHELD, BoardNode


def next_weekday_at(weekday: int, hour: int) -> datetime:
    now = datetime.now(BOARD_TZ)
    days = (weekday - now.weekday()) % 7
    candidate = (now + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=7)


def test_post_then_list_then_cli_shows_the_event_time(board_node: BoardNode) -> None:
    reply = board_node.ask("post meal tue 18:00 Soup at the hall")
    assert reply.startswith("ok #")
    ref = reply.split()[1].removeprefix("#")

    listing = board_node.ask("list meal")
    assert listing.startswith(f"#{ref}")
    assert "Soup at the hall" in listing

    result = CliRunner().invoke(cli, ["list", "--db", str(board_node.db_path), "--json"])
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.output)
    assert record["ref"] == ref
    assert record["text"] == "Soup at the hall"
    assert record["author"] == f"!{HANDHELD:08x}"
    assert datetime.fromisoformat(record["event_time"]) == next_weekday_at(1, 18)


def test_replies_are_direct_messages_on_the_channel_the_command_came_in_on(
    board_node: BoardNode,
) -> None:
    board_node.ask("help", channel=2)
    [reply] = [t.packet for t in board_node.radio.transmissions]
    assert reply.to == HANDHELD
    assert reply.channel == 2
    assert reply.want_ack


def test_shared_channel_needs_the_prefix(board_node: BoardNode) -> None:
    radio = board_node.radio
    radio.receive_text(HANDHELD, "list", direct=False)  # chatter on the channel: ignored
    radio.receive_text(HANDHELD, "!list", direct=False)
    replies = radio.wait_for_texts(HANDHELD, 1)
    board_node.ask("help")  # anything the first message caused would have come before this
    assert replies[0] == "no bulletins"
    assert len(radio.texts_to(HANDHELD)) == 2
    assert all(t.packet.to != BROADCAST_NUM for t in radio.transmissions)


def test_bulletins_stay_in_the_ring_they_were_posted_on(board_node: BoardNode) -> None:
    board_node.ask("post tool Ladder to lend", channel=1)
    assert "Ladder" in board_node.ask("list", channel=1)
    assert board_node.ask("list", channel=0) == "no bulletins"


def test_only_the_author_can_delete(board_node: BoardNode) -> None:
    ref = board_node.ask("post skill Bike repair sat 10:00").split()[1]
    refusal = board_node.ask(f"del {ref}", sender=OTHER_HANDHELD)
    assert refusal == f"only the author can delete {ref}"
    assert board_node.ask(f"del {ref}") == f"deleted {ref}"
    assert board_node.ask("list") == "no bulletins"


def test_replies_are_paced_at_least_the_configured_interval_apart(board_node: BoardNode) -> None:
    radio = board_node.radio
    for _ in range(3):
        radio.receive_text(HANDHELD, "help", direct=True)
    radio.wait_for_texts(HANDHELD, 3)
    times = [t.at for t in radio.transmissions]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= board_node.daemon.outbox_interval * 0.95


def test_garbage_on_the_serial_line_does_not_stop_the_board(board_node: BoardNode) -> None:
    board_node.radio.write_raw(b"\x00\xff boot noise \x94\xc3\x00\x03\xff\xff\xff")
    assert "post <type>" in board_node.ask("help")


def test_a_long_bulletin_arrives_in_packets_of_at_most_200_bytes(board_node: BoardNode) -> None:
    text = "Grød med smør 🍲 und Käse für alle, 土曜日 " * 4
    text = text.encode()[:180].decode("utf-8", errors="ignore").strip()
    ref = board_node.ask(f"post food {text}").split()[1]
    pages = [board_node.ask(f"read {ref}")]
    while pages[-1].endswith(MORE_SUFFIX):
        pages.append(board_node.ask("more"))
    assert len(pages) > 1
    assert all(len(t.packet.decoded.payload) <= 200 for t in board_node.radio.transmissions)
    assert text in "".join(p.removesuffix(MORE_SUFFIX) for p in pages)
