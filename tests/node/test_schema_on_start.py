"""`meshboard run` on a database from before schema versioning: migrated on start, then served."""

from __future__ import annotations

from pathlib import Path

from board.store.bulletins import Store
from board.store.moderation import ModerationStore
from board.store.schema import LATEST
from node.sim.radio import SimulatedRadio
from tests.board.store.test_schema import load, user_version
from tests.node.daemon_process import StartDaemon

HANDHELD = 0x1234ABCD


def test_the_daemon_migrates_an_old_database_on_start(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    db = load(tmp_path / "board.db")
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        daemon = start_daemon(radio.port, db)
        daemon.wait_for_log(f"kept a copy of {db} (schema v1) in {db}.v1.bak")
        for version in range(2, LATEST + 1):
            daemon.wait_for_log(f"migrated {db} from schema v{version - 1} to v{version}")
        radio.wait_connected(timeout=30)
        radio.receive_text(HANDHELD, "help")
        [menu] = radio.wait_for_texts(HANDHELD, 1, timeout=30)
        assert "post <type>" in menu
        assert daemon.stop() == 0
    assert user_version(db) == LATEST
    store = Store.open(db)
    try:  # the audit log is never purged, whatever the day the test runs
        assert len(ModerationStore(store.engine).audit()) == 2
    finally:
        store.close()
