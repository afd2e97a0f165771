"""`meshboard moderators --pin` against a simulated radio on a pty, with a real config file.

The keys come from the radio's node database over the real client, the file is the operator's
(comments and all), and what is written must load: `RingSpec.pinned_key` is what the board
checks a `mod` command against.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from board.config import load_config
from node.cli import cli
from node.rings_view import fingerprint
from node.sim.radio import SimulatedRadio
from tests.unprivileged import as_unprivileged, shared_directory

ANN = bytes(range(32))  # !1234abcd's radio key
BOB = bytes(range(100, 132))  # !5678ef01's
OLD = bytes(range(200, 232))  # a key pinned before: another radio's
CONFIG = """\
# Our street's board. Ask Ann before changing anything.
[[ring]]
name = "public"
channel = 0

[[ring]]
name = "garden"
channel = 1
[ring.moderation]
moderators = ["!1234abcd", "!5678ef01"]  # Ann, Bob
starts = "2026-01-05"

# The tools ring is new in May.
[[ring]]
name = "tools"
channel = 2
"""
PINNED = """\
[[ring]]
name = "garden"
channel = 1
[ring.moderation]
moderators = ["!1234abcd"]
[ring.moderation.keys]
"!1234abcd" = "{key}"  # checked with Ann on 3 May

