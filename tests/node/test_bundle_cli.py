"""`meshboard export`, `import` and `tally` through click's CliRunner: exact output, exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from board.signing import BoardKey, key_path
from board.store.bulletins import Store
from node.cli import cli


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def post(db: Path, *args: str) -> None:
    code, output = invoke("post", *args, "--db", str(db))
    assert code == 0, output


def post_inner(db: Path, *args: str) -> None:
    """Post on ring 1, as a board whose configuration serves it (the others here do not)."""
    config = db.with_name("two-rings.toml")
    config.write_text(
        '[[ring]]\nname = "public"\nchannel = 0\n[[ring]]\nname = "inner"\nchannel = 1\n'
    )
    code, output = invoke("--config", str(config), "post", *args, "--ring", "1", "--db", str(db))
    assert code == 0, output


def rows(db: Path) -> list[tuple[object, ...]]:
    store = Store.open(db)
    try:
        with store.engine.connect() as connection:
            return [
                tuple(row)
                for table in ("bulletin", "tombstone", "share")
                for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
            ]
    finally:
        store.close()


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    """A board with three public bulletins and one of ring 1, exported (public ring only)."""
    here = tmp_path / "here.db"
    post(here, "meal", "Soup at the hall", "--when", "tomorrow 18:00")
    post(here, "tool", "Ladder to lend")
    post(here, "skill", "Bike repair")
    post_inner(here, "meal", "Inner supper")
    bundle = tmp_path / "stick" / "north.mbundle"
    bundle.parent.mkdir()
    code, output = invoke("export", str(bundle), "--db", str(here))
    public = BoardKey.load_or_create(key_path(here)).public
    assert (code, output) == (
        0,
        f"exported 3 bulletins and 0 tombstones of public to {bundle} "
        f"({bundle.stat().st_size} bytes)\nsigned by this board: {public}\n",
    )
    return here, bundle


def test_export_then_import_into_another_board(exported: tuple[Path, Path], tmp_path: Path) -> None:
    here, bundle = exported
    there = tmp_path / "there.db"
    public = BoardKey.load_or_create(key_path(here)).public
    code, output = invoke("import", str(bundle), "--db", str(there))
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith(f"bundle signed by board {public}, exported ")
    assert lines[1] == "3 new, 0 already here, 0 removed by tombstones, 0 skipped as expired"
    code, listed = invoke("list", "--db", str(there), "--json")
    assert sorted(b["text"] for b in json.loads(listed)) == [
        "Bike repair",
        "Ladder to lend",
        "Soup at the hall",
    ]
    before = rows(there)
    code, output = invoke("import", str(bundle), "--db", str(there), "--json")
    report = json.loads(output)
    assert (code, report["new"], report["already"], report["exporter"]) == (0, 0, 3, public)
    assert rows(there) == before


def test_export_json_and_ring_by_name(exported: tuple[Path, Path], tmp_path: Path) -> None:
    here, _ = exported
    out = tmp_path / "public.mbundle"
    code, output = invoke("export", str(out), "--ring", "public", "--json", "--db", str(here))
    record = json.loads(output)
    assert (code, record["rings"], record["bulletins"], record["bytes"]) == (
        0,
        [0],
        3,
        out.stat().st_size,
    )
    code, output = invoke("export", str(out), "--ring", "garden", "--db", str(here))
    assert code == 1  # as every command's unknown ring
    assert "no ring 'garden'; rings: public (0)" in output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: data[:-1], "Error: bundle is truncated\n"),
        (lambda data: data[: len(data) // 2], "Error: bundle is truncated\n"),
        (
            lambda data: data[:70] + bytes([data[70] ^ 1]) + data[71:],
            "Error: bundle signature does not match: the file was changed after export\n",
        ),
        (
            lambda data: data[:-3] + bytes([data[-3] ^ 0x80]) + data[-2:],
            "Error: bundle signature does not match: the file was changed after export\n",
        ),
        (
            lambda data: data[:8] + b"\x07" + data[9:],
            "Error: bundle format version 7 is unknown here (this board reads 1)\n",
        ),
        (lambda data: b"PK\x03\x04" + data, "Error: not a Meshboard bundle\n"),
    ],
)
def test_a_changed_file_is_refused_with_one_line_and_nothing_imported(
    exported: tuple[Path, Path], tmp_path: Path, change: object, message: str
) -> None:
    _, bundle = exported
    there = tmp_path / "there.db"
    post(there, "notice", "Bins moved to thursday")
    before = rows(there)
    assert callable(change)
    bundle.write_bytes(change(bundle.read_bytes()))
    assert invoke("import", str(bundle), "--db", str(there)) == (1, message)
    assert rows(there) == before


def test_a_ring_not_served_is_refused(tmp_path: Path) -> None:
    here, there = tmp_path / "here.db", tmp_path / "there.db"
    post_inner(here, "meal", "Inner supper")
    store = Store.open(here)
    from board.sync.bundle import encode_bundle, export_items

    bulletins, tombstones = export_items(store, [1], datetime.now(UTC))
    key = BoardKey.load_or_create(key_path(here))
    bundle = tmp_path / "inner.mbundle"
    bundle.write_bytes(encode_bundle(key, [1], bulletins, tombstones, datetime.now(UTC)))
    store.close()
    assert invoke("import", str(bundle), "--db", str(there)) == (
        1,
        "Error: bundle holds ring 1, which this board does not serve; nothing imported\n",
    )
    assert rows(there) == []


def test_import_of_a_missing_file(tmp_path: Path) -> None:
    code, output = invoke("import", str(tmp_path / "nope"), "--db", str(tmp_path / "b.db"))
    assert (code, output) == (
        1,
        f"Error: cannot read {tmp_path / 'nope'}: No such file or directory\n",
    )


def test_tally_text_and_json(tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    post(db, "meal", "Soup", "--author", "!00000001")
    post(db, "meal", "Stew", "--author", "!00000002")
    post(db, "tool", "Ladder", "--author", "!00000001")
    post_inner(db, "childcare", "Swap thursday")
    month = datetime.now(UTC).strftime("%Y-%m")
    code, output = invoke("tally", "--db", str(db), "--tz", "UTC")
    assert (code, output) == (
        0,
        "ring public (0), months (UTC)\n"
        "period           meals skills tools lent childcare posters\n"
        f"{month:<16}     2      0     1    0         0       2\n",
    )
    code, output = invoke("tally", "--db", str(db), "--tz", "UTC", "--json", "--ring", "0")
    (record,) = json.loads(output)
    assert record["period"] == month
    assert (record["meals"], record["tools_offered"], record["tools_lent"]) == (2, 1, 0)
    assert (record["childcare"], record["posters"], record["ring_name"]) == (0, 2, "public")
    code, output = invoke("tally", "--db", str(db), "--moon", "--json")
    assert code == 0
    assert json.loads(output)[0]["period"].startswith("moon ")
