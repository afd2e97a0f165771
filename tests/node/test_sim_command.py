"""`meshboard sim` as a person uses it: the real `meshtastic` CLI on a handheld's TCP port or
serial path, a DM to a board, and the board's answer; and the TCP bridge on its own.

meshtastic 2.7.11's `--host` takes `HOST:PORT` (its `__main__` splits on the colon and hands
the port to `TCPInterface`), so every CLI call here goes through the bridge as a person's would.
"""

from __future__ import annotations

import json
import logging
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meshtastic.protobuf import mesh_pb2
from meshtastic.tcp_interface import TCPInterface
from pubsub import pub

from node.sim.framing import encode_frame
from node.sim.radio import SimulatedRadio, node_id
from node.sim.tcp_api import TcpBridge

START_TIMEOUT = 60.0  # real seconds for the simulation to print where its radios are
CLI_TIMEOUT = 60.0
REPLY_TIMEOUT = 60.0
#: The head of the board's answer to `help` (board/handheld/commands.py, `_help`).
HELP_HEAD = "DM me, or start with ! on a channel:"


class SimProcess:
    """`meshboard sim ... --json` as a child process (`python -m node`, the code under test)."""

    def __init__(self, log: Path, *args: str) -> None:
        self._log_file = log.open("w")
        self.log_path = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "node", "sim", *args, "--json"],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        self.info = self._read_info()

    def _read_info(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            raise AssertionError(f"meshboard sim printed nothing; log:\n{self.log}")
        info: dict[str, Any] = json.loads(line)
        return info

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log_file.close()


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Any]:
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        sim = SimProcess(tmp_path / f"sim-{len(started)}.log", *args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


def meshtastic(*args: str) -> str:
    """Run the real meshtastic CLI; its output, after checking it succeeded."""
    done = subprocess.run(
        [sys.executable, "-m", "meshtastic", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"meshtastic {args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def my_node_num(info_output: str) -> int:
    """`myNodeNum` from the `My info: {...}` line of `meshtastic --info`."""
    line = next(x for x in info_output.splitlines() if x.startswith("My info: "))
    return int(json.loads(line.removeprefix("My info: "))["myNodeNum"])


def test_the_meshtastic_cli_over_tcp_asks_a_board_for_help(start_sim: Any) -> None:
    sim = start_sim("--boards", "1", "--handhelds", "1")
    (board,) = sim.info["boards"]
    (handheld,) = sim.info["handhelds"]
    assert handheld["near"] == board["name"]
    host = f"{handheld['tcp']['host']}:{handheld['tcp']['port']}"

    info = meshtastic("--host", host, "--info")
    assert node_id(my_node_num(info)) == handheld["node_id"]
    assert f'"{board["node_id"]}"' in info  # the board's radio is in the handheld's node list

    sent = meshtastic("--host", host, "--sendtext", "help", "--dest", board["node_id"])
    assert f"Sending text message help to {board['node_id']}" in sent

    # The CLI has left; the board's answer waits in the handheld radio for its next client,
    # as a phone that reconnects gets what the radio heard meanwhile.
    heard: list[tuple[str, str]] = []
    arrived = threading.Event()

    def on_text(packet: dict[str, Any], interface: Any) -> None:
        heard.append((packet.get("fromId"), packet["decoded"].get("text", "")))
        if packet.get("fromId") == board["node_id"]:
            arrived.set()

    pub.subscribe(on_text, "meshtastic.receive.text")
    client = TCPInterface(handheld["tcp"]["host"], portNumber=handheld["tcp"]["port"])
    try:
        assert arrived.wait(REPLY_TIMEOUT), f"no answer from the board; heard {heard}"
    finally:
        client.close()
        pub.unsubscribe(on_text, "meshtastic.receive.text")
    reply = next(text for sender, text in heard if sender == board["node_id"])
    assert reply.startswith(HELP_HEAD), reply
    assert "post <type> [when] <text>" in reply

    assert sim.stop(signal.SIGINT) == 0, sim.log
    assert "Traceback" not in sim.log, sim.log


def test_the_meshtastic_cli_on_the_serial_path_sees_the_mesh(start_sim: Any) -> None:
    sim = start_sim("--boards", "1", "--handhelds", "1")
    (board,) = sim.info["boards"]
    (handheld,) = sim.info["handhelds"]

    info = meshtastic("--port", handheld["serial"], "--info")
    assert node_id(my_node_num(info)) == handheld["node_id"]
    assert f'"{board["node_id"]}"' in info

    assert sim.stop(signal.SIGTERM) == 0, sim.log


def test_without_boards_the_handhelds_hear_each_other(start_sim: Any) -> None:
    sim = start_sim("--boards", "0", "--handhelds", "2")
    assert sim.info["boards"] == []
    first, second = sim.info["handhelds"]
    assert first["near"] is None
    host = f"{first['tcp']['host']}:{first['tcp']['port']}"
    assert f'"{second["node_id"]}"' in meshtastic("--host", host, "--info")
    assert sim.stop(signal.SIGINT) == 0, sim.log


# -- the TCP bridge on its own ---------------------------------------------------------------


@pytest.fixture
def bridge() -> Iterator[TcpBridge]:
    with SimulatedRadio(0x5B0A0003) as radio, TcpBridge(radio) as served:
        yield served


def test_a_second_client_waits_until_the_first_leaves(
    bridge: TcpBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="node.sim.tcp_api")
    first = TCPInterface(bridge.host, portNumber=bridge.port)
    second: list[TCPInterface] = []
    waiter = threading.Thread(
        target=lambda: second.append(TCPInterface(bridge.host, portNumber=bridge.port))
    )
    try:
        assert first.myInfo is not None and first.myInfo.my_node_num == 0x5B0A0003
        waiter.start()
        time.sleep(1.5)
        assert second == [] and bridge.served == 1
        assert "is already connected over TCP" in caplog.text
        assert "waits until it leaves" in caplog.text
    finally:
        first.close()
    waiter.join(timeout=CLI_TIMEOUT)
    assert len(second) == 1 and bridge.served == 2
    assert second[0].myInfo is not None and second[0].myInfo.my_node_num == 0x5B0A0003
    second[0].close()


def test_closing_the_bridge_drops_its_client_and_its_port_at_once(bridge: TcpBridge) -> None:
    client = socket.create_connection((bridge.host, bridge.port), timeout=5)
    try:
        deadline = time.monotonic() + 5
        while not bridge.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bridge.connected
        started = time.monotonic()
        bridge.close()
        assert time.monotonic() - started < 1.0
        assert client.recv(1) == b""  # the bridge closed its end
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((bridge.host, bridge.port), timeout=5).close()


def test_a_waiting_client_that_gave_up_is_not_served(bridge: TcpBridge) -> None:
    first = TCPInterface(bridge.host, portNumber=bridge.port)
    try:
        waiting = socket.create_connection((bridge.host, bridge.port), timeout=5)
        want_config = mesh_pb2.ToRadio(want_config_id=7).SerializeToString()
        waiting.sendall(encode_frame(want_config))
        waiting.close()
    finally:
        first.close()
    second = TCPInterface(bridge.host, portNumber=bridge.port)
    try:
        assert bridge.served == 2  # the first and this one; the one that left was skipped
        assert bridge.radio.counters.handshakes == 2
    finally:
        second.close()


def test_a_client_reconnects_over_tcp_after_the_radio_rebooted(bridge: TcpBridge) -> None:
    client = TCPInterface(bridge.host, portNumber=bridge.port)
    try:
        bridge.radio.reboot()
        # The bridge closes the connection with the old line; the client connects again (after
        # its 1 s pause) and does its handshake on the new one.
        bridge.radio.wait_handshakes(2, timeout=CLI_TIMEOUT)
        assert bridge.served == 2
    finally:
        client.close()
