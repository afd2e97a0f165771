"""The Meshtastic firmware's timing rules, as pure functions of what a radio knows.

Kept apart from the mesh so the numbers can be read and checked against the firmware source
(`RadioInterface.cpp`, `RoutingModule.cpp`) without the simulation around them.
"""

from __future__ import annotations

from meshtastic.protobuf import mesh_pb2, portnums_pb2, telemetry_pb2

from node.sim import lora
from node.sim.router import BROADCAST_NUM

CW_MIN, CW_MAX = 3, 8  # contention window exponents (RadioInterface.h)
SNR_MIN, SNR_MAX = -20, 10  # dB: the range mapped onto the contention window
PROCESSING_TIME = 4.5  # seconds allowed for an ACK to be built and sent back
NUM_RELIABLE_RETX = 3  # attempts in total, the first transmission included
HOP_MAX = 7
MAX_TX_QUEUE = 16


def arduino_map(x: float, in_min: int, in_max: int, out_min: int, out_max: int) -> int:
    """Arduino's integer map(), clamped to the output range."""
    mapped = int((int(x) - in_min) * (out_max - out_min) / (in_max - in_min)) + out_min
    return max(out_min, min(out_max, mapped))


def contention_window(channel_utilization_percent: float) -> int:
    """getTxDelayMsec's window exponent: the busier the channel, the wider."""
    return arduino_map(channel_utilization_percent, 0, 100, CW_MIN, CW_MAX)


def snr_window(snr: float) -> int:
    """getCWsize: a strong signal (a near sender) means a wide window, a late rebroadcast."""
    return arduino_map(snr, SNR_MIN, SNR_MAX, CW_MIN, CW_MAX)


def relay_delay_slots(window: int, draw: int, *, router: bool) -> int:
    """getTxDelayMsecWeighted, in slots; `draw` is random(0, 2*window) for routers and
    random(0, 2**window) for everyone else, who also waits out the routers' whole window."""
    return draw if router else 2 * CW_MAX + draw


def retransmission_timeout(packet: mesh_pb2.MeshPacket, preset: lora.Preset, window: int) -> float:
    """getRetransmissionMsec: two airtimes, a worst-case contention wait and processing."""
    slots: int = 2**window + 2 * CW_MAX + 2 ** ((CW_MAX + CW_MIN) // 2)
    return 2 * lora.packet_airtime(packet, preset) + slots * preset.slot_time + PROCESSING_TIME


def device_metrics_packet(
    num: int,
    packet_id: int,
    *,
    channel_utilization: float,
    air_util_tx: float,
    uptime: int,
    unix_time: int,
) -> mesh_pb2.MeshPacket:
    """DeviceTelemetryModule's report of the radio's own metrics to its connected client."""
    metrics = telemetry_pb2.DeviceMetrics(
        channel_utilization=channel_utilization, air_util_tx=air_util_tx, uptime_seconds=uptime
    )
    report = telemetry_pb2.Telemetry(time=unix_time, device_metrics=metrics)
    packet = mesh_pb2.MeshPacket(
        to=BROADCAST_NUM,
        id=packet_id,
        decoded=mesh_pb2.Data(
            portnum=portnums_pb2.PortNum.TELEMETRY_APP, payload=report.SerializeToString()
        ),
        rx_time=unix_time,
    )
    setattr(packet, "from", num)
    return packet
