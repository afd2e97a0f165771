"""The firmware's answer to a client's `want_config_id`, in the order the clients assume.

`PhoneAPI::getFromRadio` walks its states: my info, metadata, the node infos (its own first),
the channels, the configs and the module configs; `config_complete_id` follows (sent by the
radio). Only what the Meshtastic client and `meshboard doctor` read is filled in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from meshtastic.protobuf import channel_pb2, config_pb2, mesh_pb2, module_config_pb2

from node.sim.profile import MAX_CHANNELS, RadioProfile, node_id


@dataclass
class NodeEntry:
    """One node in a radio's node database."""

    num: int
    long_name: str
    short_name: str
    public_key: bytes = b""
    channel: int = 0  # the channel index it was heard on (NodeDB::updateUser)


def config_messages(
    num: int,
    profile: RadioProfile,
    *,
    public_key: bytes,
    reboots: int,
    own: NodeEntry,
    nodes: list[NodeEntry],
) -> list[mesh_pb2.FromRadio]:
    """Everything a radio sends a client that asked for its configuration; `own` is its own
    node, `nodes` the others in its node database."""
    messages = [
        mesh_pb2.FromRadio(
            my_info=mesh_pb2.MyNodeInfo(
                my_node_num=num, reboot_count=reboots, min_app_version=30200
            )
        ),
        mesh_pb2.FromRadio(
            metadata=mesh_pb2.DeviceMetadata(
                firmware_version=profile.firmware_version,
                device_state_version=24,
                canShutdown=True,
                hasBluetooth=True,
                role=profile.role,
                hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
                hasPKC=True,
            )
        ),
        node_info(own, last_heard=own_time(profile)),
    ]
    messages += [node_info(node) for node in nodes]
    for index in range(MAX_CHANNELS):
        messages.append(mesh_pb2.FromRadio(channel=channel(profile, index)))
    lora = config_pb2.Config.LoRaConfig(
        use_preset=profile.use_preset,
        modem_preset=profile.modem_preset,
        region=profile.region,
        hop_limit=profile.hop_limit,
        tx_enabled=True,
    )
    for config in (
        config_pb2.Config(device=config_pb2.Config.DeviceConfig(role=profile.role)),
        config_pb2.Config(position=config_pb2.Config.PositionConfig(gps_mode=profile.gps_mode)),
        config_pb2.Config(power=config_pb2.Config.PowerConfig()),
        config_pb2.Config(network=config_pb2.Config.NetworkConfig()),
        config_pb2.Config(display=config_pb2.Config.DisplayConfig()),
        config_pb2.Config(lora=lora),
        config_pb2.Config(bluetooth=config_pb2.Config.BluetoothConfig(enabled=True)),
        config_pb2.Config(security=config_pb2.Config.SecurityConfig(public_key=public_key)),
    ):
        messages.append(mesh_pb2.FromRadio(config=config))
    for module in (
        module_config_pb2.ModuleConfig(mqtt=module_config_pb2.ModuleConfig.MQTTConfig()),
        module_config_pb2.ModuleConfig(serial=module_config_pb2.ModuleConfig.SerialConfig()),
        module_config_pb2.ModuleConfig(telemetry=module_config_pb2.ModuleConfig.TelemetryConfig()),
    ):
        messages.append(mesh_pb2.FromRadio(moduleConfig=module))
    return messages


def channel(profile: RadioProfile, index: int) -> channel_pb2.Channel:
    """Channel `index` as the radio reports it: primary, secondary or disabled."""
    specs = profile.channels
    if index >= len(specs):
        return channel_pb2.Channel(index=index, role=channel_pb2.Channel.Role.DISABLED)
    spec = specs[index]
    roles = channel_pb2.Channel.Role
    role = roles.PRIMARY if index == 0 else roles.SECONDARY
    return channel_pb2.Channel(
        index=index,
        role=role,
        settings=channel_pb2.ChannelSettings(name=spec.name, psk=spec.psk),
    )


def own_time(profile: RadioProfile) -> int:
    """What the firmware puts in its own node info: its clock if it trusts it, else 0."""
    offset = profile.clock_offset
    return 0 if offset is None else int(time.time() + offset)


def node_info(node: NodeEntry, last_heard: int | None = None) -> mesh_pb2.FromRadio:
    user = mesh_pb2.User(
        id=node_id(node.num),
        long_name=node.long_name,
        short_name=node.short_name,
        hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
        public_key=node.public_key,
    )
    heard = int(time.time()) if last_heard is None else last_heard
    return mesh_pb2.FromRadio(
        node_info=mesh_pb2.NodeInfo(num=node.num, user=user, last_heard=heard)
    )
