"""A board node end to end: handheld texts in through the real meshtastic client, replies out."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta

from click.testing import CliRunner
from meshtastic.protobuf import mesh_pb2

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
    times = [t.at for t in radio.transmissions if t.text is not None]  # the rule is for texts
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
    texts = [t for t in board_node.radio.transmissions if t.text is not None]
    assert texts and all(len(t.packet.decoded.payload) <= 200 for t in texts)
    assert text in "".join(p.removesuffix(MORE_SUFFIX) for p in pages)


def test_commands_in_quick_succession_each_get_one_reply_under_the_firmware_rules(
    board_node: BoardNode,
) -> None:
    """Through a radio that enforces 2.7.26's client rules (2 s between texts, repeated ids
    ignored, PKI DMs): every reply is shown once, the texts were accepted at least 2 s apart,
    and every reply went on air as a PKI DM on channel 0."""
    radio = board_node.radio
    ref = board_node.ask("post notice Street party sat").split()[1]
    for command in ("help", "list", f"read {ref}", "more"):  # five in all: the fair share
        radio.receive_text(HANDHELD, command)
    replies = radio.wait_for_texts(HANDHELD, 5)
    texts = {t.packet.id for t in radio.transmissions if t.text is not None}

    def on_air() -> list[mesh_pb2.MeshPacket]:
        return [air.packet for air in radio.on_air if air.packet.id in texts]

    radio.wait_until(lambda: len(on_air()) == 5)
    assert len(radio.texts_to(HANDHELD)) == 5  # nothing twice
    assert radio.refused == []  # the radio took every text the board handed it
    accepted = [t.at for t in radio.transmissions if t.text is not None]
    assert min(b - a for a, b in itertools.pairwise(accepted)) >= 2.0
    dms = on_air()
    assert {(p.channel, p.pki_encrypted) for p in dms} == {(0, True)}
    assert replies[1].startswith("DM me") and replies[-1] == "nothing more"


def test_four_handhelds_sending_list_at_once_each_get_their_reply_once(
    board_node: BoardNode,
) -> None:
    radio = board_node.radio
    people = [0x2000 + n for n in range(4)]
    for person in people:
        radio.add_handheld(person, f"neighbour {person:x}")
    for person in people:
        radio.receive_text(person, "list")
    for person in people:
        assert radio.wait_for_texts(person, 1) == ["no bulletins"]
    radio.wait_until(lambda: len(radio.transmissions) >= 4)
    assert [len(radio.texts_to(person)) for person in people] == [1, 1, 1, 1]
    assert radio.refused == []
