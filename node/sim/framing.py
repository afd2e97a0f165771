"""The Meshtastic serial stream framing: 0x94 0xC3, a 16-bit big-endian length, a protobuf.

The simulated radio speaks it from the radio's side. The decoder resynchronises the way the
firmware and the client do, so that garbage on the line costs at most the bytes it occupies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

logger = logging.getLogger(__name__)

START1 = 0x94
START2 = 0xC3
HEADER_LEN = 4
MAX_FRAME_PAYLOAD = 512  # MAX_TO_FROM_RADIO_SIZE in the firmware and the Python client


class FrameTooLarge(ValueError):
    """A payload that no Meshtastic peer would accept."""


def encode_frame(payload: bytes) -> bytes:
    """Wrap one serialized ToRadio/FromRadio protobuf for the stream."""
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise FrameTooLarge(f"frame payload is {len(payload)} bytes; at most {MAX_FRAME_PAYLOAD}")
    return bytes([START1, START2, len(payload) >> 8, len(payload) & 0xFF]) + payload


class FrameDecoder:
    """Incremental decoder: feed it whatever the line delivered, get whole payloads back.

    Bytes outside a frame (boot logs, wake-up bytes, noise) are counted and skipped.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped_bytes = 0
        self.dropped_frames = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buffer.extend(data)
        while True:
            payload = self._next_payload()
            if payload is None:
                return
            yield payload

    def _next_payload(self) -> bytes | None:
        buf = self._buffer
        while buf:
            start = buf.find(START1)
            if start < 0:
                self.skipped_bytes += len(buf)
                buf.clear()
                return None
            if start:
                self.skipped_bytes += start
                del buf[:start]
            if len(buf) < 2:
                return None
            if buf[1] != START2:
                self.skipped_bytes += 1
                del buf[:1]
                continue
            if len(buf) < HEADER_LEN:
                return None
            length = (buf[2] << 8) | buf[3]
            if length > MAX_FRAME_PAYLOAD:
                logger.debug("dropping frame header with impossible length %d", length)
                self.dropped_frames += 1
                del buf[:2]
                continue
            if len(buf) < HEADER_LEN + length:
                return None
            payload = bytes(buf[HEADER_LEN : HEADER_LEN + length])
            del buf[: HEADER_LEN + length]
            return payload
        return None
