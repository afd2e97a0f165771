"""A ring's MQTT bridge in the configuration file: where the broker is, and how to log in."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from board.config import EXAMPLE, BridgeSpec, ConfigError, load_config, parse_config

RINGS = '[[ring]]\nname = "public"\nchannel = 0\n[[ring]]\nname = "garden"\nchannel = 1\n'


def _garden(lines: str, *, source: Path | None = None) -> BridgeSpec | None:
    config = parse_config(tomllib.loads(RINGS + lines), source=source)
    return config.ring("garden").bridge


def test_a_ring_without_bridge_is_over_the_air_only() -> None:
    config = parse_config(tomllib.loads(RINGS))
    assert all(spec.bridge is None for spec in config.rings)
    assert config.bridged == ()


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.example", "broker.example", 1883, False),
        ("mqtts://broker.example", "broker.example", 8883, True),
        ("mqtts://broker.example/", "broker.example", 8883, True),
        ("mqtt://10.42.0.1:1884", "10.42.0.1", 1884, False),
        ("mqtts://Broker.Example:443", "broker.example", 443, True),
        ("mqtt://[fd00::1]:1883", "fd00::1", 1883, False),
    ],
)
def test_the_broker_address_and_default_ports(url: str, host: str, port: int, tls: bool) -> None:
    assert _garden(f'bridge = "{url}"\n') == BridgeSpec(url, host, port, tls)


def test_bridged_lists_only_served_rings_with_a_bridge() -> None:
    config = parse_config(
        tomllib.loads(
            RINGS
            + 'bridge = "mqtts://broker.example"\n'
            + '[[ring]]\nname = "elders"\nchannel = 2\nserve = false\n'
            + 'bridge = "mqtts://broker.example"\n'
        )
    )
    assert [spec.name for spec in config.bridged] == ["garden"]


def test_login_settings_are_kept_as_written(tmp_path: Path) -> None:
    bridge = _garden(
        'bridge = "mqtts://broker.example:8883"\n'
        'bridge_username = "garden-board"\n'
        'bridge_password_file = "/etc/meshboard/broker-password"\n'
        'bridge_ca_file = "/etc/meshboard/broker-ca.pem"\n',
        source=tmp_path / "meshboard.toml",
    )
    assert bridge == BridgeSpec(
        url="mqtts://broker.example:8883",
        host="broker.example",
        port=8883,
        tls=True,
        username="garden-board",
        password_file=Path("/etc/meshboard/broker-password"),
        ca_file=Path("/etc/meshboard/broker-ca.pem"),
    )


def test_relative_files_are_found_beside_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "meshboard.toml"
    path.parent.mkdir()
    path.write_text(
        RINGS + 'bridge = "mqtts://broker.example"\nbridge_username = "garden-board"\n'
        'bridge_password_file = "secrets/broker-password"\nbridge_ca_file = "ca.pem"\n'
    )
    bridge = load_config(path).ring("garden").bridge  # neither file exists: none is read
    assert bridge is not None
    assert bridge.password_file == tmp_path / "etc" / "secrets" / "broker-password"
    assert bridge.ca_file == tmp_path / "etc" / "ca.pem"


def test_without_a_known_file_relative_paths_are_kept_as_written() -> None:
    bridge = _garden(
        'bridge = "mqtts://broker.example"\nbridge_username = "u"\n'
        'bridge_password_file = "broker-password"\n'
    )
    assert bridge is not None
    assert bridge.password_file == Path("broker-password")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('bridge = "ws://broker.example"\n', "it starts with mqtt:// or mqtts://"),
        ('bridge = "https://broker.example"\n', "is not an MQTT broker address"),
        ('bridge = "broker.example:1883"\n', "is not an MQTT broker address"),
        ('bridge = "mqtt:broker.example"\n', "is not an MQTT broker address"),
        ("bridge = 1883\n", 'must be a broker address like "mqtts://broker.example:8883"'),
        ('bridge = ""\n', "must be a broker address like"),
        ('bridge = "mqtt://"\n', "names no broker host, as in mqtt://HOST"),
        ('bridge = "mqtts://:8883"\n', "names no broker host, as in mqtts://HOST"),
        ('bridge = "mqtt://broker example"\n', "has a space in it"),
        ('bridge = "mqtt://broker.example/meshboard"\n', "has a path, query or fragment"),
        ('bridge = "mqtt://broker.example?x=1"\n', "has a path, query or fragment"),
        ('bridge = "mqtt://broker.example#top"\n', "has a path, query or fragment"),
        (
            'bridge = "mqtts://board:hunter2@broker.example"\n',
            "use bridge_username and bridge_password_file, a password does not belong in a "
            "config file",
        ),
        ('bridge = "mqtt://board@broker.example"\n', "has a user name or password in it"),
        ('bridge = "mqtt://broker.example:0"\n', "has a bad port: it is a number from 1 to 65535"),
        ('bridge = "mqtt://broker.example:65536"\n', "has a bad port"),
        ('bridge = "mqtt://broker.example:mqtt"\n', "has a bad port"),
        ('bridge = "mqtt://broker.example:"\n', "has a bad port"),
        ('bridge_username = "u"\n', 'bridge_username without bridge = "mqtts://HOST:PORT"'),
        ('bridge_ca_file = "ca.pem"\n', "bridge_ca_file without bridge"),
        (
            'bridge = "mqtt://broker.example"\nbridge_ca_file = "ca.pem"\n',
            "bridge_ca_file is for TLS, but 'mqtt://broker.example' is plain mqtt://: use mqtts://",
        ),
        (
            'bridge = "mqtts://broker.example"\nbridge_password_file = "pw"\n',
            "bridge_password_file needs bridge_username",
        ),
        ('bridge = "mqtts://b.example"\nbridge_username = ""\n', "bridge_username must be a"),
        (
            'bridge = "mqtts://b.example"\nbridge_username = "u"\nbridge_password_file = ""\n',
            "bridge_password_file must be a file's path, got ''",
        ),
        ('bridge = "mqtts://b.example"\nbridge_ca_file = ""\n', "bridge_ca_file must be a file"),
    ],
)
def test_a_mistake_in_the_bridge_is_named(lines: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        _garden(lines)
    assert str(caught.value).startswith("ring 'garden': ")


def test_an_unknown_bridge_key_is_refused_like_any_other() -> None:
    with pytest.raises(ConfigError, match=re.escape("[[ring]] #2: unknown key 'bridge_topic'")):
        _garden('bridge = "mqtts://b.example"\nbridge_topic = "x"\n')


def test_a_mistake_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "meshboard.toml"
    path.write_text(RINGS + 'bridge = "mqtt://broker.example/x"\n')
    with pytest.raises(ConfigError, match=re.escape(f"{path}: ring 'garden': bridge: ")):
        load_config(path)


def test_the_example_shows_the_bridge_commented_out(tmp_path: Path) -> None:
    assert '# bridge = "mqtts://broker.example:8883"' in EXAMPLE
    uncommented = EXAMPLE.replace("# bridge", "bridge")
    path = tmp_path / "meshboard.toml"
    path.write_text(uncommented)
    config = load_config(path)
    assert [spec.name for spec in config.bridged] == ["garden"]
    assert config.ring("garden").bridge == BridgeSpec(
        url="mqtts://broker.example:8883",
        host="broker.example",
        port=8883,
        tls=True,
        username="garden-board",
        password_file=Path("/etc/meshboard/broker-password"),
        ca_file=Path("/etc/meshboard/broker-ca.pem"),
    )
