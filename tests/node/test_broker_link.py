"""BrokerLink against a real Mosquitto with the real paho client: delivery, TLS, passwords,
a broker that goes away and comes back, and a board that goes away and comes back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.bridge.broker import MAX_QUEUED, BrokerLink, BrokerStatus
from tests.node.mosquitto import CertificateAuthority, Mosquitto, free_ports, mosquitto_or_skip

TOPIC = "meshboard/test/ring/0"
WAIT = 15.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


class Inbox:
    """What a link's on_message was given, on paho's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self._messages.append((topic, payload))

    @property
    def payloads(self) -> list[bytes]:
        with self._lock:
            return [payload for _, payload in self._messages]

    def wait_for(self, *payloads: bytes) -> None:
        wait_until(lambda: set(payloads) <= set(self.payloads), f"{payloads} to arrive")


MakeLink = Callable[..., tuple[BrokerLink, Inbox]]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A plain and a TLS listener, anonymous clients welcome."""
    mosquitto_or_skip()
    with Mosquitto(tmp_path / "broker", tls=True) as running:
        yield running


@pytest.fixture
def make_link() -> Iterator[MakeLink]:
    """Start BrokerLinks (plain, to 127.0.0.1, unless told); every one is stopped at the end."""
    links: list[BrokerLink] = []

    def make(client_id: str, port: int, **options: object) -> tuple[BrokerLink, Inbox]:
        inbox = Inbox()
        settings: dict[str, object] = {"host": "127.0.0.1", "tls": False, "topics": [TOPIC]}
        settings["on_message"] = inbox
        settings.update(options)
        link = BrokerLink(client_id=client_id, port=port, **settings)  # type: ignore[arg-type]
        links.append(link)
        link.start()
        return link, inbox

    yield make
    for link in links:
        link.stop()


def ready(link: BrokerLink) -> Callable[[], bool]:
    return lambda: link.status().connected and link.status().subscribed


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "node.bridge.broker"
        and r.levelno >= logging.WARNING
        and text in r.getMessage()
    ]


def test_a_message_one_link_publishes_reaches_the_other_and_both_count_it(
    broker: Mosquitto, make_link: MakeLink
) -> None:
    alice, alice_inbox = make_link("board-alice", broker.port)
    bob, bob_inbox = make_link("board-bob", broker.port)
    wait_until(ready(alice), "alice to subscribe")
    wait_until(ready(bob), "bob to subscribe")

    assert alice.publish(TOPIC, b"hello") is True
    bob_inbox.wait_for(b"hello")
    assert bob.publish(TOPIC, b"hi alice!") is True
    alice_inbox.wait_for(b"hi alice!")

    # no_local: the broker did not echo alice's own message back to her, which it would have
    # queued before bob's answer.
    assert alice_inbox.payloads == [b"hi alice!"]
    assert bob_inbox.payloads == [b"hello"]
    sent, heard = alice.status(), bob.status()
    assert (sent.messages_out, sent.bytes_out, sent.messages_in, sent.bytes_in) == (1, 5, 1, 9)
    assert (heard.messages_out, heard.bytes_out, heard.messages_in, heard.bytes_in) == (1, 9, 1, 5)
    assert heard.last_message_at is not None
    assert datetime.now(UTC) - heard.last_message_at < timedelta(seconds=WAIT)
    assert sent.url == f"mqtt://127.0.0.1:{broker.port}"
    assert sent.connected_since is not None
    assert (sent.last_error, sent.reconnects, sent.dropped_queue_full) == (None, 0, 0)


def test_a_handler_that_raises_does_not_end_the_link(
    broker: Mosquitto, make_link: MakeLink, caplog: pytest.LogCaptureFixture
) -> None:
    alice, _ = make_link("board-alice", broker.port)
    bob_inbox = Inbox()

    def clumsy(topic: str, payload: bytes) -> None:
        if payload == b"boom":
            raise RuntimeError("the handler fell over")
        bob_inbox(topic, payload)

    bob, _ = make_link("board-bob", broker.port, on_message=clumsy)
    wait_until(ready(alice), "alice to subscribe")
    wait_until(ready(bob), "bob to subscribe")
    alice.publish(TOPIC, b"boom")
    alice.publish(TOPIC, b"after the boom")
    bob_inbox.wait_for(b"after the boom")
    assert bob.status().connected
    assert "handling an MQTT message failed" in caplog.text


def test_tls_with_the_test_ca_connects_by_name_and_by_address(
    broker: Mosquitto, make_link: MakeLink
) -> None:
    by_name, _ = make_link(
        "board-tls", broker.tls_port, host="localhost", tls=True, ca_file=broker.ca_file
    )
    by_address, _ = make_link(
        "board-tls-ip", broker.tls_port, host="127.0.0.1", tls=True, ca_file=broker.ca_file
    )
    plain, plain_inbox = make_link("board-plain", broker.port)
    wait_until(ready(by_name), "the TLS link to subscribe")
    wait_until(ready(by_address), "the TLS link by address to subscribe")
    wait_until(ready(plain), "the plain link to subscribe")
    assert by_name.status().url == f"mqtts://localhost:{broker.tls_port}"
    by_name.publish(TOPIC, b"over TLS")
    plain_inbox.wait_for(b"over TLS")


def test_tls_with_a_ca_that_did_not_sign_the_broker_never_connects_and_says_why(
    broker: Mosquitto, make_link: MakeLink, tmp_path: Path
) -> None:
    stranger = CertificateAuthority.make("Some other CA").write(tmp_path / "other-ca.pem")
    link, _ = make_link("board-tls", broker.tls_port, host="localhost", tls=True, ca_file=stranger)
    wait_until(lambda: link.status().last_error is not None, "the TLS failure")
    status = link.status()
    assert not status.connected
    assert status.last_error is not None
    assert status.last_error.startswith("TLS: the broker's certificate is not trusted (")


def test_a_wrong_password_is_refused_clearly_logged_once_and_retried(
    tmp_path: Path, make_link: MakeLink, caplog: pytest.LogCaptureFixture
) -> None:
    mosquitto_or_skip()
    caplog.set_level(logging.INFO, logger="node.bridge.broker")
    with Mosquitto(tmp_path / "broker", users={"board": "right horse"}) as broker:
        good, _ = make_link("board-good", broker.port, username="board", password="right horse")
        bad, _ = make_link("board-bad", broker.port, username="board", password="wrong horse")
        wait_until(ready(good), "the right password to be accepted")
        wait_until(lambda: bad.status().last_error is not None, "the wrong one to be refused")
        # Paho tries again after 1 s, then 2 s...: the broker refuses each attempt.
        wait_until(lambda: broker.log.count("not authorised") >= 2, "a second attempt")

        status = bad.status()
        assert not status.connected
        assert status.last_error == (
            "the broker refused the connection: Not authorized (check the username and password)"
        )
        assert len(warnings_about(caplog, "Not authorized")) == 1


def test_links_reconnect_after_a_broker_restart_and_what_was_published_meanwhile_arrives(
    broker: Mosquitto, make_link: MakeLink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="node.bridge.broker")
    alice, _ = make_link("board-alice", broker.port)
    bob, bob_inbox = make_link("board-bob", broker.port)
    wait_until(ready(alice), "alice to subscribe")
    wait_until(ready(bob), "bob to subscribe")

    broker.stop()
    wait_until(lambda: not alice.status().connected, "alice to notice")
    for n in range(3):
        assert alice.publish(TOPIC, f"while the broker is away {n}".encode())
    broker.start()

    bob_inbox.wait_for(*(f"while the broker is away {n}".encode() for n in range(3)))
    wait_until(ready(alice), "alice to be back")
    wait_until(ready(bob), "bob to be back")
    assert (alice.status().reconnects, bob.status().reconnects) == (1, 1)
    assert alice.status().last_error is None
    # Mosquitto 2.0 closes the connections without a DISCONNECT as it stops.
    assert len(warnings_about(caplog, "the connection was lost")) == 2  # once each


def test_a_board_that_was_away_gets_what_was_published_to_it_even_over_a_broker_restart(
    broker: Mosquitto, make_link: MakeLink
) -> None:
    alice, _ = make_link("board-alice", broker.port)
    bob, _ = make_link("board-bob", broker.port)
    wait_until(ready(alice), "alice to subscribe")
    wait_until(ready(bob), "bob to subscribe")
    bob.stop()

    alice.publish(TOPIC, b"while bob is away")
    # The broker has it (and queued it for bob's session) once it acknowledges it.
    wait_until(lambda: "Sending PUBACK to board-alice" in broker.log, "the broker to take it")
    broker.restart()  # the queued message survives in the broker's persistence file

    back, inbox = make_link("board-bob", broker.port)
    inbox.wait_for(b"while bob is away")
    assert back.status().messages_in == 1


def test_start_and_stop_return_promptly_when_no_broker_is_there(
    make_link: MakeLink, caplog: pytest.LogCaptureFixture
) -> None:
    (nobody,) = free_ports(1)
    began = time.monotonic()
    link, _ = make_link("board-alone", nobody)
    assert time.monotonic() - began < 0.5
    wait_until(lambda: link.status().last_error is not None, "the connect to fail")
    status: BrokerStatus = link.status()
    assert status.last_error == f"connection refused (is a broker listening on 127.0.0.1:{nobody}?)"

    began = time.monotonic()
    link.stop()
    assert time.monotonic() - began < 2.0
    assert not link.status().connected


def test_beyond_the_queue_bound_publishes_are_dropped_counted_and_logged_once(
    make_link: MakeLink, caplog: pytest.LogCaptureFixture
) -> None:
    (nobody,) = free_ports(1)
    link, _ = make_link("board-alone", nobody)
    accepted = [link.publish(TOPIC, b"x" * 10) for _ in range(MAX_QUEUED + 5)]
    assert accepted == [True] * MAX_QUEUED + [False] * 5
    status = link.status()
    assert (status.messages_out, status.bytes_out) == (MAX_QUEUED, 10 * MAX_QUEUED)
    assert status.dropped_queue_full == 5
    assert len(warnings_about(caplog, "dropping new ones")) == 1