# next: the tools ring
[[ring]]
name = "tools"
channel = 2
"""


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "meshboard.toml"
    path.write_text(CONFIG)
    return path


def test_pin_writes_the_radios_key_keeps_the_comments_and_skips_an_unknown_moderator(
    config: Path, tmp_path: Path
) -> None:
    with SimulatedRadio() as radio:
        radio.add_handheld(0x1234ABCD, "Ann", public_key=ANN)  # Bob's NodeInfo never heard
        code, output = invoke(
            "--config", str(config), "moderators", "--pin", "--port", radio.port, stdin="y\n"
        )
    assert code == 0, output
    assert f"  !1234abcd  {fingerprint(ANN)}  new, to pin\n      radio key: {b64(ANN)}" in output
    assert "  !5678ef01  no key: cannot pin\n" in output
    assert "ask the moderator to send" in output
    assert f"pin 1 key(s) in {config}? [y/N]: y" in output
    assert "  garden: 1 of 2 moderator key(s)" in output

    text = config.read_text()
    assert text.startswith(CONFIG.split("# The tools ring")[0].rstrip("\n"))  # all kept
    assert "# Our street's board. Ask Ann before changing anything." in text
    assert 'moderators = ["!1234abcd", "!5678ef01"]  # Ann, Bob' in text
    keys = f'[ring.moderation.keys]\n"!1234abcd" = "{b64(ANN)}"\n'
    # In the garden ring: before the comment that introduces the next ring, not after it.
    assert f'{keys}\n# The tools ring is new in May.\n[[ring]]\nname = "tools"' in text
    garden = load_config(config).ring("garden")
    assert garden.pinned_key("!1234abcd") == ANN
    assert garden.pinned_key("!5678ef01") is None
    assert load_config(config).ring("tools").channel == 2

    db = str(tmp_path / "board.db")
    code, output = invoke("--config", str(config), "moderators", "--db", db, "--tz", "UTC")
    assert code == 0, output
    assert f"  radio keys pinned: !1234abcd {fingerprint(ANN)}; !5678ef01 not pinned" in output
    code, output = invoke("--config", str(config), "moderators", "--ring", "garden", "--json")
    assert code == 0, output
    [ring] = json.loads(output)["rings"]
    assert ring["keys"] == [
        {"node": "!1234abcd", "pinned": True, "key": b64(ANN), "fingerprint": fingerprint(ANN)},
        {"node": "!5678ef01", "pinned": False, "key": None, "fingerprint": None},
    ]


def test_a_second_pin_joins_the_keys_table_and_answering_no_writes_nothing(
    config: Path,
) -> None:
    with SimulatedRadio() as radio:
        radio.add_handheld(0x1234ABCD, "Ann", public_key=ANN)
        args = ["--config", str(config), "moderators", "--pin", "--port", radio.port]
        assert invoke(*args, "--yes")[0] == 0
        radio.add_handheld(0x5678EF01, "Bob", public_key=BOB)
        before = config.read_text()
        code, output = invoke(*args, stdin="n\n")
        assert (code, output.splitlines()[-1]) == (1, "Error: nothing written")
        assert f"  !1234abcd  {fingerprint(ANN)}  pinned already, the same" in output
        assert config.read_text() == before
        code, output = invoke(*args, "--yes")
        assert code == 0, output
        code, again = invoke(*args, "--yes")  # all pinned: nothing to do
    assert (code, again.splitlines()[-1]) == (0, f"nothing to write to {config}")
    keys = f'"!1234abcd" = "{b64(ANN)}"\n"!5678ef01" = "{b64(BOB)}"\n\n# The tools ring'
    assert keys in config.read_text()
    garden = load_config(config).ring("garden")
    assert dict(garden.pinned_keys) == {"!1234abcd": ANN, "!5678ef01": BOB}


def test_a_pinned_key_that_differs_is_reported_and_changed_only_with_replace(
    tmp_path: Path,
) -> None:
    config = tmp_path / "meshboard.toml"
    config.write_text(PINNED.format(key=b64(OLD)))
    before = config.read_text()
    with SimulatedRadio() as radio:
        radio.add_handheld(0x1234ABCD, "Ann?", public_key=ANN)
        args = ["--config", str(config), "moderators", "--pin", "--port", radio.port, "--yes"]
        code, output = invoke(*args)
        assert code == 1, output
        assert f"  !1234abcd  {fingerprint(ANN)}  DIFFERS FROM THE PINNED KEY" in output
        assert f"      pinned:    {b64(OLD)}" in output
        assert "impostor" in output
        assert output.splitlines()[-1].startswith(
            "Error: the radio's key differs from the pinned one for !1234abcd (garden); "
            "the pin is unchanged."
        )
        assert config.read_text() == before
        assert load_config(config).ring("garden").pinned_key("!1234abcd") == OLD

        code, output = invoke(*args, "--replace")
    assert code == 0, output
    assert load_config(config).ring("garden").pinned_key("!1234abcd") == ANN
    assert config.read_text() == before.replace(b64(OLD), b64(ANN))  # the comment stays


def test_a_port_without_a_radio_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    port = str(tmp_path / "ttyACM9")
    code, output = invoke("--config", str(config), "moderators", "--pin", "--port", port)
    assert code == 1
    assert output.startswith(f"Error: no radio answered on {port}: ")
    assert "sudo systemctl stop meshboard" in output
    assert config.read_text() == CONFIG


def test_pin_needs_a_config_file_a_port_and_a_ring_with_moderators(
    config: Path, tmp_path: Path
) -> None:
    port = str(tmp_path / "ttyACM9")
    code, output = invoke("moderators", "--pin", "--port", port)
    assert code == 1
    assert output.startswith("Error: --pin writes the keys into the configuration file")
    assert "--config FILE" in output
    code, output = invoke("--config", str(config), "moderators", "--pin")
    assert code == 2
    assert "--pin needs --port" in output
    code, output = invoke(
        "--config", str(config), "moderators", "--pin", "--port", port, "--ring", "tools"
    )
    assert (code, output) == (
        1,
        f"Error: tools: no moderators listed in {config}, so no keys to pin\n",
    )


def test_a_config_file_that_cannot_be_written_is_refused_before_the_radio() -> None:
    with shared_directory() as directory:
        config = directory / "meshboard.toml"
        config.write_text(CONFIG)
        os.chmod(config, 0o444)
        port = str(directory / "ttyACM9")

        def run() -> str:
            args = ["--config", str(config), "moderators", "--pin", "--port", port]
            return CliRunner().invoke(cli, args).output

        output = as_unprivileged(run)
        assert (
            output
            == f"Error: cannot write {config}: permission denied (sudo, or the file's owner)\n"
        )
        assert config.read_text() == CONFIG
