"""Which of the firmware's rules for clients a simulated radio plays, and since which version.

Each rule is stated once, in `node/sim/phone_api.py` (what the radio does with what its client
hands it) or `node/sim/router.py` (how it encrypts, decrypts and acknowledges); this module only
says which of them a radio applies. A rule holds from the first firmware tag whose source has
it (`git tag --contains` of the commit, meshtastic/firmware), so a radio that reports an older
version plays the older behaviour, and a radio reporting a version it cannot parse plays them
all. `FirmwareRules` holds the switches a test sets on a `RadioProfile`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int, int]

#: The firmware the simulated radios report by default (RadioProfile.firmware_version).
FIRMWARE_VERSION = "2.7.26.sim"

# Since which firmware each rule holds, each from the tag that first has its code.
PKI = (2, 5, 0)  # #4379: Router.cpp perhapsEncode/perhapsDecode encryptCurve25519
BITFIELD = (2, 5, 0)  # #4643: Router.cpp perhapsEncode sets Data.bitfield on isFromUs
TRACEROUTE_RATE = (2, 5, 1)  # #4756: PhoneAPI::handleToRadioPacket, 30 s per traceroute
RECENT_IDS = (2, 5, 3)  # #4888: PhoneAPI::wasSeenRecently, recentToRadioPacketIds[20]
PORT_RATES = (2, 6, 7)  # #6699: position, waypoint, alert, telemetry once per 10 s
TEXT_RATE = (2, 7, 0)  # #7139: TEXT_MESSAGE_APP once per 2 s (TWO_SECONDS_MS)
RATE_LIMIT_NAK = (2, 7, 4)  # #7365: sendRoutingErrorResponse(RATE_LIMIT_EXCEEDED)
HEARTBEAT_ANSWER = (2, 7, 4)  # #7506: a heartbeat is answered with a QueueStatus
RELIABLE_TEXT_ACKS = (2, 7, 12)  # #8165: ReliableRouter::shouldSuccessAckWithWantAck
REJECT_LEGACY_DMS = (2, 7, 14)  # #8562: Router.cpp perhapsDecode "Rejecting legacy DM"
REFUSE_UNKNOWN_KEY = (2, 7, 19)  # #9485: perhapsEncode PKI_SEND_FAIL_PUBLIC_KEY


def parse_version(text: str) -> Version | None:
    """`2.7.26.54e0d8d` → (2, 7, 26); None when it does not start with three numbers."""
    match = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])


@dataclass(frozen=True)
class FirmwareRules:
    """Switches for what the source leaves to the radio's settings or its client.

    - `rate_limit_nak_to_client`: the RATE_LIMIT_EXCEEDED NAK of a text sent too soon reaches
      the client. The firmware addresses it to the packet's `from` (MeshService::
      sendRoutingErrorResponse); the Python client leaves `from` 0, so by the source the NAK
      goes to node 0 on the air and the client never sees it. A client that fills in its own
      node number does see it.
    - `refuse_unknown_key`: a direct message to a node whose public key the radio lacks is
      refused with PKI_SEND_FAIL_PUBLIC_KEY rather than sent on the channel key. None: as the
      reported firmware version does (2.7.19 and later refuse).
    - `licensed`: the owner is a licensed (ham) operator: no PKI, and channel-key direct
      messages are still accepted (`owner.is_licensed` in perhapsEncode/perhapsDecode).
    """

    rate_limit_nak_to_client: bool = False
    refuse_unknown_key: bool | None = None
    licensed: bool = False

    def resolve(self, firmware_version: str) -> ActiveRules:
        """Which rules a radio reporting `firmware_version` applies, with these switches."""
        version = parse_version(firmware_version) or (99, 0, 0)

        def since(first: Version) -> bool:
            return version >= first

        pki = since(PKI) and not self.licensed
        refuse = self.refuse_unknown_key
        return ActiveRules(
            recent_ids=since(RECENT_IDS),
            traceroute_rate=since(TRACEROUTE_RATE),
            port_rates=since(PORT_RATES),
            text_rate=since(TEXT_RATE),
            rate_limit_nak=since(RATE_LIMIT_NAK),
            rate_limit_nak_to_client=self.rate_limit_nak_to_client,
            heartbeat_answer=since(HEARTBEAT_ANSWER),
            bitfield=since(BITFIELD),
            pki=pki,
            pki_decrypt=since(PKI),
            reliable_text_acks=since(RELIABLE_TEXT_ACKS),
            reject_legacy_dms=since(REJECT_LEGACY_DMS) and not self.licensed,
            refuse_unknown_key=pki and (since(REFUSE_UNKNOWN_KEY) if refuse is None else refuse),
        )


@dataclass(frozen=True)
class ActiveRules:
    """The rules one radio applies: its firmware version's, with its switches."""

    recent_ids: bool
    traceroute_rate: bool
    port_rates: bool
    text_rate: bool
    rate_limit_nak: bool
    rate_limit_nak_to_client: bool
    heartbeat_answer: bool
    bitfield: bool
    pki: bool  # PKI-encrypt direct messages it sends (not in ham mode)
    pki_decrypt: bool  # decrypt PKI direct messages to it (ham mode too: perhapsDecode)
    reliable_text_acks: bool
    reject_legacy_dms: bool
    refuse_unknown_key: bool


#: Every rule on: what a radio reporting the default firmware plays.
NEWEST = FirmwareRules().resolve(FIRMWARE_VERSION)
