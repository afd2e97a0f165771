"""What a simulated radio is and what it keeps: its node's name, channels and reports, the
packets its client handed over, and its counts.

Kept apart from the radio itself so the mesh, its handhelds and the tests can describe radios
without the pty machinery; `node.sim.radio` imports these names too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from meshtastic.protobuf import config_pb2, mesh_pb2, portnums_pb2

from node.sim.router import Outcome, stand_in_key
from node.sim.rules import FIRMWARE_VERSION, ActiveRules, FirmwareRules

MAX_CHANNELS = 8
PUBLIC_PSK = b"\x01"  # "AQ==": the well-known default key of the public channel
Region = config_pb2.Config.LoRaConfig.RegionCode
Preset = config_pb2.Config.LoRaConfig.ModemPreset
Role = config_pb2.Config.DeviceConfig.Role
GpsMode = config_pb2.Config.PositionConfig.GpsMode


def node_id(num: int) -> str:
    """The `!a1b2c3d4` form people and the client use for a node number."""
    return f"!{num:08x}"


@dataclass(frozen=True)
class ChannelSpec:
    """One configured channel; index 0 is the primary one."""

    name: str = ""
    psk: bytes = PUBLIC_PSK


@dataclass(frozen=True)
class RadioProfile:
    """What the radio reports about itself during the handshake."""

    long_name: str = "Meshboard sim"
    short_name: str = "MBsm"
    firmware_version: str = FIRMWARE_VERSION
    region: int = Region.EU_868
    modem_preset: int = Preset.LONG_FAST
    use_preset: bool = True  # False: custom bandwidth, spreading factor and coding rate
    role: int = Role.CLIENT
    hop_limit: int = 3
    channels: tuple[ChannelSpec, ...] = (ChannelSpec(),)
    # None: a key made up from the node number, as a 2.5+ radio makes its key pair when it
    # first starts; b"": no key pair (older firmware, or a key lost), so no PKI.
    public_key: bytes | None = None
    gps_mode: int = GpsMode.DISABLED
    # The radio's clock against the host's, in seconds; None: it does not know the time (no
    # GPS fix, no phone, no --set-time), and its own node info then says last_heard 0.
    clock_offset: float | None = 0.0
    rules: FirmwareRules = field(default_factory=FirmwareRules)

    def active_rules(self) -> ActiveRules:
        """The firmware rules this radio plays: its version's, with its switches."""
        return self.rules.resolve(self.firmware_version)

    def key_of(self, num: int) -> bytes:
        """The public key a node `num` with this profile has."""
        return stand_in_key(num) if self.public_key is None else self.public_key


@dataclass(frozen=True)
class Transmission:
    """A packet the client handed to the radio and the radio queued for the air, as the client
    wrote it (from stamped, channel index its own), with its radio clock's monotonic time."""

    packet: mesh_pb2.MeshPacket
    at: float

    @property
    def text(self) -> str | None:
        decoded = self.packet.decoded
        if decoded.portnum != portnums_pb2.PortNum.TEXT_MESSAGE_APP:
            return None
        return str(decoded.payload.decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class Refusal:
    """A packet the client handed over that went nothing further, and why."""

    packet: mesh_pb2.MeshPacket
    at: float
    reason: str  # "repeated id", "rate limited", "refused", or the Routing.Error / "queue full"


class RadioRouter(Protocol):
    """Where the radio's Router sends what it originates: empty air, or a `Mesh`."""

    def send_local(self, packet: mesh_pb2.MeshPacket) -> Outcome:
        """`Router::sendLocal` for a packet from this radio (a copy is encoded and queued)."""
        ...

    def queue_status(self) -> tuple[int, int]:
        """(free, maxlen) of the TX queue now."""
        ...


@dataclass
class RadioCounters:
    """What one simulated radio counted."""

    frames_in: int = 0
    undecodable_frames: int = 0
    packets_from_client: int = 0
    packets_to_client: int = 0
    handshakes: int = 0
    telemetry_reports: int = 0
    queue_statuses: int = 0  # QueueStatus messages sent to the client
    heartbeats: int = 0  # ToRadio heartbeats from the client
    repeated_ids: int = 0  # client packets ignored: id among the last 20 (wasSeenRecently)
    rate_limited: int = 0  # client packets refused by the per-port rate limits
    refused: int = 0  # client packets the Router refused (duty cycle, PKI, full queue, ...)
    legacy_dms_dropped: int = 0  # channel-key text DMs to this radio ("Rejecting legacy DM")
    undecodable: int = 0  # heard packets this radio could not decrypt
    extra: dict[str, int] = field(default_factory=dict)
