"""The seam between the daemon and a radio: what a link is, and what it hands the daemon.

The daemon is handed a `RadioLink` and never builds one (httpx keeps its transport interface in
`_transports/base.py` the same way). `node.meshtastic_link.MeshtasticLink` is the production
link around the official meshtastic client; modules that only need these types or `LinkError`
do not import meshtastic to get them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

BROADCAST_NUM = 0xFFFFFFFF
BOARD_PORT = 384  # the board plane's private app port (256-511); payloads carry a magic byte
# Board-plane packets reach direct neighbours only: boards relay what they store themselves,
# so the firmware's flooding would only send every packet again.
BOARD_HOP_LIMIT = 0
#: Seconds to wait for the radio's answer to the config handshake, for the daemon and for
#: `meshboard doctor` alike: the client's own default. A radio with a full node database sends
#: some 40 kB of config (about 4 s at 115200 baud), and one that the port's opening reset boots
#: for a few seconds first; an answer that takes longer is not coming. Here, not in
#: `node.meshtastic_link`, so the commands that never open a radio need not import meshtastic.
HANDSHAKE_TIMEOUT = 30.0


class LinkError(Exception):
    """The radio cannot be reached or refused what we asked of it."""


class LinkDown(LinkError):
    """The radio is not reachable now; the same request can succeed once it is reconnected."""


@dataclass(frozen=True)
class ReceivedText:
    """A text message heard by the radio, reduced to what the board needs."""

    sender: str  # "!a1b2c3d4"
    channel: int  # channel index it arrived on: the ring
    text: str
    direct: bool  # addressed to this board rather than broadcast on the channel
    packet_id: int
    rx_time: int | None  # the radio's receive time (unix seconds), when it knows the time
    pki_encrypted: bool  # the firmware verified the sender's public key
    #: The sender's 32-byte public key: the one the firmware decrypted a PKI message with
    #: (`MeshPacket.public_key`), else the one the radio's node database holds; None if none.
    public_key: bytes | None = None

    @property
    def verified(self) -> bool:
        """Whether the sender is who the packet says: a PKI-encrypted direct message to us.

        The firmware (2.5+) decrypts such a message only with the key it holds for the sender's
        node number, and sets `pki_encrypted`; on a shared channel key anyone can claim any id.
        """
        return self.direct and self.pki_encrypted


@dataclass(frozen=True)
class ReceivedNodeInfo:
    """A node's NodeInfo heard by the radio: the radio now holds its public key (a key it
    already held is never replaced: `NodeDB::updateUser` drops a NodeInfo with another key)."""

    sender: str
    public_key: bytes


@dataclass(frozen=True)
class ReceivedBoardPacket:
    """A board-plane packet (private port) heard from another board."""

    sender: str
    channel: int
    payload: bytes
    packet_id: int


#: What `Delivery.error` says when the radio's QueueStatus for a packet had `res` set: the radio
#: would not queue it (a full TX queue, or the duty cycle: `MeshService::sendToMesh` reports
#: what `Router::sendLocal` returned). Not a firmware Routing.Error name: the client gets no
#: routing packet for this, only the QueueStatus.
QUEUE_REFUSED = "QUEUE_REFUSED"

#: Errors that mean the packet never went on air, so a resend cannot show anyone a text twice:
#: the client's text rate (`PhoneAPI::handleToRadioPacket`, RATE_LIMIT_EXCEEDED), the duty cycle
#: (`Router::send`, DUTY_CYCLE_LIMIT), no key for a PKI direct message (`perhapsEncode`,
#: PKI_SEND_FAIL_PUBLIC_KEY / PKI_FAILED), a refused QueueStatus. Firmware v2.7.26.
NOT_SENT = frozenset(
    {
        "RATE_LIMIT_EXCEEDED",
        "DUTY_CYCLE_LIMIT",
        "PKI_SEND_FAIL_PUBLIC_KEY",
        "PKI_FAILED",
        "NO_CHANNEL",
        "TOO_LARGE",
        "NO_INTERFACE",
        QUEUE_REFUSED,
    }
)
#: Of those, the ones that will never change by waiting: the packet itself is wrong here.
NEVER_SENDABLE = frozenset({"NO_CHANNEL", "TOO_LARGE"})


@dataclass(frozen=True)
class Delivery:
    """The radio's word on a packet this board sent: an ACK, a NAK, or a refusal.

    Firmware answers every want_ack packet with a ROUTING_APP packet whose `request_id` is the
    packet's id: a real ACK from the destination, an implicit ACK from our own radio (it heard a
    relay repeat the packet and stopped retrying; the destination has not confirmed), or a NAK
    from our own radio (MAX_RETRANSMIT, NO_RESPONSE, DUTY_CYCLE_LIMIT, …). A refusal in the
    radio's QueueStatus arrives as `QUEUE_REFUSED`.
    """

    packet_id: int  # what send_text returned
    error: str  # "NONE" for an ACK, else the firmware's Routing.Error name, or QUEUE_REFUSED
    implicit: bool = False

    @property
    def acked(self) -> bool:
        return self.error == "NONE"

    @property
    def on_air(self) -> bool:
        """Whether the packet may have gone out: if so, a resend might be shown twice."""
        return self.error not in NOT_SENT


@dataclass(frozen=True)
class RadioMetrics:
    """What the radio reports about the air (firmware device metrics, percentages)."""

    channel_utilization: float
    air_util_tx: float


Received = ReceivedText | ReceivedBoardPacket | ReceivedNodeInfo | RadioMetrics | Delivery
ReceiveHandler = Callable[[Received], None]
LostHandler = Callable[[], None]


@dataclass(frozen=True)
class ChannelKey:
    """One of the radio's enabled channels as the firmware encrypts it: what the MQTT bridge
    derives a ring's topic and key from (board/wire/envelope.py)."""

    index: int
    name: str  # as the firmware names it: a preset's name when the settings leave it empty
    psk: bytes  # as the settings hold it: 0, 1, 16 or 32 bytes
    primary: bool  # the primary channel, whose key an empty secondary psk stands for


