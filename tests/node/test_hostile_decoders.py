"""The shell's decoders under hostile input: the serial framing and the client's packet dicts.

Both see what crossed a serial line with no checksum, so anything may arrive: the framing must
find every frame whatever the line's chunking, and `_to_received` must return None, never raise,
for whatever a garbled protobuf turns into.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings
from hypothesis import strategies as st
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.link import BOARD_PORT, RadioMetrics, ReceivedBoardPacket, ReceivedText
from node.meshtastic_link import _refusal, _to_received
from node.sim.framing import MAX_FRAME_PAYLOAD, START1, FrameDecoder, encode_frame

ME = 0x5B0A4D01

# -- the serial framing ---------------------------------------------------------------------------


def feed_in_chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    decoder = FrameDecoder()
    bounds = [0, *sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]
    return [p for a, b in itertools.pairwise(bounds) for p in decoder.feed(stream[a:b])]


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=20))
def test_chunking_never_changes_what_is_decoded(stream: bytes, cuts: list[int]) -> None:
    whole = list(FrameDecoder().feed(stream))
    assert feed_in_chunks(stream, cuts) == whole
    assert all(len(p) <= MAX_FRAME_PAYLOAD for p in whole)


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=40).map(lambda b: b.replace(bytes([START1]), b"")),  # noise
            st.binary(max_size=MAX_FRAME_PAYLOAD),
        ),
        max_size=8,
    ),
    st.lists(st.integers(0, 5000), max_size=20),
)
def test_every_frame_after_noise_without_a_start_byte_is_found(
    frames: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(noise + encode_frame(payload) for noise, payload in frames)
    assert feed_in_chunks(stream, cuts) == [payload for _, payload in frames]


# -- the client's packet dicts -----------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(),
    st.text(max_size=6),
    st.binary(max_size=6),
)
_keys = ["portnum", "payload", "telemetry", "deviceMetrics", "channelUtilization", "airUtilTx"]
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_keys), inner, max_size=4)
    ),
    max_leaves=10,
)
_packet_keys = ["from", "to", "channel", "id", "decoded", "rxTime", "pkiEncrypted"]


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(_packet_keys), _values, max_size=7))
def test_any_packet_dict_is_understood_or_ignored(packet: dict[str, Any]) -> None:
    received = _to_received(packet, ME)
    if isinstance(received, ReceivedText | ReceivedBoardPacket):
        assert re.fullmatch(r"![0-9a-f]{8}", received.sender)
        assert 0 <= received.channel <= 7
    else:
        assert received is None or isinstance(received, RadioMetrics)


def client_dict(packet: mesh_pb2.MeshPacket) -> dict[str, Any]:
    """The dict the meshtastic client publishes for a packet (MessageToDict, then raw payload)."""
    as_dict = MessageToDict(packet)
    if "decoded" in as_dict:
        as_dict["decoded"]["payload"] = packet.decoded.payload
        as_dict["decoded"].setdefault("portnum", "UNKNOWN_APP")
    return as_dict


@settings(max_examples=200)
@given(
    sender=st.integers(0, 2**32 - 1),
    to=st.integers(0, 2**32 - 1),
    channel=st.integers(0, 2**32 - 1),
    port=st.sampled_from([portnums_pb2.PortNum.TEXT_MESSAGE_APP, BOARD_PORT, 0, 3, 67, 511]),
    payload=st.binary(max_size=233),
)
def test_real_packets_with_any_field_values(
    sender: int, to: int, channel: int, port: int, payload: bytes
) -> None:
    packet = mesh_pb2.MeshPacket(
        to=to, channel=channel, decoded=mesh_pb2.Data(portnum=port, payload=payload)
    )
    setattr(packet, "from", sender)
    received = _to_received(client_dict(packet), ME)
    if (
        sender == ME
        or channel > 7
        or port not in (1, BOARD_PORT)
        or "from" not in client_dict(packet)
    ):
        assert received is None
    elif port == BOARD_PORT:
        assert received == ReceivedBoardPacket(f"!{sender:08x}", channel, payload, 0)
    else:
        assert isinstance(received, ReceivedText)
        assert received.text == payload.decode("utf-8", errors="replace")
        assert received.direct == (to == ME)


TEXT = {"payload": b"hi", "portnum": "TEXT_MESSAGE_APP"}


@pytest.mark.parametrize(
    "packet",
    [
        {"from": 1, "decoded": 5},
        {"from": 1, "decoded": TEXT, "channel": "zero"},
        {"from": 1, "decoded": TEXT, "channel": 9},
        {"from": -1, "decoded": TEXT},
        {"from": 2**33, "decoded": TEXT},
        {"from": ME, "decoded": {"payload": b"", "portnum": "TELEMETRY_APP", "telemetry": 3}},
        {
            "from": ME,
            "decoded": {
                "payload": b"",
                "portnum": "TELEMETRY_APP",
                "telemetry": {"deviceMetrics": {"channelUtilization": "high"}},
            },
        },
    ],
)
def test_what_hypothesis_found_in_packet_dicts(packet: dict[str, Any]) -> None:
    """Each raised (AttributeError, ValueError) or made a bad node id or ring before."""
    assert _to_received(packet, ME) is None


@pytest.mark.parametrize("channel", [0, 3])
def test_a_pki_direct_message_is_the_public_rings_whatever_its_channel_field(channel: int) -> None:
    """The firmware delivers PKI DMs as channel 0 (Router.cpp perhapsDecode): the field names no
    ring, so a forged or stale index must not reach a private one."""
    packet = mesh_pb2.MeshPacket(
        to=ME,
        channel=channel,
        pki_encrypted=True,
        decoded=mesh_pb2.Data(portnum=portnums_pb2.PortNum.TEXT_MESSAGE_APP, payload=b"list"),
    )
    setattr(packet, "from", 0x1234ABCD)
    received = _to_received(client_dict(packet), ME)
    assert isinstance(received, ReceivedText)
    assert (received.channel, received.verified) == (0, True)


@pytest.mark.parametrize(
    ("res", "error"),
    [
        (32, "QUEUE_REFUSED"),
        (9, "DUTY_CYCLE_LIMIT"),
        (39, "PKI_SEND_FAIL_PUBLIC_KEY"),
        (250, "QUEUE_REFUSED"),
    ],
)
def test_a_queue_status_refusal_keeps_the_firmwares_reason(res: int, error: str) -> None:
    """A missing key (39) holds back one person's reply; a full queue (32) every reply."""
    assert _refusal(res) == error
