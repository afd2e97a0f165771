"""The board's bridged rings on MQTT brokers: the broker is one more neighbour for sync.

A second `SyncEngine`, over the board's own store, speaks the board plane on each bridged
ring's topic, `meshboard/<ring id>/sync`, with everything sealed (board/wire/envelope.py). The
two engines never pass packets to each other, only items through the store: what one stores,
the daemon tells the other (`SyncEngine.reread`), which announces it on its own plane as news.
So a bulletin from the broker enters the mesh as a neighbour's would, through the outbox and
its airtime budget; a digest from the broker never reaches the air, nor one from the air the
broker; and since items are known by content id, a loop between planes costs nothing.

On a broker every board hears every packet, reliably (QoS 1), so the broker's engine relays
nothing and audits nothing (`SyncConfig.relay`); its Trickle digests, at shorter intervals than
the air's (a broker packet costs no airtime), repair what an outage lost.

The ring id and key come from the radio's channel (its name and key, as the firmware uses
them), so the bridge starts once the radio has told the board its channels, and keeps going
while the radio is away. The daemon owns it and calls it on the daemon's thread only; paho's
thread only enqueues what arrives (`BrokerPacket`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from board.config import BridgeSpec, RingSpec
from board.errors import BoardError
from board.sync.engine import SyncConfig, SyncEngine
from board.wire.envelope import RingSecrets, SealError, open_sealed, seal
from node.bridge.broker import BrokerLink, BrokerStatus
from node.link import ChannelKey

logger = logging.getLogger(__name__)

#: The broker's sync timing: digests from 10 s to 15 min apart (a quiet broker hears about
#: four per board an hour), news compared within a minute, announces of what the air brought
#: spread over 2 s. Nothing is relayed there (see the module's docstring).
BROKER_SYNC = SyncConfig(relay=False, imin=10.0, imax=900.0, relay_window=2.0, news_check=60.0)
TOPIC_ROOT = "meshboard"


def topic_of(secrets: RingSecrets) -> str:
    return f"{TOPIC_ROOT}/{secrets.ring_id}/sync"


@dataclass(frozen=True)
class BrokerPacket:
    """A message from a broker, as paho's thread hands it to the daemon's queue."""

    topic: str
    payload: bytes


@dataclass
class BridgeCounts:
    refused: int = 0  # payloads that did not open under the ring's key: dropped
    unknown_topic: int = 0  # a message on a topic we never subscribed to


class BridgeError(BoardError):
    """A bridged ring cannot be joined as configured; the message says why."""


EngineFactory = Callable[[frozenset[int], SyncConfig], SyncEngine]
Enqueue = Callable[[BrokerPacket], None]
LinkFactory = Callable[..., BrokerLink]


class Bridge:
    """The bridged rings of one board: their broker links and the broker's sync engine."""

    def __init__(
        self,
        rings: Sequence[RingSpec],
        make_engine: EngineFactory,
        enqueue: Enqueue,
        *,
        make_link: LinkFactory = BrokerLink,
    ) -> None:
        self._rings = tuple(spec for spec in rings if spec.bridge is not None)
        self._make_engine = make_engine
        self._enqueue = enqueue
        self._make_link = make_link
        self.engine: SyncEngine | None = None
        self.counts = BridgeCounts()
        self._node_id = ""
        self._secrets: dict[int, RingSecrets] = {}  # channel -> its secrets
        self._by_topic: dict[str, int] = {}  # topic -> channel
        self._links: dict[BridgeSpec, BrokerLink] = {}
        self._link_of: dict[int, BrokerLink] = {}  # channel -> its broker's link
        self._refusing = False  # logged the first refused payload of a stretch

    @property
    def started(self) -> bool:
        return self.engine is not None

    def start(self, node_id: str, channels: Iterable[ChannelKey], now: datetime) -> None:
        """Join the bridged rings, with keys from the radio's `channels`; again only if the
        radio (or its keys) changed. A ring that cannot be joined is logged and left out."""
        secrets = self._derive(channels)
        if self.started and node_id == self._node_id and secrets == self._secrets:
            return
        self.stop()
        self._node_id, self._secrets = node_id, secrets
        self._by_topic = {topic_of(s): channel for channel, s in secrets.items()}
        by_broker: dict[BridgeSpec, list[int]] = {}
        for spec in self._rings:
            if spec.channel in secrets and spec.bridge is not None:
                by_broker.setdefault(spec.bridge, []).append(spec.channel)
        for broker, joined in by_broker.items():
            try:
                link = self._open(broker, joined)
            except BridgeError as error:
                logger.error("not joining %s: %s", broker.url, error)
                continue
            self._links[broker] = link
            self._link_of.update((channel, link) for channel in joined)
        if not self._link_of:
            return
        self.engine = self._make_engine(frozenset(self._link_of), BROKER_SYNC)
        self.engine.start(now, node_id)
        for link in self._links.values():
            link.start()

    def receive(self, packet: BrokerPacket, now: datetime) -> None:
        """A message from a broker: opened, and given to the broker's engine."""
        channel = self._by_topic.get(packet.topic)
        if channel is None or self.engine is None:
            self.counts.unknown_topic += 1
            return
        try:
            sender, payload = open_sealed(self._secrets[channel], packet.payload)
        except SealError as error:
            self.counts.refused += 1
            if not self._refusing:
                logger.warning("dropping what does not open on %s: %s", packet.topic, error)
            self._refusing = True
            return
        self._refusing = False
        if sender == self._node_id:
            return  # our own, echoed by a broker that ignores no_local
        self.engine.receive(payload, channel, sender, now)

    def poll(self, now: datetime) -> None:
        """Publish what the broker's engine has due."""
        if self.engine is None:
            return
        for outgoing in self.engine.poll(now):
            link = self._link_of.get(outgoing.ring)
            if link is None:
                continue
            sealed = seal(self._secrets[outgoing.ring], self._node_id, outgoing.payload)
            link.publish(topic_of(self._secrets[outgoing.ring]), sealed)

    def next_wakeup(self) -> datetime | None:
        return None if self.engine is None else self.engine.next_wakeup()

    def statuses(self) -> list[BrokerStatus]:
        return [link.status() for link in self._links.values()]

    def stop(self) -> None:
        for link in self._links.values():
            link.stop()
        self._links, self._link_of, self.engine = {}, {}, None

    def _derive(self, channels: Iterable[ChannelKey]) -> dict[int, RingSecrets]:
        """Each bridged ring's secrets from its channel; a ring whose channel the radio lacks,
        or has without a key, is logged and left out (it is never sent in the clear)."""
        by_index = {c.index: c for c in channels}
        primary = next((c.psk for c in by_index.values() if c.primary), None)
        found: dict[int, RingSecrets] = {}
        for spec in self._rings:
            channel = by_index.get(spec.channel)
            if channel is None:
                logger.error(
                    "ring %s is bridged but the radio has no channel %d: not joining its broker",
                    spec.name,
                    spec.channel,
                )
                continue
            try:
                found[spec.channel] = RingSecrets.derive(
                    channel.name, channel.psk, channel_index=channel.index, primary_psk=primary
                )
            except ValueError as error:
                logger.error("ring %s cannot be bridged: %s", spec.name, error)
        return found

    def _open(self, broker: BridgeSpec, channels: Sequence[int]) -> BrokerLink:
        password = None
        if broker.password_file is not None:
            try:
                password = broker.password_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise BridgeError(
                    f"cannot read the password file {broker.password_file}: "
                    f"{error.strerror or error}"
                ) from error
        if broker.ca_file is not None and not broker.ca_file.is_file():
            raise BridgeError(f"the CA file {broker.ca_file} is not there")
        # The same client id at every start, so the broker keeps our session while we are
        # away; from the node id and the broker, hashed, so it does not name the radio.
        digest = hashlib.sha256(f"{self._node_id} {broker.url}".encode()).hexdigest()
        try:
            return self._make_link(
                host=broker.host,
                port=broker.port,
                tls=broker.tls,
                client_id=f"meshboard-{digest[:16]}",
                username=broker.username,
                password=password,
                ca_file=broker.ca_file,
                topics=[topic_of(self._secrets[channel]) for channel in channels],
                on_message=lambda topic, payload: self._enqueue(BrokerPacket(topic, payload)),
            )
        except (OSError, ValueError) as error:  # an unreadable or invalid CA file (ssl)
            raise BridgeError(f"cannot use the CA file {broker.ca_file}: {error}") from error
