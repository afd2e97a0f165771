"""The sealed envelope a ring's board-plane packets travel in over an MQTT broker (issue 18).

A ring may be joined through a broker as well as over the air, and the broker must learn
nothing: not the bulletins, not who sent them, not even the channel's name. So every payload is
sealed with ChaCha20-Poly1305 under a key derived from the ring's channel key, and the topic
(`meshboard/<ring_id>/...`) carries a ring id derived from the same key and name, which reveals
neither. Two neighbourhoods on the same channel (same name AND same key) derive the same ring id
and key, so they meet on the same topics; any other pair never does.

Sealed blob, 33 bytes around the payload (`OVERHEAD`):

    version (1) | nonce (12) | ChaCha20-Poly1305( sender (4) | payload ) with tag (16)

The version byte and the ring id are the associated data, so a blob cannot be replayed onto
another ring's topics or read as another version. The version byte versions the sealed frame
inside too: it is authenticated, so the inner frame needs no version byte of its own. The
sender is a node number, 4 bytes as everywhere on the board plane (`frame.NODE_BYTES`), not the
9 characters of `!1234abcd`. A random 96-bit nonce per seal is safe far beyond a ring's traffic
(a collision is a 2**-32 risk only after some 2**32 messages under one key).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from board.errors import MalformedPacket
from board.wire.frame import NODE_BYTES, is_node_id

#: The firmware's well-known key for the public default channel, behind the 1-byte PSK `AQ==`
#: (firmware v2.7.26 `src/mesh/Channels.h` `defaultpsk`; also spelled out in the `psk` comment
#: of `src/mesh/generated/meshtastic/channel.pb.h`). `node/doctor/radio.py` has the same bytes.
DEFAULT_PSK = bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e6901")
#: PSK lengths the channel protobuf documents: none, the 1-byte shorthand, AES-128, AES-256.
#: (The firmware pads other lengths with zeros and logs a warning: a weakened key we refuse.)
PSK_LENGTHS = (0, 1, 16, 32)

#: Version of the envelope and of the frame sealed inside it.
VERSION = 1
RING_ID_BYTES = 16
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_HEAD = struct.Struct(f">B{NONCE_BYTES}s")  # version, nonce
_SENDER = struct.Struct(f">{NODE_BYTES}s")
#: Bytes a sealed blob adds to its payload: 1 + 12 + 4 + 16 = 33.
OVERHEAD = _HEAD.size + _SENDER.size + TAG_BYTES
#: A sanity cap, not a budget: a board-plane packet is at most 231 bytes (`frame`), and
#: anything near this size on a ring's topic is not ours.
MAX_PAYLOAD = 4096
MAX_SEALED = MAX_PAYLOAD + OVERHEAD
#: Node numbers no radio takes: below 4 (firmware `src/mesh/NodeDB.cpp` NUM_RESERVED, which
#: `pickNewNodeNum` skips) and the broadcast address (`src/mesh/MeshTypes.h` NODENUM_BROADCAST).
_RESERVED_BELOW = 4
_BROADCAST = 0xFFFFFFFF

_TOPIC_INFO = b"meshboard bridge v1 topic"
_KEY_INFO = b"meshboard bridge v1 key"


class SealError(MalformedPacket):
    """A blob from the broker that does not open under this ring's key.

    A MalformedPacket, because to the board it is one more bad packet to count and drop:
    whatever sits on a ring's topic may come from anyone the broker lets publish.
    """


def expand_psk(psk: bytes, *, channel_index: int = 0, primary_psk: bytes | None = None) -> bytes:
    """The key the firmware encrypts a channel with, from the PSK as the channel settings hold it.

    Follows firmware v2.7.26 `src/mesh/Channels.cpp` `Channels::getKey`: a 1-byte PSK n > 0 is
    `DEFAULT_PSK` with n - 1 added to its last byte (`AQ==` is the default key itself); 0 or
    nothing is no encryption, returned as b"", except that a secondary channel with no PSK
    uses the primary channel's key. The board takes channel 0 to be the primary, as the apps
    set it up, so `primary_psk` is needed for an empty PSK on any other channel.
    Raises ValueError for a length the protobuf does not document (`PSK_LENGTHS`).
    """
    if len(psk) not in PSK_LENGTHS:
        raise ValueError(
            f"a channel key of {len(psk)} bytes: Meshtastic keys are 16 or 32 bytes "
            "(or the 1-byte shorthand); the firmware would pad this one with zeros"
        )
    if not psk and channel_index != 0:
        if primary_psk is None:
            raise ValueError(
                f"channel {channel_index} has no key of its own and uses the primary channel's: "
                "pass primary_psk"
            )
        return expand_psk(primary_psk)
    if len(psk) == 1:
        index = psk[0]
        if index == 0:
            return b""
        return DEFAULT_PSK[:-1] + bytes([(DEFAULT_PSK[-1] + index - 1) & 0xFF])
    return psk


@dataclass(frozen=True)
class RingSecrets:
    """What a ring's members share for the bridge: the topic's ring id and the sealing key."""

    ring_id: str  # 32 lowercase hex digits, as in `meshboard/<ring_id>/...`
    key: bytes = field(repr=False)  # 32 bytes, ChaCha20-Poly1305; kept out of logs

    @classmethod
    def derive(
        cls,
        channel_name: str,
        psk: bytes,
        *,
        channel_index: int = 0,
        primary_psk: bytes | None = None,
    ) -> RingSecrets:
        """The ring id and key for a channel: HKDF-SHA256 over its expanded key, the name bound in.

        `channel_name` must be the name the firmware uses (`Channels::getName`): an empty name
        on the radio stands for the modem preset's name, e.g. "LongFast", or "Custom". Passing
        "" would part a board from radios that mean the same channel, so it is refused. Names
        are compared as bytes, as the firmware's channel hash does: "Garden" is not "garden".

        The two outputs come from distinct HKDF `info` labels (label, a NUL, the UTF-8 name; no
        salt), so the ring id, which the broker sees, tells nothing about the key.

        A ring on the firmware's public default key (any 1-byte PSK) is only as secret as that
        key, which everyone knows: anyone who knows the channel name can compute its ring id
        and read its payloads. That is inherent and fine for a public ring; a private ring has
        its own random 16- or 32-byte PSK.

        Raises ValueError for a PSK the firmware does not take as written, for no encryption
        (a ring without a channel key cannot be bridged privately) and for an empty name.
        """
        if not channel_name:
            raise ValueError(
                "an empty channel name: pass the name the radio uses for it, "
                'the modem preset\'s such as "LongFast"'
            )
        key = expand_psk(psk, channel_index=channel_index, primary_psk=primary_psk)
        if not key:
            raise ValueError(
                f"channel {channel_name!r} is not encrypted: a ring without a channel key "
                "cannot be bridged privately"
            )
        name = channel_name.encode()

        def expand(label: bytes, length: int) -> bytes:
            hkdf = HKDF(
                algorithm=hashes.SHA256(), length=length, salt=None, info=label + b"\0" + name
            )
            return hkdf.derive(key)

        return cls(expand(_TOPIC_INFO, RING_ID_BYTES).hex(), expand(_KEY_INFO, KEY_BYTES))


def _associated(secrets: RingSecrets) -> bytes:
    return bytes([VERSION]) + bytes.fromhex(secrets.ring_id)


def _sender_number(sender: str) -> bytes:
    """A sender's 4 bytes; SealError for anything that is not a radio's node id."""
    if not is_node_id(sender):
        raise SealError(f"sender {sender!r} is not a node id like !1234abcd")
    number = int(sender[1:], 16)
    if number < _RESERVED_BELOW or number == _BROADCAST:
        raise SealError(f"sender {sender} is a reserved node number, not a radio")
    return bytes.fromhex(sender[1:])


def seal(
    secrets: RingSecrets,
    sender: str,
    payload: bytes,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt and authenticate one board-plane payload from `sender` for the ring's topic."""
    if len(payload) > MAX_PAYLOAD:
        raise SealError(f"a payload of {len(payload)} bytes; the envelope takes {MAX_PAYLOAD}")
    nonce = rng(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"rng gave {len(nonce)} bytes for a {NONCE_BYTES}-byte nonce")
    plain = _SENDER.pack(_sender_number(sender)) + payload
    sealed = ChaCha20Poly1305(secrets.key).encrypt(nonce, plain, _associated(secrets))
    return _HEAD.pack(VERSION, nonce) + sealed


def open_sealed(secrets: RingSecrets, blob: bytes) -> tuple[str, bytes]:
    """The (sender, payload) inside a blob from the ring's topic; SealError if it is not one."""
    if len(blob) < OVERHEAD:
        raise SealError(f"a sealed blob of {len(blob)} bytes; it needs at least {OVERHEAD}")
    if len(blob) > MAX_SEALED:
        raise SealError(f"a sealed blob of {len(blob)} bytes; the most is {MAX_SEALED}")
    version, nonce = _HEAD.unpack_from(blob)
    if version != VERSION:
        raise SealError(f"envelope version {version}; this board reads version {VERSION}")
    try:
        plain = ChaCha20Poly1305(secrets.key).decrypt(
            nonce, blob[_HEAD.size :], _associated(secrets)
        )
    except InvalidTag as error:
        raise SealError(
            "a blob that does not authenticate: another ring's key, or altered on the way"
        ) from error
    (number,) = _SENDER.unpack_from(plain)
    sender = "!" + number.hex()
    _sender_number(sender)
    return sender, plain[_SENDER.size :]
