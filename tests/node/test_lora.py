"""LoRa time on air against the figures the design is built on (docs/design.md, "Radio facts")."""

from __future__ import annotations

import itertools

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from board.airtime import estimate_airtime
from node.link import BOARD_PORT
from node.sim import lora, router
from node.sim.rules import NEWEST

HANDHELD = 0x1234ABCD


def text_packet(text: str, *, pki: bool = False) -> mesh_pb2.MeshPacket:
    return mesh_pb2.MeshPacket(
        to=0x1234ABCD,
        id=0x0BADCAFE,
        decoded=mesh_pb2.Data(
            portnum=portnums_pb2.PortNum.TEXT_MESSAGE_APP, payload=text.encode("utf-8")
        ),
        pki_encrypted=pki,
    )


def test_a_200_byte_text_is_221_bytes_on_air() -> None:
    # 16-byte header + Data{portnum: 2 bytes, payload: tag, 2-byte length, 200 bytes}
    assert lora.on_air_bytes(text_packet("x" * 200)) == 221


def test_pki_encrypted_direct_messages_carry_12_bytes_more() -> None:
    plain = lora.on_air_bytes(text_packet("hello"))
    assert lora.on_air_bytes(text_packet("hello", pki=True)) == plain + 12


@pytest.mark.parametrize(
    ("preset", "seconds"),
    [(lora.LONG_FAST, 1.9), (lora.MEDIUM_FAST, 0.56)],
    ids=["LongFast", "MediumFast"],
)
def test_a_200_byte_text_takes_what_the_design_says(preset: lora.Preset, seconds: float) -> None:
    airtime = lora.packet_airtime(text_packet("x" * 200), preset)
    assert airtime == pytest.approx(seconds, rel=0.03)


@pytest.mark.parametrize("pki", [False, True], ids=["channel-key", "pki"])
@pytest.mark.parametrize("port", [portnums_pb2.PortNum.TEXT_MESSAGE_APP, BOARD_PORT])
def test_the_boards_airtime_estimate_is_the_simulators_exact_figure(port: int, pki: bool) -> None:
    """The outbox books what the mesh will charge, for every size a packet can have: encoded as
    the radio sends its own packets (Router.cpp perhapsEncode), with the 2-byte bitfield, and
    for a direct message to a known key PKI's 12 bytes. (From 1 byte: an empty payload is left
    out of the protobuf altogether, which the estimate does not bother with.)"""
    for size in range(1, mesh_pb2.Constants.DATA_PAYLOAD_LEN + 1):
        packet = mesh_pb2.MeshPacket(
            to=HANDHELD if pki else router.BROADCAST_NUM,
            decoded=mesh_pb2.Data(portnum=port, payload=b"x" * size),
        )
        error = router.encode(
            packet,
            NEWEST,
            own_key=router.stand_in_key(1),
            destination_key=router.stand_in_key(HANDHELD),
            channel_name="",
        )
        if error == mesh_pb2.Routing.Error.TOO_LARGE:
            continue  # refused: nothing to book
        assert packet.decoded.HasField("bitfield") and packet.pki_encrypted is pki
        assert estimate_airtime(size, port=port, pki=pki) == pytest.approx(
            lora.packet_airtime(packet)
        )


def test_a_200_byte_text_the_radio_sends_is_223_bytes_on_air() -> None:
    packet = text_packet("x" * 200)
    packet.to = router.BROADCAST_NUM
    router.encode(packet, NEWEST, own_key=b"", destination_key=None, channel_name="")
    assert lora.on_air_bytes(packet) == 223  # the bitfield: tag and one byte


def test_long_fast_is_about_1_07_kbit_per_second() -> None:
    assert lora.LONG_FAST.bit_rate == pytest.approx(1074, rel=0.01)


def test_exact_long_fast_airtime_of_a_full_text() -> None:
    # 16 + 4.25 preamble symbols and 8 + 41 * 5 payload symbols of 8.192 ms
    assert lora.airtime_seconds(221, lora.LONG_FAST) == pytest.approx((20.25 + 213) * 0.008192)


@pytest.mark.parametrize(
    ("preset", "ldro"),
    [
        (lora.SHORT_FAST, False),
        (lora.MEDIUM_FAST, False),
        (lora.LONG_FAST, False),
        (lora.LONG_MODERATE, True),
        (lora.LONG_SLOW, True),
    ],
    ids=lambda p: p.name if isinstance(p, lora.Preset) else str(p),
)
def test_low_data_rate_optimisation_above_16_ms_symbols(preset: lora.Preset, ldro: bool) -> None:
    assert preset.low_data_rate_optimize is ldro
    assert (preset.symbol_time > 0.016) is ldro


def test_slower_presets_take_longer_for_the_same_packet() -> None:
    order = [
        lora.SHORT_TURBO,
        lora.SHORT_FAST,
        lora.SHORT_SLOW,
        lora.MEDIUM_FAST,
        lora.MEDIUM_SLOW,
        lora.LONG_FAST,
        lora.LONG_MODERATE,
        lora.LONG_SLOW,
    ]
    times = [lora.airtime_seconds(100, preset) for preset in order]
    assert times == sorted(times)
    assert len(set(times)) == len(times)


def test_airtime_grows_in_whole_blocks_of_symbols() -> None:
    times = [lora.airtime_seconds(n, lora.LONG_FAST) for n in range(0, 256)]
    assert times == sorted(times)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(times) if b > a}
    assert steps == {round(5 * lora.LONG_FAST.symbol_time, 9)}  # one block of 4/5 coding


def test_a_lora_frame_holds_at_most_255_bytes() -> None:
    with pytest.raises(ValueError, match=r"0\.\.255"):
        lora.airtime_seconds(256, lora.LONG_FAST)


def test_presets_map_to_the_firmware_enum_and_back() -> None:
    for value, preset in lora.PRESETS.items():
        assert lora.preset_for(value) is preset
        assert lora.modem_preset_of(preset) == value
    assert lora.preset_for(lora.ModemPreset.LONG_FAST) is lora.LONG_FAST


def test_contention_slot_on_long_fast_is_28_ms() -> None:
    # 2.5 symbols of channel activity detection + 7.6 ms turnaround and processing
    assert lora.LONG_FAST.slot_time == pytest.approx(0.02808)
