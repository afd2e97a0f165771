"""The serial stream framing the simulated radio speaks."""

from __future__ import annotations

import pytest

from node.sim.framing import MAX_FRAME_PAYLOAD, FrameDecoder, FrameTooLarge, encode_frame


def test_frames_survive_being_split_at_every_byte() -> None:
    stream = encode_frame(b"first") + encode_frame(b"") + encode_frame(bytes(range(200)))
    decoder = FrameDecoder()
    payloads = [p for i in range(len(stream)) for p in decoder.feed(stream[i : i + 1])]
    assert payloads == [b"first", b"", bytes(range(200))]


@pytest.mark.parametrize(
    "noise",
    [
        b"INFO  | ??:??:?? 1 [Router] boot log line\r\n",
        bytes([0xC3] * 32),  # the client's wake-up bytes
        b"\x94\x94\x94",  # false starts
        b"\x94\xc3\xff\xff",  # a header claiming an impossible length
    ],
)
def test_noise_before_a_frame_is_skipped(noise: bytes) -> None:
    decoder = FrameDecoder()
    assert list(decoder.feed(noise + encode_frame(b"payload"))) == [b"payload"]


def test_oversized_payload_is_refused_before_it_reaches_the_line() -> None:
    with pytest.raises(FrameTooLarge, match="at most 512"):
        encode_frame(bytes(MAX_FRAME_PAYLOAD + 1))
