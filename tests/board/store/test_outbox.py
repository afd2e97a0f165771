"""The outbox's queue in SQLite: what is written survives a restart, in order, with its attempts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from board.messages import Outgoing, Reply
from board.store.bulletins import Store
from board.store.outbox import OutboxStore
from tests.board.conftest import MONDAY_10H

ANA = "!1234abcd"


def test_packets_come_back_in_queue_order_with_their_contents(store: Store) -> None:
    queue = OutboxStore(store)
    reply = Reply(to=ANA, ring=1, text="ok #a3f Grød med smør 🍲")
    sync = Outgoing(ring=0, payload=b"\xb0\x01\x00\xff")
    first = queue.add(reply, MONDAY_10H)
    second = queue.add(sync, MONDAY_10H + timedelta(seconds=1))
    assert [(q.id, q.packet, q.queued_at, q.attempts) for q in queue.pending()] == [
        (first.id, reply, MONDAY_10H, 0),
        (second.id, sync, MONDAY_10H + timedelta(seconds=1), 0),
    ]
    assert [q.kind for q in queue.pending()] == ["reply", "board"]


def test_attempts_and_their_packet_ids_survive_reopening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    store = Store.open(path)
    queue = OutboxStore(store)
    queued = queue.add(Reply(to=ANA, ring=0, text="no bulletins"), MONDAY_10H)
    queue.sent(queued.id, 0x1A2B3C4D, MONDAY_10H + timedelta(seconds=2))
    queue.sent(queued.id, 0x0000BEEF, MONDAY_10H + timedelta(seconds=40))
    store.close()  # a restart; kill -9 leaves the same file behind (WAL, synchronous=FULL)

    reopened = Store.open(path)
    [again] = OutboxStore(reopened).pending()
    reopened.close()
    assert again.packet == Reply(to=ANA, ring=0, text="no bulletins")
    assert (again.attempts, again.packet_ids) == (2, (0x1A2B3C4D, 0x0000BEEF))


def test_remove_forgets_the_packet_and_its_attempts(store: Store) -> None:
    queue = OutboxStore(store)
    done = queue.add(Reply(to=ANA, ring=0, text="deleted #a3f"), MONDAY_10H)
    kept = queue.add(Reply(to=ANA, ring=0, text="no bulletins"), MONDAY_10H)
    queue.sent(done.id, 77, MONDAY_10H)
    queue.sent(kept.id, 77, MONDAY_10H)  # the client's random ids can repeat: the latest wins
    assert {q.id: q.packet_ids for q in queue.pending()} == {done.id: (), kept.id: (77,)}
    queue.remove(done.id)
    assert [(q.id, q.attempts) for q in queue.pending()] == [(kept.id, 1)]
