"""`meshboard demo`, the README's first command: a post spreads across a simulated street."""

from __future__ import annotations

import re

from click.testing import CliRunner

from node.cli import cli


def test_demo_spreads_a_post_from_one_end_of_the_street_to_the_other() -> None:
    result = CliRunner().invoke(cli, ["demo", "--nodes", "4", "--tz", "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    ref = re.search(r"board-0 → Ana: ok #(\w+) meal tmrw 18:00", result.output)
    assert ref, result.output
    for board in range(4):
        assert f"board-{board} has #{ref[1]}" in result.output
    assert f"board-3 → Ben: #{ref[1]} tmrw 18:00: Soup at the hall" in result.output
    assert result.output.endswith("demo done: all 4 boards hold the post\n")
