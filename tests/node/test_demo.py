"""`meshboard demo`, the README's first command, end to end."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from node.cli import cli


def test_demo_posts_lists_and_reads_a_meal(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(cli, ["demo", "--db", str(db), "--tz", "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    ref = re.search(r"board → Ana: ok #(\w+) meal tmrw 18:00", result.output)
    assert ref, result.output
    assert f"board → Ana: #{ref[1]} tmrw 18:00: Soup at the hall" in result.output
    assert result.output.endswith("demo done: the board holds 1 bulletin(s)\n")
    assert db.exists()