class RadioLink(Protocol):
    """What the daemon needs from a radio.

    `on_receive` also gets a `Delivery` for every packet `send_text` sent, naming the id it
    returned, when the radio reports one; a lost report is the caller's timeout to handle.

    `close()` may be called from another thread while `start()` or a send is under way, and
    must make them return promptly (raising LinkError); sends raise LinkDown once the link is
    lost or closed.
    """

    @property
    def node_id(self) -> str: ...

    @property
    def heard_at(self) -> float:
        """time.monotonic() when the radio last passed the client anything (or connected)."""
        ...

    def start(self, on_receive: ReceiveHandler, on_lost: LostHandler) -> None: ...

    def send_text(self, text: str, destination: str, channel: int) -> int:
        """Hand the radio a text; returns its packet id, a fresh one every call (the firmware
        ignores an id among the last 20 it was handed: `PhoneAPI::wasSeenRecently`)."""
        ...

    def send_board(self, payload: bytes, channel: int) -> int: ...

    def channels(self) -> tuple[ChannelKey, ...]:
        """The radio's enabled channels, from the config handshake."""
        ...

    def request_node_info(self, destination: str, channel: int) -> int:
        """Send the radio's own NodeInfo to `destination` asking for theirs (want_response), as
        the firmware does for a node it has just heard (`MeshService::handleFromRadio`); the
        answer arrives as a `ReceivedNodeInfo`. Returns the packet id."""
        ...

    def probe(self) -> None:
        """Ask the radio for a sign of life (a heartbeat, which the firmware answers with a
        QueueStatus); `heard_at` moves when it answers."""
        ...

    def close(self) -> None: ...


LinkFactory = Callable[[], RadioLink]


def node_num(node_id: str) -> int:
    """`!a1b2c3d4` → 0xa1b2c3d4."""
    return int(node_id.removeprefix("!"), 16)
