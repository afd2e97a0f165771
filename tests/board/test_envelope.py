"""The sealed envelope for the MQTT bridge: the broker learns nothing, and only one ring meets."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st

from board.errors import MalformedPacket
from board.wire.envelope import (
    DEFAULT_PSK,
    MAX_PAYLOAD,
    MAX_SEALED,
    OVERHEAD,
    RingSecrets,
    SealError,
    expand_psk,
    open_sealed,
    seal,
)

GARDEN_PSK = bytes(range(1, 33))  # a private ring's own 32-byte key
GARDEN = RingSecrets.derive("garden", GARDEN_PSK)
SENDER = "!1234abcd"


def _hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 by hand with hmac: pins the derivation independently of `cryptography`."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def test_the_one_byte_shorthand_expands_as_the_firmware_does() -> None:
    # firmware v2.7.26 src/mesh/Channels.h `defaultpsk`, and the psk comment in
    # src/mesh/generated/meshtastic/channel.pb.h: 1 is this key, 2-10 add 1-9 to its last byte.
    default = bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e6901")
    assert default == DEFAULT_PSK
    assert expand_psk(b"\x01") == default
    assert expand_psk(b"\x02") == bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e6902")
    assert expand_psk(b"\x0a") == bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e690a")
    # Channels::getKey adds in a uint8_t: 0x01 + 255 - 1 = 0xff, no carry into other bytes.
    assert expand_psk(b"\xff") == bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e69ff")


@pytest.mark.parametrize("psk", [b"", b"\x00"])
def test_no_key_is_no_encryption(psk: bytes) -> None:
    assert expand_psk(psk) == b""


@pytest.mark.parametrize("psk", [bytes(16), GARDEN_PSK])
def test_full_keys_are_used_as_they_are(psk: bytes) -> None:
    assert expand_psk(psk) == psk


def test_a_secondary_channel_without_a_key_uses_the_primary_key() -> None:
    # Channels::getKey: an empty psk on a SECONDARY channel is getKey(primaryIndex).
    assert expand_psk(b"", channel_index=2, primary_psk=b"\x01") == DEFAULT_PSK
    with pytest.raises(ValueError, match="primary_psk"):
        expand_psk(b"", channel_index=2)
    assert RingSecrets.derive(
        "garden", b"", channel_index=1, primary_psk=GARDEN_PSK
    ) == RingSecrets.derive("garden", GARDEN_PSK)


@pytest.mark.parametrize("length", [2, 8, 15, 17, 24, 31, 33])
def test_keys_of_other_lengths_are_refused(length: int) -> None:
    with pytest.raises(ValueError, match=f"{length} bytes: Meshtastic keys are 16 or 32 bytes"):
        expand_psk(bytes(range(length)))
    with pytest.raises(ValueError, match="16 or 32 bytes"):
        RingSecrets.derive("garden", bytes(range(length)))


@pytest.mark.parametrize("psk", [b"", b"\x00"])
def test_a_ring_without_a_channel_key_cannot_be_bridged(psk: bytes) -> None:
    with pytest.raises(ValueError, match="'garden' is not encrypted"):
        RingSecrets.derive("garden", psk)


def test_an_empty_channel_name_is_refused() -> None:
    with pytest.raises(ValueError, match="LongFast"):
        RingSecrets.derive("", GARDEN_PSK)


def test_the_derivation_is_hkdf_sha256_with_the_name_bound_in() -> None:
    # Boards of different versions must meet on the same topics: pin the derivation exactly.
    name = b"\0garden"
    assert GARDEN.ring_id == _hkdf_sha256(GARDEN_PSK, b"meshboard bridge v1 topic" + name, 16).hex()
    assert GARDEN.key == _hkdf_sha256(GARDEN_PSK, b"meshboard bridge v1 key" + name, 32)
    assert len(GARDEN.ring_id) == 32 and GARDEN.ring_id == GARDEN.ring_id.lower()


def test_the_same_channel_meets_on_the_same_ring() -> None:
    assert RingSecrets.derive("garden", GARDEN_PSK) == GARDEN
    # A radio may hold the public key as `AQ==` or spelled out: the firmware uses the same key.
    assert RingSecrets.derive("LongFast", b"\x01") == RingSecrets.derive("LongFast", DEFAULT_PSK)


@pytest.mark.parametrize(
    ("name", "psk"),
    [
        ("Garden", GARDEN_PSK),  # the firmware's channel hash compares names byte for byte
        ("gardens", GARDEN_PSK),
        ("garden", GARDEN_PSK[:-1] + b"\0"),
        ("garden", GARDEN_PSK[:16]),
        ("garden", b"\x01"),
    ],
)
def test_another_name_or_key_is_another_ring(name: str, psk: bytes) -> None:
    other = RingSecrets.derive(name, psk)
    assert other.ring_id != GARDEN.ring_id
    assert other.key != GARDEN.key
    with pytest.raises(SealError, match="does not authenticate"):
        open_sealed(other, seal(GARDEN, SENDER, b"hello"))


def test_the_ring_id_is_bound_into_every_blob() -> None:
    # Same key, other ring id: a blob copied onto another topic does not open there.
    moved = RingSecrets("00" * 16, GARDEN.key)
    with pytest.raises(SealError, match="does not authenticate"):
        open_sealed(moved, seal(GARDEN, SENDER, b"hello"))


def test_the_key_stays_out_of_logs() -> None:
    assert GARDEN.key.hex() not in repr(GARDEN)
    assert GARDEN.ring_id in repr(GARDEN)


@given(payload=st.binary(max_size=MAX_PAYLOAD), number=st.integers(4, 0xFFFFFFFE))
def test_a_sealed_payload_opens_to_its_sender_and_payload(payload: bytes, number: int) -> None:
    sender = f"!{number:08x}"
    blob = seal(GARDEN, sender, payload)
    assert len(blob) == len(payload) + OVERHEAD
    assert open_sealed(GARDEN, blob) == (sender, payload)


def test_the_blob_layout_is_version_nonce_and_the_sealed_frame() -> None:
    """Read a blob with nothing but the documented layout and ChaCha20-Poly1305."""
    blob = seal(GARDEN, SENDER, b"meal soup", rng=lambda n: b"\x07" * n)
    assert blob[0] == 1
    assert blob[1:13] == b"\x07" * 12
    plain = ChaCha20Poly1305(GARDEN.key).decrypt(
        blob[1:13], blob[13:], b"\x01" + bytes.fromhex(GARDEN.ring_id)
    )
    assert plain == bytes.fromhex("1234abcd") + b"meal soup"
    assert OVERHEAD == 1 + 12 + 4 + 16


def test_each_seal_takes_a_fresh_nonce() -> None:
    assert seal(GARDEN, SENDER, b"same") != seal(GARDEN, SENDER, b"same")


@given(data=st.data(), payload=st.binary(max_size=300))
def test_changing_any_byte_makes_the_blob_unopenable(data: st.DataObject, payload: bytes) -> None:
    blob = bytearray(seal(GARDEN, SENDER, payload))
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealError):
        open_sealed(GARDEN, bytes(blob))


def test_a_broker_subscribed_to_everything_learns_neither_text_nor_name() -> None:
    text = b"meal: soup at the community hall, 18:00, bring a bowl"
    secrets = RingSecrets.derive("allotments", bytes(range(100, 116)))
    blob = seal(secrets, SENDER, text)
    topic = f"meshboard/{secrets.ring_id}/"
    seen = blob + topic.encode()
    for secret in (text, b"soup", b"allotments", bytes.fromhex("1234abcd"), SENDER.encode()):
        assert secret not in seen
        assert secret.hex().encode() not in seen
    assert secrets.key not in seen and secrets.key.hex().encode() not in seen


def test_truncated_blobs_are_refused() -> None:
    blob = seal(GARDEN, SENDER, b"")
    assert len(blob) == OVERHEAD
    with pytest.raises(SealError, match=f"needs at least {OVERHEAD}"):
        open_sealed(GARDEN, blob[:-1])
    with pytest.raises(SealError, match="needs at least"):
        open_sealed(GARDEN, b"")


def test_another_envelope_version_is_named() -> None:
    blob = seal(GARDEN, SENDER, b"hello")
    with pytest.raises(SealError, match="envelope version 2; this board reads version 1"):
        open_sealed(GARDEN, b"\x02" + blob[1:])


def test_the_size_cap_holds_both_ways() -> None:
    biggest = seal(GARDEN, SENDER, bytes(MAX_PAYLOAD))
    assert len(biggest) == MAX_SEALED
    with pytest.raises(SealError, match=f"4097 bytes; the envelope takes {MAX_PAYLOAD}"):
        seal(GARDEN, SENDER, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(SealError, match=f"the most is {MAX_SEALED}"):
        open_sealed(GARDEN, biggest + b"\0")


@pytest.mark.parametrize(
    ("sender", "message"),
    [
        ("1234abcd", "not a node id"),
        ("!1234ABCD", "not a node id"),
        ("!1234abc", "not a node id"),
        ("!1234abcde", "not a node id"),
        ("!1234abcg", "not a node id"),
        ("!ffffffff", "reserved node number"),  # the broadcast address
        ("!00000003", "reserved node number"),  # NodeDB.cpp NUM_RESERVED
    ],
)
def test_the_sender_must_be_a_radios_node_id(sender: str, message: str) -> None:
    with pytest.raises(SealError, match=message):
        seal(GARDEN, sender, b"hello")


def test_a_blob_naming_no_radio_as_sender_is_refused() -> None:
    # Sealed by someone holding the key, by hand: authentic, but from the broadcast address.
    nonce = bytes(12)
    sealed = ChaCha20Poly1305(GARDEN.key).encrypt(
        nonce, b"\xff\xff\xff\xff" + b"hello", b"\x01" + bytes.fromhex(GARDEN.ring_id)
    )
    with pytest.raises(SealError, match="!ffffffff is a reserved node number"):
        open_sealed(GARDEN, b"\x01" + nonce + sealed)


def test_a_seal_error_is_dropped_like_any_malformed_packet() -> None:
    assert issubclass(SealError, MalformedPacket)
