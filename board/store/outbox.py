"""The outbox's queue in the board's database: what the board still owes the air.

Every packet is written here before it is sent, so a reply a person is waiting for survives
kill -9, power loss and a restart. Each change is one transaction: queued, one attempt handed to
the radio (with the radio's packet id), done. Because attempts carry their packet ids, an ACK the
radio delivers after a restart still finds its reply, and the reply is not sent a second time.

A kill between handing a packet to the radio and recording that attempt (the client's 100 ms
write) means the packet goes out again after the restart: recording first would not help, since
the packet id that matches the ACK is only known once the client has sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, col, delete, select, update

from board.messages import Outgoing, Packet, Reply
from board.store.bulletins import Store
from board.store.tables import OutboxRow, OutboxSendRow

Kind = Literal["reply", "board"]


@dataclass(frozen=True)
class Queued:
    """One packet of the queue, as the outbox loads it."""

    id: int
    packet: Packet
    queued_at: datetime
    attempts: int = 0
    packet_ids: tuple[int, ...] = ()  # of the attempts, oldest first

    @property
    def kind(self) -> Kind:
        return "reply" if isinstance(self.packet, Reply) else "board"


def _packet(row: OutboxRow) -> Packet:
    if row.kind == "reply" and row.destination is not None:
        return Reply(to=row.destination, ring=row.ring, text=row.payload.decode("utf-8"))
    if row.kind == "board":
        return Outgoing(ring=row.ring, payload=row.payload)
    raise ValueError(f"outbox row {row.id} has an unknown kind {row.kind!r}")


class OutboxStore:
    """The outbox tables in the database a `Store` opened (its pragmas and locking apply)."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def add(self, packet: Packet, now: datetime) -> Queued:
        """Queue a packet; it is on disk when this returns."""
        if isinstance(packet, Reply):
            row = OutboxRow(
                kind="reply",
                ring=packet.ring,
                destination=packet.to,
                payload=packet.text.encode("utf-8"),
                queued_at=now.timestamp(),
            )
        else:
            row = OutboxRow(
                kind="board", ring=packet.ring, payload=packet.payload, queued_at=now.timestamp()
            )
        with Session(self.engine) as session, session.begin():
            session.add(row)
            session.flush()
            assert row.id is not None
            item_id = row.id
        return Queued(item_id, packet, now)

    def pending(self) -> list[Queued]:
        """Everything still queued, oldest first, with the packet ids of its attempts."""
        with Session(self.engine) as session, session.begin():
            ids: dict[int, list[int]] = {}
            for send in session.exec(select(OutboxSendRow).order_by(col(OutboxSendRow.sent_at))):
                ids.setdefault(send.item_id, []).append(send.packet_id)
            return [
                Queued(
                    id=row.id,
                    packet=_packet(row),
                    queued_at=datetime.fromtimestamp(row.queued_at, UTC),
                    attempts=row.attempts,
                    packet_ids=tuple(ids.get(row.id, ())),
                )
                for row in session.exec(select(OutboxRow).order_by(col(OutboxRow.id)))
                if row.id is not None
            ]

    def sent(self, item_id: int, packet_id: int, now: datetime) -> None:
        """Record one attempt that the radio accepted as `packet_id`."""
        send = {"packet_id": packet_id, "item_id": item_id, "sent_at": now.timestamp()}
        with Session(self.engine) as session, session.begin():
            session.exec(
                update(OutboxRow)
                .where(col(OutboxRow.id) == item_id)
                .values(attempts=OutboxRow.attempts + 1)
            )
            # Packet ids are random 32-bit numbers: a clash with a forgotten attempt moves it.
            session.exec(
                insert(OutboxSendRow)
                .values(send)
                .on_conflict_do_update(index_elements=["packet_id"], set_=send)
            )

    def refused(self, item_id: int, packet_id: int) -> None:
        """The radio did not send attempt `packet_id` after all: it does not count."""
        with Session(self.engine) as session, session.begin():
            session.exec(
                update(OutboxRow)
                .where(col(OutboxRow.id) == item_id, col(OutboxRow.attempts) > 0)
                .values(attempts=OutboxRow.attempts - 1)
            )
            session.exec(delete(OutboxSendRow).where(col(OutboxSendRow.packet_id) == packet_id))

    def remove(self, item_id: int) -> None:
        """Forget a packet: delivered, handed over (board plane), dropped or given up."""
        with Session(self.engine) as session, session.begin():
            session.exec(delete(OutboxSendRow).where(col(OutboxSendRow.item_id) == item_id))
            session.exec(delete(OutboxRow).where(col(OutboxRow.id) == item_id))
