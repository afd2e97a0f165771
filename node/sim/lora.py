"""LoRa time on air for Meshtastic's modem presets.

Every figure the simulated mesh reports (duty cycle, channel utilisation, airtime by port) rests
on how long one packet occupies the channel; this module is the one place that knows it. The
formula is Semtech's (AN1200.13 / SX1276 datasheet §4.1.1.7); the preset parameters and the
contention slot time are the Meshtastic firmware's (`modemPresetToParams`,
`RadioInterface::computeSlotTimeMsec`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meshtastic.protobuf import config_pb2, mesh_pb2

ModemPreset = config_pb2.Config.LoRaConfig.ModemPreset

MESHTASTIC_HEADER_LEN = 16  # PacketHeader: to, from, id, flags, channel hash, next hop, relay node
PKI_OVERHEAD = 12  # PKI-encrypted DMs: 8-byte authentication tag + 4-byte extra nonce
MAX_LORA_PAYLOAD = 255  # the SX12xx FIFO
PREAMBLE_SYMBOLS = 16  # the firmware's preambleLengthDefault (sub-GHz)
LOW_DATA_RATE_SYMBOL_TIME = 0.016  # seconds; above it the modem must use LDRO
CAD_SYMBOLS = 2.5  # SX126x channel activity detection: 2 symbols + half a symbol
SLOT_OVERHEAD = 0.0076  # propagation, Tx/Rx turnaround and MAC processing (firmware: 7.6 ms)


@dataclass(frozen=True)
class Preset:
    """One LoRa modulation: spreading factor, bandwidth and coding rate 4/`coding_rate`."""

    name: str
    spreading_factor: int
    bandwidth_hz: float
    coding_rate: int  # the denominator: 5..8 for 4/5..4/8
    preamble_symbols: int = PREAMBLE_SYMBOLS
    explicit_header: bool = True
    crc: bool = True

    @property
    def symbol_time(self) -> float:
        """Seconds per symbol: 2^SF / BW."""
        return float(2**self.spreading_factor) / self.bandwidth_hz

    @property
    def bit_rate(self) -> float:
        """Raw bits per second: SF bits per symbol, less the coding overhead."""
        return self.spreading_factor * 4 / self.coding_rate / self.symbol_time

    @property
    def low_data_rate_optimize(self) -> bool:
        """The radio driver switches LDRO on for symbols longer than 16 ms."""
        return self.symbol_time > LOW_DATA_RATE_SYMBOL_TIME

    @property
    def slot_time(self) -> float:
        """The firmware's contention slot: time to detect that someone else started sending."""
        return CAD_SYMBOLS * self.symbol_time + SLOT_OVERHEAD


SHORT_TURBO = Preset("ShortTurbo", 7, 500_000, 5)
SHORT_FAST = Preset("ShortFast", 7, 250_000, 5)
SHORT_SLOW = Preset("ShortSlow", 8, 250_000, 5)
MEDIUM_FAST = Preset("MediumFast", 9, 250_000, 5)
MEDIUM_SLOW = Preset("MediumSlow", 10, 250_000, 5)
LONG_FAST = Preset("LongFast", 11, 250_000, 5)
LONG_MODERATE = Preset("LongModerate", 11, 125_000, 8)
LONG_SLOW = Preset("LongSlow", 12, 125_000, 8)

PRESETS: dict[int, Preset] = {
    ModemPreset.SHORT_TURBO: SHORT_TURBO,
    ModemPreset.SHORT_FAST: SHORT_FAST,
    ModemPreset.SHORT_SLOW: SHORT_SLOW,
    ModemPreset.MEDIUM_FAST: MEDIUM_FAST,
    ModemPreset.MEDIUM_SLOW: MEDIUM_SLOW,
    ModemPreset.LONG_FAST: LONG_FAST,
    ModemPreset.LONG_MODERATE: LONG_MODERATE,
    ModemPreset.LONG_SLOW: LONG_SLOW,
}


def preset_for(modem_preset: int) -> Preset:
    """The parameters for a `Config.LoRaConfig.ModemPreset`; unknown ones fall back to LongFast,
    as the firmware does."""
    return PRESETS.get(modem_preset, LONG_FAST)


def modem_preset_of(preset: Preset) -> int:
    """The `ModemPreset` enum value a radio on `preset` reports in its LoRa config."""
    for value, known in PRESETS.items():
        if known == preset:
            return value
    raise ValueError(f"{preset.name} is not one of the firmware's presets")


def payload_symbols(payload_bytes: int, preset: Preset) -> int:
    """Symbols after the preamble, including the 8 of the header and sync."""
    if not 0 <= payload_bytes <= MAX_LORA_PAYLOAD:
        raise ValueError(f"a LoRa payload is 0..{MAX_LORA_PAYLOAD} bytes, not {payload_bytes}")
    sf = preset.spreading_factor
    de = 1 if preset.low_data_rate_optimize else 0
    ih = 0 if preset.explicit_header else 1
    crc = 1 if preset.crc else 0
    numerator = 8 * payload_bytes - 4 * sf + 28 + 16 * crc - 20 * ih
    blocks = math.ceil(numerator / (4 * (sf - 2 * de)))
    return 8 + max(blocks * preset.coding_rate, 0)


def airtime_seconds(payload_bytes: int, preset: Preset = LONG_FAST) -> float:
    """Time on air of one LoRa frame carrying `payload_bytes` (Semtech's formula)."""
    preamble = (preset.preamble_symbols + 4.25) * preset.symbol_time
    return preamble + payload_symbols(payload_bytes, preset) * preset.symbol_time


def on_air_bytes(packet: mesh_pb2.MeshPacket) -> int:
    """The LoRa payload of a Meshtastic packet: header plus the encrypted `Data`.

    Channel encryption is AES-CTR, so the ciphertext is as long as the serialized `Data`;
    PKI-encrypted direct messages carry 12 bytes more.
    """
    if packet.HasField("decoded"):
        body = len(packet.decoded.SerializeToString())
    else:
        body = len(packet.encrypted)
    if packet.pki_encrypted:
        body += PKI_OVERHEAD
    return MESHTASTIC_HEADER_LEN + body


def packet_airtime(packet: mesh_pb2.MeshPacket, preset: Preset = LONG_FAST) -> float:
    """Time on air of a Meshtastic packet."""
    return airtime_seconds(on_air_bytes(packet), preset)
