"""Hostile and broken input through a real board node: a clear answer, and nothing changed.

Everything goes through the real meshtastic client over the simulated radio's pty. A reply to a
later command is the barrier: the daemon handles what it hears in order, and the outbox sends
replies in order, so once it arrives everything sent before has been dealt with.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from board.bulletin import Bulletin, new_bulletin
from board.handheld.commands import POST_USAGE
from board.types import TypeRegistry
from board.wire.codec import Announce, TombstoneMsg, encode
from board.wire.keys import KEY_BYTES
from node.cli import cli
from node.link import BOARD_PORT
from node.sim.framing import encode_frame
from node.sim.radio import BROADCAST_NUM
from tests.conftest import HANDHELD, OTHER_HANDHELD, BoardNode

NEIGHBOUR = 0x0B0A4D02
_ids = random.Random(4)


def packet(sender: int, payload: bytes, port: int, *, to: int, packet_id: int = 0) -> bytes:
    """A serialized MeshPacket as a radio would hand it over: any payload, any port."""
    mesh = mesh_pb2.MeshPacket(
        to=to,
        id=packet_id or _ids.getrandbits(32) or 1,
        decoded=mesh_pb2.Data(portnum=port, payload=payload),
    )
    setattr(mesh, "from", sender)
    return mesh.SerializeToString()


def deliver(node: BoardNode, sender: int, payload: bytes, port: int, *, direct: bool) -> None:
    to = node.radio.node_num if direct else BROADCAST_NUM
    node.radio.deliver(mesh_pb2.MeshPacket.FromString(packet(sender, payload, port, to=to)))


HOSTILE_TEXTS: list[tuple[bytes, str]] = [
    (b"post meal " + b"x" * 201, "text is 201 bytes; at most 200"),
    ("post meal Grød ".encode() + b"\xff\xfe med sm\xc3", "text has bytes that are not UTF-8"),
    (b"post meal Soup \x1b[2J\x1b[31mFREE", "text contains control characters"),
    ("post meal Free soup \u202eat the hall".encode(), "text contains control characters"),
    (b"post meal     \t  ", POST_USAGE),
    ("post meal \u200b\u2060\u200b".encode(), "text is empty"),
    (b"post meal 0001-01-01 Soup", "'0001-01-01' has passed"),  # this killed the daemon before
    (b"post meal 2099-12-24 Soup", "'2099-12-24' is more than a year ahead"),
    (b"del #0000", "no bulletin #0000"),
    (b"\x1b]0;pwned\x07", "unknown command '?]0;pwned?'; send help"),
]


def test_hostile_texts_get_a_clear_answer_and_store_nothing(board_node: BoardNode) -> None:
    senders = range(0x1000, 0x1000 + len(HOSTILE_TEXTS))  # one each: not about the rate limit
    for sender in senders:  # their node info (and key) heard: the reply can be PKI-encrypted
        board_node.radio.add_handheld(sender, f"hostile {sender:x}")
    for sender, (text, _) in zip(senders, HOSTILE_TEXTS, strict=True):
        deliver(board_node, sender, text, portnums_pb2.PortNum.TEXT_MESSAGE_APP, direct=True)
    answers = [board_node.radio.wait_for_texts(sender, 1)[0] for sender in senders]
    assert answers == [answer for _, answer in HOSTILE_TEXTS]
    assert board_node.store.count() == 0
    assert "post <type>" in board_node.ask("help")  # still serving


def test_sql_and_shell_looking_texts_are_kept_verbatim_and_harmless(board_node: BoardNode) -> None:
    sql = "'); DROP TABLE bulletin;-- and soup"
    shell = "$(rm -rf /) `reboot` ; echo pwned > /etc/passwd"
    ref = board_node.ask(f"post notice {sql}").split()[1]
    board_node.ask(f"post notice {shell}")
    assert board_node.ask(f"read {ref}", sender=OTHER_HANDHELD).splitlines()[1] == sql
    with sqlite3.connect(board_node.db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    result = CliRunner().invoke(cli, ["list", "--db", str(board_node.db_path), "--json"])
    assert sorted(record["text"] for record in json.loads(result.output)) == [shell, sql]


def _neighbour_bulletin(created: datetime, lifetime: timedelta, text: str) -> Bulletin:
    return Bulletin(
        type="meal",
        text=text,
        author=f"!{NEIGHBOUR:08x}",
        ring=0,
        created_at=created.replace(microsecond=0),
        expires_at=(created + lifetime).replace(microsecond=0),
    )


def test_broken_board_packets_are_counted_logged_and_change_nothing(
    board_node: BoardNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    now = datetime.now(UTC).replace(microsecond=0)
    good = encode(
        Announce.of(
            new_bulletin(
                TypeRegistry(),
                type="meal",
                text="Soup at the hall",
                author=f"!{NEIGHBOUR:08x}",
                ring=0,
                now=now,
            )
        )
    )
    day = timedelta(days=1)
    hostile = [
        bytes([0xB1, 9]),  # unknown message kind
        good[:20],  # truncated
        good + bytes(240 - len(good)),  # oversized
        bytes([0xB2]) + good[1:],  # a board-plane version this board does not speak
        b'{"text": "hello"}',  # another private app
        b"",
        encode(Announce.of(_neighbour_bulletin(now + 3650 * day, day, "From the future"))),
        encode(Announce.of(_neighbour_bulletin(now - 3 * day, day, "Long gone"))),
        encode(TombstoneMsg(bytes(KEY_BYTES), 0, "!a1b2c3d4", None, now, now + 3650 * day)),
        good,
        good,  # replayed
        good,
    ]
    for payload in hostile:
        deliver(board_node, NEIGHBOUR, payload, BOARD_PORT, direct=False)
    board_node.ask("help")  # the barrier: everything above has been handled

    assert [b.text for b in board_node.store.active(now)] == ["Soup at the hall"]
    assert board_node.store.tombstones(0, now) == []
    stats = board_node.daemon.sync_stats
    assert (stats.received, stats.stored, stats.duplicates) == (12, 1, 2)
    assert (stats.dropped_malformed, stats.dropped_foreign) == (3, 3)
    assert (stats.dropped_implausible, stats.dropped_expired) == (2, 1)
    logged = caplog.text
    assert logged.count("dropped a malformed packet from !0b0a4d02") == 3
    assert "refused bulletin" in logged and "beyond anything a board posts today" in logged
    assert "refused tombstone" in logged and "it expired" in logged


def test_a_flooding_handheld_is_limited_while_others_are_served(board_node: BoardNode) -> None:
    radio = board_node.radio
    for i in range(50):
        radio.receive_text(HANDHELD, f"post meal Soup number {i}", direct=True)
        if i == 25:
            radio.receive_text(OTHER_HANDHELD, "list", direct=True)
    bo = radio.wait_for_texts(OTHER_HANDHELD, 1)
    answered = board_node.ask("help", sender=OTHER_HANDHELD)
    radio.wait_until(lambda: board_node.daemon.outbox.replies_waiting == 0)  # the barrier

    ana = radio.texts_to(HANDHELD)
    assert sum(t.startswith("ok #") for t in ana) == 5
    # One token every 10 s; the clock runs on while the first posts are handled, so the wait
    # it names may have ticked down by a second.
    [slow_down] = [t for t in ana if t.startswith("slow down")]
    assert slow_down in ("slow down: try again in 10 s", "slow down: try again in 9 s")
    assert len(ana) == 6  # five answers, one polite refusal, then silence
    assert bo[0].count("Soup number") == 5 and "post <type>" in answered
    # Bo's answer went out right behind Ana's six, not behind fifty.
    order = [t.packet.to for t in radio.transmissions if t.text is not None]
    assert order.index(OTHER_HANDHELD) <= 6
    assert board_node.store.count() == 5


def test_broken_frames_on_the_serial_line_cost_only_themselves(
    board_node: BoardNode, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    radio = board_node.radio
    # The client believes any `my_info` frame; the board keeps the number of its handshake, so
    # a direct message is still direct.
    lie = mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=0x00000001))
    radio.write_raw(encode_frame(lie.SerializeToString()))
    text = portnums_pb2.PortNum.TEXT_MESSAGE_APP
    real = mesh_pb2.MeshPacket.FromString(
        packet(HANDHELD, b"post meal Soup", text, to=1, packet_id=7)
    )
    frame = encode_frame(mesh_pb2.FromRadio(packet=real).SerializeToString())
    radio.write_raw(frame[: len(frame) // 2] + bytes(len(frame) - len(frame) // 2))  # cut short
    radio.write_raw(frame[:4] + bytes(b ^ 0x55 for b in frame[4:]))  # a garbled payload
    radio.write_raw(b"\x94\xc3\x7f\xff" + b"\xff" * 40)  # a length no radio sends
    radio.write_raw(random.Random(1).randbytes(600).replace(b"\x94", b""))  # noise
    assert "post <type>" in board_node.ask("help")
    assert board_node.store.count() == 0
    # One line in the journal for the lot, not two errors and two tracebacks per frame.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" from")[0] for r in warnings] == [
        "dropped 1 undecodable frame(s)"
    ]
    assert "Traceback" not in capfd.readouterr().err
