"""What a bridge does with a configuration it cannot use: it says why in the log and joins
nothing, and the board goes on serving its radio (no broker is needed to see that)."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from board.config import MeshboardConfig, parse_config
from board.store.bulletins import Store
from board.sync.engine import SyncConfig, SyncEngine
from node.bridge.bridge import Bridge, BrokerPacket
from node.link import ChannelKey

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CHANNELS = (ChannelKey(0, "LongFast", b"\x01", primary=True),)


def bridge_of(config: MeshboardConfig, tmp_path: Path) -> tuple[Bridge, list[BrokerPacket]]:
    store = Store.open(tmp_path / "board.db")
    queued: list[BrokerPacket] = []

    def engine(rings: frozenset[int], timing: SyncConfig) -> SyncEngine:
        return SyncEngine(store, SyncConfig(rings=rings), random.Random(1))

    return Bridge(config.bridged, engine, queued.append), queued


def config(tmp_path: Path, **ring: object) -> MeshboardConfig:
    table = {"name": "public", "channel": 0, "bridge": "mqtts://127.0.0.1:1", **ring}
    return parse_config({"ring": [table]}, source=tmp_path / "meshboard.toml")


@pytest.mark.parametrize(
    ("ring", "files", "says"),
    [
        ({"bridge_ca_file": "ca.pem"}, {"ca.pem": "not a certificate"}, "cannot use the CA file"),
        ({"bridge_ca_file": "missing.pem"}, {}, "is not there"),
        (
            {"bridge_username": "board", "bridge_password_file": "missing"},
            {},
            "cannot read the password file",
        ),
    ],
)
def test_a_broker_that_cannot_be_set_up_is_logged_and_not_joined(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    ring: dict[str, object],
    files: dict[str, str],
    says: str,
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    bridge, _ = bridge_of(config(tmp_path, **ring), tmp_path)
    with caplog.at_level(logging.ERROR, logger="node.bridge.bridge"):
        bridge.start("!0000abcd", CHANNELS, NOW)
    assert not bridge.started and bridge.statuses() == []
    assert any(says in record.getMessage() for record in caplog.records)


def test_a_ring_whose_channel_the_radio_lacks_or_leaves_unkeyed_is_never_bridged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, _ = bridge_of(config(tmp_path, channel=0), tmp_path)
    with caplog.at_level(logging.ERROR, logger="node.bridge.bridge"):
        bridge.start("!0000abcd", (), NOW)  # the radio has no channel 0 configured
        bridge.start("!0000abcd", (ChannelKey(0, "LongFast", b"\x00", primary=True),), NOW)
    assert not bridge.started
    messages = [record.getMessage() for record in caplog.records]
    assert any("the radio has no channel 0" in m for m in messages)
    assert any("cannot be bridged" in m for m in messages)  # no key: never in the clear
