"""A short run of the serial fuzz (bench/fuzz_serial.py runs 100,000 frames): nothing crashes."""

from __future__ import annotations

from bench.fuzz_serial import ClientReader, classify, run
from node.sim.framing import encode_frame


def test_random_and_mutated_frames_neither_crash_nor_silence_the_board() -> None:
    report = run(1000, seed=7, probe_every=500, speed=50)
    assert report.crashes == 0, report.crash_details
    assert report.probes_answered == report.probes == 3
    assert report.integrity_check == "ok"
    # Every attempt had a fresh id: the radio ignores one among the last 20 it was handed.
    assert report.radio_refused["repeated id"] == 0, report.radio_refused
    # The model of the client's reader predicted exactly what the client failed to parse.
    assert report.client_parse_errors == report.client_parsed["unparsable"] > 0
    assert report.client_parsed["packet:TEXT_MESSAGE_APP"] > 0  # texts got through to the board


def test_the_client_reader_model_drops_a_frame_after_a_stray_start_byte() -> None:
    """What the client does (meshtastic 2.7.11), unlike the simulated radio's decoder."""
    frame = encode_frame(b"\x08\x01")
    assert ClientReader().feed(b"\x94" + frame + frame) == [b"\x08\x01"]
    reader = ClientReader()
    assert reader.feed(frame[:3]) == []  # a frame cut short ...
    assert reader.feed(frame) == []  # ... takes the next frame's bytes as its own
    assert classify(b"\xff") == "unparsable"
