"""The board's connection to an MQTT broker, kept up for months like the radio's.

`BrokerLink` wraps paho-mqtt's client, which does the MQTT framing, keep-alive and reconnects
on a network thread of its own; this module decides how it is used and reports how it fares.

MQTT 5, not 3.1.1: a subscription with `no_local` stops the broker echoing our own publishes
back, which would otherwise double what a metered uplink downloads (callers need not drop
echoes; a payload's sender id would still let them), and a session expiry lets the broker
forget a board that is gone for good, where a 3.1.1 persistent session lasts until the broker's
operator expires it. Mosquitto has spoken MQTT 5 since 1.6 (2019), as have the hosted brokers.

QoS 1, never 2, never retained. Every packet of the sync carries content ids, so a duplicate
that at-least-once delivery lets through is harmless: the receiver already has it. QoS 2's
exactly-once costs two more round trips per message for nothing. A retained message would pin
one stale packet per topic for every board that subscribes later; the sync's digests already
find and repair what a board missed.

A persistent session: the same client id, clean_start=False and a session expiry, so the broker
keeps our subscriptions and queues the QoS 1 messages published to our topics while we are
away (a broken uplink, a daemon restart) and delivers them when we return. Two boards must
therefore never share a client id: each would take the session over from the other, in turn.
What we publish while the broker is away waits in paho's queue, in memory, up to MAX_QUEUED
messages; beyond that it is dropped and counted, and the digests repair it later.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from node.clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger(__name__)

QOS = 1
#: Seconds the broker keeps our session (subscriptions and queued messages) while we are away:
#: a board offline for a week catches up from the digests instead.
SESSION_EXPIRY = 7 * 24 * 3600
#: Our publishes that paho holds (in flight, or waiting for the broker): a few hours of a busy
#: board's sync traffic, and at most a few hundred kB of memory.
MAX_QUEUED = 1000
#: Reconnect backoff in seconds, doubling from the first to the cap (paho's own schedule).
FIRST_DELAY = 1
MAX_DELAY = 60
KEEPALIVE = 60
#: Seconds for TCP and TLS to connect: a slow mobile uplink needs more than paho's 5.
CONNECT_TIMEOUT = 10.0
#: Seconds `stop` waits for paho's thread before it leaves it behind (it is a daemon thread).
STOP_TIMEOUT = 5.0

MessageHandler = Callable[[str, bytes], None]

# MQTT 5 CONNACK reason codes that mean the broker does not accept our credentials.
_BAD_CREDENTIALS = (0x86, 0x87)  # Bad user name or password; Not authorized
_SESSION_TAKEN_OVER = 0x8E


@dataclass(frozen=True)
class BrokerStatus:
    """How the broker connection fares, for the status command. Replaced whole on each change."""

    url: str  # mqtt://host:port or mqtts://host:port
    connected: bool = False
    connected_since: datetime | None = None  # None while disconnected
    #: The broker granted every subscription of this connection: from now on nothing
    #: published to our topics is lost (while disconnected, our session keeps it).
    subscribed: bool = False
    last_message_at: datetime | None = None  # the last message received
    bytes_in: int = 0  # payload bytes only
    bytes_out: int = 0  # handed to paho: sent, or queued until the broker is back
    messages_in: int = 0
    messages_out: int = 0
    dropped_queue_full: int = 0
    #: Why we are not connected, or why the broker refused a subscription; None once connected.
    last_error: str | None = None
    reconnects: int = 0  # connections after the first one


class BrokerLink:
    """One broker connection: subscribes to `topics`, publishes, reconnects by itself.

    `on_message(topic, payload)` runs on paho's network thread, so it must only hand the
    message on (enqueue); while it runs, no other message is read. Every method is safe to
    call from any thread.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: bool,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        topics: Sequence[str],
        on_message: MessageHandler,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not host:
            raise ValueError("the broker's host is empty")
        if not client_id:
            raise ValueError("a persistent session needs a client id")
        if password is not None and username is None:
            raise ValueError("a broker password needs a username")
        if ca_file is not None and not tls:
            raise ValueError("a CA file is only used with TLS")
        self._host = host
        self._port = port
        self._tls = tls
        self._topics = tuple(topics)
        self._on_message = on_message
        self._clock = clock
        self._lock = threading.Lock()
        name = f"[{host}]" if ":" in host else host
        self.url = f"{'mqtts' if tls else 'mqtt'}://{name}:{port}"
        self._status = BrokerStatus(url=self.url)
        self._started = False
        self._stopping = False
        self._attempt_failed = False  # the current connection attempt has been reported
        self._logged: str | None = None  # the trouble last logged in this outage
        self._dropping = False  # the queue was full at the last publish
        self._ever_connected = False

        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.connect_timeout = CONNECT_TIMEOUT
        client.reconnect_delay_set(min_delay=FIRST_DELAY, max_delay=MAX_DELAY)
        client.max_queued_messages_set(MAX_QUEUED)
        if username is not None:
            client.username_pw_set(username, password)
        if tls:
            client.tls_set_context(_tls_context(ca_file))
        client.on_pre_connect = self._pre_connect
        client.on_connect = self._connected
        client.on_connect_fail = self._connect_failed
        client.on_disconnect = self._disconnected
        client.on_subscribe = self._subscribed
        client.on_message = self._received
        self._client = client

    def status(self) -> BrokerStatus:
        with self._lock:
            return self._status

    def start(self) -> None:
        """Connect in the background: returns at once, whether or not the broker is there."""
        with self._lock:
            if self._started:
                raise RuntimeError("a BrokerLink starts once")
            self._started = True
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
        properties.SessionExpiryInterval = SESSION_EXPIRY
        # clean_start=False on every connect, the first too: a daemon restart must not throw
        # away the messages the broker kept for us.
        self._client.connect_async(
            self._host, self._port, KEEPALIVE, clean_start=False, properties=properties
        )
        logger.info("connecting to the MQTT broker %s", self.url)
        self._client.loop_start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Disconnect (the broker keeps our session) and end paho's thread, in bounded time.

        Within a second or so, even in a backoff (paho sleeps in steps of a second); up to
        `timeout` during a connect to a host that does not answer. Our publishes the broker has
        not acknowledged yet are lost; the digests repair them.
        """
        with self._lock:
            self._stopping = True
            started = self._started
        if started:
            self._client.disconnect()
            # loop_stop joins paho's thread without a timeout, and that thread may be inside
            # a TCP or TLS connect for up to CONNECT_TIMEOUT.
            stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
            stopper.start()
            stopper.join(timeout)
            if stopper.is_alive():
                logger.warning("the MQTT client's thread did not end within %.0f s", timeout)
        with self._lock:
            self._status = replace(
                self._status, connected=False, connected_since=None, subscribed=False
            )

    def publish(self, topic: str, payload: bytes) -> bool:
        """Send `payload` at least once, now or once the broker is back; False if dropped.

        A message is dropped only when MAX_QUEUED are already waiting for the broker.
        """
        info = self._client.publish(topic, payload, qos=QOS, retain=False)
        dropped = info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
        with self._lock:
            if dropped:
                self._status = replace(
                    self._status, dropped_queue_full=self._status.dropped_queue_full + 1
                )
            else:
                self._status = replace(
                    self._status,
                    messages_out=self._status.messages_out + 1,
                    bytes_out=self._status.bytes_out + len(payload),
                )
            began_dropping = dropped and not self._dropping
            self._dropping = dropped
        if began_dropping:
            logger.warning(
                "%d messages wait for the MQTT broker %s: dropping new ones until they drain",
                MAX_QUEUED,
                self.url,
            )
        return not dropped

    # paho's callbacks, on its network thread. An exception escaping one would end that
    # thread (paho re-raises), and with it the link: each catches everything.

    def _pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        with self._lock:
            self._attempt_failed = False

    def _connected(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                why = f"the broker refused the connection: {reason}"
                if reason.value in _BAD_CREDENTIALS:
                    why += " (check the username and password)"
                self._trouble(why)
                return
            with self._lock:
                stopping = self._stopping
                if not stopping:
                    self._status = replace(
                        self._status,
                        connected=True,
                        connected_since=self._clock.now(),
                        subscribed=not self._topics,
                        last_error=None,
                        reconnects=self._status.reconnects + (1 if self._ever_connected else 0),
                    )
                    self._ever_connected = True
                    self._logged = None
            if stopping:
                # stop() came while this connect was under way: end it cleanly, as asked.
                client.disconnect()
                return
            if self._topics:
                # Every time: a broker that lost its state (no persistence) lost our
                # subscriptions too, and subscribing again to what it kept changes nothing.
                options = SubscribeOptions(qos=QOS, noLocal=True)
                client.subscribe([(topic, options) for topic in self._topics])
            session = "resumed" if flags.session_present else "new"
            logger.info("connected to the MQTT broker %s (%s session)", self.url, session)
        except Exception:
            logger.exception("MQTT on_connect failed")

    def _connect_failed(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` for the connect, which is how we learn
        # why: the callback itself is not told.
        try:
            self._trouble(_why_not_connected(sys.exc_info()[1], self._host, self._port, self._tls))
        except Exception:
            logger.exception("MQTT on_connect_fail failed")

    def _disconnected(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            with self._lock:
                stopping = self._stopping
                was_connected = self._status.connected
                reported = self._attempt_failed
            if stopping:
                logger.info("disconnected from the MQTT broker %s", self.url)
                return
            if not was_connected and reported:
                return  # refused at CONNACK: on_connect said why
            if flags.is_disconnect_packet_from_server:
                why = f"the broker disconnected us: {reason}"
                if reason.value == _SESSION_TAKEN_OVER:
                    why += " (does another client use our client id?)"
            elif str(reason) == "Keep alive timeout":
                why = "the broker stopped answering (keep-alive timeout)"
            elif not was_connected:
                why = "the connection closed before the broker answered (a TLS port, without TLS?)"
            else:
                why = "the connection was lost"
            self._trouble(why)
        except Exception:
            logger.exception("MQTT on_disconnect failed")

    def _subscribed(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        try:
            refused = [
                f"{topic} ({reason})"
                for topic, reason in zip(self._topics, reasons, strict=False)
                if reason.is_failure
            ]
            why = "the broker refused the subscription to " + ", ".join(refused)
            with self._lock:
                if refused:
                    self._status = replace(self._status, last_error=why)
                else:
                    self._status = replace(self._status, subscribed=True)
            if refused:
                logger.error("MQTT broker %s: %s", self.url, why)
        except Exception:
            logger.exception("MQTT on_subscribe failed")

    def _received(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload = bytes(message.payload)
            with self._lock:
                if self._stopping:
                    return
                self._status = replace(
                    self._status,
                    last_message_at=self._clock.now(),
                    messages_in=self._status.messages_in + 1,
                    bytes_in=self._status.bytes_in + len(payload),
                )
            self._on_message(message.topic, payload)
        except Exception:
            logger.exception("handling an MQTT message failed")

    def _trouble(self, why: str) -> None:
        """Record why we are not connected; log it once per outage, and again if it changes."""
        with self._lock:
            if self._stopping:
                return
            self._attempt_failed = True
            self._status = replace(
                self._status,
                connected=False,
                connected_since=None,
                subscribed=False,
                last_error=why,
            )
            repeated = why == self._logged
            self._logged = why
        if repeated:
            logger.debug("MQTT broker %s: %s", self.url, why)
        else:
            logger.warning(
                "MQTT broker %s: %s; retrying, at most %d s apart",
                self.url,
                why,
                MAX_DELAY,
            )


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates checked against `ca_file`, or the system's CAs, and the host name checked.

    A missing or unreadable CA file raises here: a mistake in the configuration.
    """
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    # paho leaves the socket of a failed handshake unclosed (until the garbage collector finds
    # it), once per attempt while a certificate is refused.
    context.sslsocket_class = _ClosingSSLSocket
    return context


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its TLS handshake fails."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _why_not_connected(error: BaseException | None, host: str, port: int, tls: bool) -> str:
    """A connect failure as an operator can act on it."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        hint = " (is it a TLS port?)" if error.reason == "WRONG_VERSION_NUMBER" else ""
        return f"TLS failed: {error.reason or error}{hint}"
    if isinstance(error, ConnectionResetError) and tls:
        return "the broker reset the connection (is it a TLS port?)"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused (is a broker listening on {host}:{port}?)"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve {host}: {error.strerror}"
    if isinstance(error, TimeoutError):
        return f"no answer from {host}:{port} within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(error, OSError):
        return error.strerror or str(error) or type(error).__name__
    return "could not connect"
