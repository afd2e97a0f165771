"""`meshboard run` with a ring bridged over TLS with a password file, and `meshboard status`.

The real daemon process on a simulated radio reads the broker's password and CA files from
the configuration and connects to a real Mosquitto (TLS listener, password file, a test CA);
`meshboard status` then shows the link, or why it is down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.sim.radio import ChannelSpec, RadioProfile, SimulatedRadio
from tests.node.daemon_process import StartDaemon
from tests.node.mosquitto import Mosquitto, mosquitto_or_skip
from tests.node.test_status import status, status_json

STREET = RadioProfile(channels=(ChannelSpec(), ChannelSpec("street", bytes(range(16)))))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto_or_skip()
    users = {"street-board": "s3cret pass"}
    with Mosquitto(tmp_path / "broker", tls=True, users=users) as running:
        yield running


def bridged_config(tmp_path: Path, broker: Mosquitto, password: str) -> Path:
    (tmp_path / "broker-password").write_text(password + "\n", encoding="utf-8")
    path = tmp_path / "meshboard.toml"
    path.write_text(
        '[[ring]]\nname = "public"\nchannel = 0\n\n'
        '[[ring]]\nname = "street"\nchannel = 1\n'
        f'bridge = "mqtts://localhost:{broker.tls_port}"\n'
        'bridge_username = "street-board"\n'
        'bridge_password_file = "broker-password"\n'  # relative: beside this file
        f'bridge_ca_file = "{broker.ca_file}"\n',
        encoding="utf-8",
    )
    return path


def broker_report(db: Path, config: Path) -> dict[str, Any] | None:
    """The first broker link in `meshboard status --json`, once the daemon has written one."""
    _, report = status_json(db, config)
    brokers = report["daemon"]["brokers"] if report["daemon"] else []
    return brokers[0] if brokers else None


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "status never showed it"
        time.sleep(0.2)


def test_status_shows_the_broker_link_over_tls_with_a_password_file(
    tmp_path: Path, broker: Mosquitto, start_daemon: StartDaemon
) -> None:
    db = tmp_path / "board.db"
    config = bridged_config(tmp_path, broker, "s3cret pass")
    with SimulatedRadio(profile=STREET) as radio:
        daemon = start_daemon(radio.port, db, config)
        daemon.wait_for_log("serving")
        url = f"mqtts://localhost:{broker.tls_port}"
        wait_for(lambda: (r := broker_report(db, config)) is not None and r["bytes_out"] > 0)
        link = broker_report(db, config)
        assert link is not None
        assert (link["url"], link["connected"], link["last_error"]) == (url, True, None)
        code, text = status(db, config=config)
        assert code == 0, text
        assert f"broker:      {url}, connected since " in text
        assert "street-board" in broker.log  # Mosquitto took the password from the file
        assert daemon.stop() == 0


def test_a_wrong_password_is_shown_and_the_board_serves_on(
    tmp_path: Path, broker: Mosquitto, start_daemon: StartDaemon
) -> None:
    db = tmp_path / "board.db"
    config = bridged_config(tmp_path, broker, "not the password")
    with SimulatedRadio(profile=STREET) as radio:
        radio.add_handheld(0x1234ABCD, "Ana")
        daemon = start_daemon(radio.port, db, config)
        daemon.wait_for_log("serving")
        wait_for(lambda: (r := broker_report(db, config)) is not None and r["last_error"])
        link = broker_report(db, config)
        assert link is not None and link["connected"] is False
        assert "Not authorized" in str(link["last_error"])
        _, text = status(db, config=config)
        assert "not connected" in text and "check the username and password" in text
        radio.receive_text(0x1234ABCD, "help")  # the radio's people are served all the same
        radio.wait_for_texts(0x1234ABCD, 1, timeout=30)
        assert json.loads(status(db, "--json", config=config)[1])["serving"] is True
        assert daemon.stop() == 0
