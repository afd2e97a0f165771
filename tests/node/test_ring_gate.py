"""A board answers only on the rings it serves, and always on the channel a command came on.

The `board_node` fixture serves channels 0-2 (tests/conftest.py); channel 3 is nobody's ring here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from tests.conftest import HANDHELD, BoardNode

UNSERVED = 3


def test_a_command_on_an_unserved_channel_gets_no_reply_and_stores_nothing(
    board_node: BoardNode, caplog: pytest.LogCaptureFixture
) -> None:
    radio = board_node.radio
    with caplog.at_level(logging.INFO, logger="board.rings"):
        # A ring is reached by a `!` command on its channel (a DM is always the public ring's).
        radio.receive_text(
            HANDHELD, "!post meal Soup on a ring we do not serve", channel=UNSERVED, direct=False
        )
        radio.receive_text(HANDHELD, "!list", channel=UNSERVED, direct=False)
        # Replies leave in order, so anything the two above caused would come before this one.
        assert board_node.ask("list", channel=0) == "no bulletins"
    assert [t.packet.channel for t in radio.transmissions if t.packet.to == HANDHELD] == [0]
    assert board_node.store.count() == 0
    ignored = [r for r in caplog.records if "does not serve" in r.getMessage()]
    assert [r.getMessage() for r in ignored] == [
        "ignoring commands on channel 3 (ring 3): this board does not serve it"
    ]


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_replies_leave_on_the_channel_the_command_came_on(
    board_node: BoardNode, channel: int
) -> None:
    reply = board_node.ask("post tool Ladder", channel=channel)
    assert reply.startswith("ok #")
    sent = board_node.radio.transmissions
    assert [t.packet.channel for t in sent if t.packet.to == HANDHELD] == [channel]
    carrying = {t.packet.channel for t in sent if b"Ladder" in t.packet.decoded.payload}
    assert carrying == {channel}  # the reply and the sync announce
    [bulletin] = board_node.store.active(datetime.now(UTC))
    assert bulletin.ring == channel
