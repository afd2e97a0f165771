"""The persisted outbox: replies are on disk before they are sent, retried until acknowledged,
given up with a warning, and neither lost nor sent twice across a restart or a radio outage.

The board is the real daemon on the real meshtastic client over a pty; the ACKs and NAKs are
the simulated firmware's. A few tests drive the `Outbox` alone, with a send function that plays
a radio, where the real one cannot be made to do the thing under test on demand.
"""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.pool import StaticPool

from board.airtime import AirtimeBudget
from board.handheld.commands import BoardConfig
from board.messages import Outgoing, Reply
from board.store.bulletins import Store
from board.store.outbox import OutboxStore, Queued
from node.clock import Clock
from node.daemon import Daemon, packet_airtime
from node.demo.neighbourhood import Neighbourhood, ask
from node.link import Delivery, LinkDown, LinkFactory
from node.meshtastic_link import MeshtasticLink
from node.outbox import MIN_TEXT_INTERVAL, Outbox, OutboxTiming
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import SimulatedRadio, node_id
from node.supervisor import SupervisorConfig
from tests.conftest import HANDHELD, OTHER_HANDHELD

ANA = node_id(HANDHELD)
BEN = node_id(OTHER_HANDHELD)
QUICK = OutboxTiming(link_retry=0.1)
QUICK_RECONNECT = SupervisorConfig(first_delay=0.05, max_delay=0.5)


class SwitchableLink(MeshtasticLink):
    """The production link, with a switch that makes every send fail as an unplugged radio's."""

    def __init__(self, port: str, refusing: threading.Event) -> None:
        super().__init__(port)
        self.refusing = refusing

    def send_text(self, text: str, destination: str, channel: int) -> int:
        if self.refusing.is_set():
            raise LinkDown("radio unplugged (test)")
        return super().send_text(text, destination, channel)

    def send_board(self, payload: bytes, channel: int) -> int:
        if self.refusing.is_set():
            raise LinkDown("radio unplugged (test)")
        return super().send_board(payload, channel)


class RadioSwitch:
    """Connects switchable links; while `refusing` is set, each one's sends fail.

    A failed send makes the daemon's supervisor reconnect, so the switch outlives any one link.
    """

    def __init__(self, port: str) -> None:
        self.port = port
        self.refusing = threading.Event()

    def __call__(self) -> MeshtasticLink:
        return SwitchableLink(self.port, self.refusing)


@contextmanager
def serving(
    radio: str | LinkFactory,
    db_path: Path,
    *,
    timing: OutboxTiming = QUICK,
    text_interval: float = MIN_TEXT_INTERVAL,
) -> Iterator[Store]:
    """A board daemon on `radio` and the database at `db_path`, until the block ends."""
    store = Store.open(db_path)
    daemon = Daemon.assemble(
        radio,
        store,
        board=BoardConfig(),
        text_interval=text_interval,
        outbox_timing=timing,
        supervision=QUICK_RECONNECT,
    )
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), name="test-daemon")
    thread.start()
    try:
        assert daemon.connected.wait(15), "daemon did not connect to the simulated radio"
        yield store
    finally:
        stop.set()
        thread.join(timeout=15)
        store.close()
    assert not thread.is_alive(), "daemon did not stop"


def queued_replies(store: Store) -> list[Queued]:
    return [q for q in OutboxStore(store).pending() if q.kind == "reply"]


def eventually(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def gave_up(caplog: pytest.LogCaptureFixture, recipient: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "node.outbox"
        and r.levelno == logging.WARNING
        and r.getMessage().startswith(f"gave up a reply to {recipient}")
    ]


@pytest.fixture
def radio() -> Iterator[SimulatedRadio]:
    with SimulatedRadio() as radio:
        radio.add_handheld(HANDHELD, "Ana")
        yield radio


def test_a_reply_is_on_disk_before_it_is_sent_and_goes_out_once_the_radio_is_back(
    radio: SimulatedRadio, tmp_path: Path
) -> None:
    switch = RadioSwitch(radio.port)
    switch.refusing.set()
    with serving(switch, tmp_path / "board.db") as store:
        radio.receive_text(HANDHELD, "help")
        eventually(lambda: queued_replies(store))
        [queued] = queued_replies(store)
        assert isinstance(queued.packet, Reply)
        assert queued.packet.to == ANA and "post <type>" in queued.packet.text
        assert queued.attempts == 0  # a refused send is not an attempt
        assert radio.transmissions == []

        switch.refusing.clear()
        [sent] = radio.wait_for_texts(HANDHELD, 1)
        assert sent == queued.packet.text
        eventually(lambda: not queued_replies(store))  # the handheld's ACK settled it
        radio.receive_text(HANDHELD, "help")
        radio.wait_for_texts(HANDHELD, 2)
        eventually(lambda: not queued_replies(store))
    assert radio.texts_to(HANDHELD) == [sent, sent]


def test_replies_queued_before_a_restart_are_sent_after_it_once(
    radio: SimulatedRadio, tmp_path: Path
) -> None:
    db_path = tmp_path / "board.db"
    refusing = RadioSwitch(radio.port)
    refusing.refusing.set()
    # Heard before the board connects, so both wait in the radio for it: once the refused
    # send has the board reconnecting every half second, a text could reach a client that
    # was closing, and a real radio does not hand a packet out twice.
    radio.receive_text(HANDHELD, "help")
    radio.receive_text(HANDHELD, "list")
    with serving(refusing, db_path) as store:
        eventually(lambda: len(queued_replies(store)) == 2)
    assert radio.transmissions == []

    with serving(radio.port, db_path) as store:
        help_text, _ = radio.wait_for_texts(HANDHELD, 2)
        eventually(lambda: not queued_replies(store))
        radio.receive_text(HANDHELD, "list")
        radio.wait_for_texts(HANDHELD, 3)
    assert "post <type>" in help_text
    assert radio.texts_to(HANDHELD) == [help_text, "no bulletins", "no bulletins"]


def test_an_ack_that_arrives_after_a_restart_settles_the_reply_sent_before_it(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "board.db"
    with SimulatedRadio(auto_ack=False) as radio:
        radio.add_handheld(HANDHELD, "Ana")
        with serving(radio.port, db_path) as store:
            radio.receive_text(HANDHELD, "list")
            radio.wait_for_texts(HANDHELD, 1)
            eventually(lambda: [q.attempts for q in queued_replies(store)] == [1])
        [sent] = radio.transmissions
        radio.acknowledge(sent.packet)  # the radio holds it for the next client

        # Default timing: the reply would only be retried after two minutes without an answer.
        with serving(radio.port, db_path, timing=OutboxTiming()) as store:
            eventually(lambda: not queued_replies(store))
        assert radio.texts_to(HANDHELD) == ["no bulletins"]


def test_a_reply_sent_just_before_kill_9_is_settled_by_its_late_ack_not_resent(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "board.db"

    def meshboard_run(port: str) -> subprocess.Popen[str]:
        command = ["run", "--port", port, "--db", str(db_path), "--tz", "UTC"]
        return subprocess.Popen(
            [sys.executable, "-m", "node", *command], stderr=subprocess.PIPE, text=True
        )

    def reading(check: Callable[[Store], bool]) -> Callable[[], bool]:
        def read() -> bool:
            store = Store.open(db_path)
            try:
                return check(store)
            finally:
                store.close()

        return read

    with SimulatedRadio(auto_ack=False) as radio:
        radio.add_handheld(HANDHELD, "Ana")
        first = meshboard_run(radio.port)
        try:
            radio.wait_connected(timeout=30)
            radio.receive_text(HANDHELD, "list")
            [sent] = radio.wait_for(lambda sent: len(sent) == 1, timeout=30)
            eventually(reading(lambda s: [q.attempts for q in queued_replies(s)] == [1]))
        finally:
            first.kill()
            first.communicate(timeout=30)

        second = meshboard_run(radio.port)
        try:
            eventually(lambda: radio.counters.handshakes == 2, timeout=30)
            radio.acknowledge(sent.packet)  # the handheld's ACK, late
            eventually(reading(lambda s: not queued_replies(s)), timeout=30)
        finally:
            second.terminate()
            _, log = second.communicate(timeout=30)
    assert radio.texts_to(HANDHELD) == ["no bulletins"], log


def test_a_resend_after_the_radio_gave_up_has_a_fresh_packet_id_and_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The firmware ignores an id among the last 20 it was handed (`wasSeenRecently`), so a
    resend under the first id would never leave; under a new one it may be shown twice."""
    caplog.set_level(logging.INFO, logger="node.outbox")
    quick_retry = OutboxTiming(link_retry=0.1, backoff=(0.1,))
    with SimulatedRadio(auto_ack=False) as radio:
        radio.add_handheld(HANDHELD, "Ana")
        with serving(radio.port, tmp_path / "board.db", timing=quick_retry) as store:
            radio.receive_text(HANDHELD, "list")
            radio.wait_for_texts(HANDHELD, 1)
            [first] = [t.packet for t in radio.transmissions if t.packet.to == HANDHELD]
            radio.give_up(first)
            radio.wait_for_texts(HANDHELD, 2)
            second = [t.packet for t in radio.transmissions if t.packet.to == HANDHELD][-1]
            assert second.id != first.id
            assert second.want_ack
            radio.acknowledge(second)
            eventually(lambda: not queued_replies(store))
    assert radio.texts_to(HANDHELD) == ["no bulletins", "no bulletins"]
    assert any("may be shown twice" in m for m in caplog.messages), caplog.messages


def test_a_nak_ed_reply_is_retried_with_backoff_then_given_up_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    timing = OutboxTiming()  # the production defaults, in simulated seconds
    with (
        Mesh(clock=Clock(speed=100.0), seed=3) as mesh,
        Neighbourhood(mesh, tmp_path) as hood,
    ):
        radio = mesh.add_radio()
        away = mesh.add_handheld()  # in the mesh, but nobody hears it
        node = hood.attach(radio)
        radio.receive_text(away.node_num, "help")  # heard once, by a freak of the weather
        assert hood.wait_until(lambda: gave_up(caplog, away.node_id), 30.0)
        assert node.store is not None and queued_replies(node.store) == []

    ours = [r for r in mesh.log if r.sender == radio.node_num and r.to == away.node_num]
    assert [r.kind for r in ours] == ["origin", "retransmit", "retransmit"] * timing.attempts
    # Each attempt ends in the firmware's own retransmissions and its MAX_RETRANSMIT NAK;
    # only then does the backoff start.
    last_tries = [r.at for r in ours[2::3]]
    next_attempts = [r.at for r in ours[3::3]]
    waits = [b - a for a, b in zip(last_tries, next_attempts, strict=False)]
    assert all(waited >= wait for waited, wait in zip(waits, timing.backoff, strict=True))
    assert "MAX_RETRANSMIT" in gave_up(caplog, away.node_id)[0]


def test_a_reply_relayed_to_a_handheld_two_hops_away_is_sent_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="node.outbox")
    with (
        Mesh(clock=Clock(speed=100.0), seed=5) as mesh,
        Neighbourhood(mesh, tmp_path) as hood,
    ):
        radio, _relay, far = mesh.add_line(["radio", "handheld", "handheld"])
        assert isinstance(radio, SimulatedRadio) and isinstance(far, VirtualHandheld)
        node = hood.attach(radio)
        assert ask(far, node, "list") == "no bulletins"
        store = node.store
        assert store is not None
        assert hood.wait_until(lambda: not queued_replies(store), 10.0)
        mesh.wait_idle()  # the destination's own ACK has come back too
    ours = [r for r in mesh.log if r.sender == radio.node_num and r.to == far.node_num]
    assert [r.kind for r in ours if r.kind != "ack"] == ["origin"]
    # The firmware's implicit ACK (it heard the relay) settled the reply; the real one was late.
    assert any(m.startswith(f"reply to {far.node_id} relayed") for m in caplog.messages), (
        caplog.messages
    )


def test_text_pacing_holds_for_retries_of_unacknowledged_replies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    interval = MIN_TEXT_INTERVAL  # the firmware refuses texts less than 2 s apart
    # No answer within 0.2 s and no backoff: only the pacing keeps retries apart.
    impatient = OutboxTiming(ack_timeout=0.2, backoff=(0.0,), link_retry=0.1)
    people = (HANDHELD, OTHER_HANDHELD)
    with SimulatedRadio(auto_ack=False) as radio:
        for num in people:
            radio.add_handheld(num, node_id(num))
        with serving(
            radio.port,
            tmp_path / "board.db",
            timing=impatient,
            text_interval=interval,
        ) as store:
            for num in people:
                radio.receive_text(num, "list")
            eventually(lambda: all(gave_up(caplog, node_id(num)) for num in people), timeout=40)
            assert queued_replies(store) == []
        texts = [t for t in radio.transmissions if t.text is not None]
    assert [t.packet.to for t in texts] == list(people) * impatient.attempts
    gaps = [b.at - a.at for a, b in itertools.pairwise(texts)]
    assert min(gaps) >= interval * 0.95


# -- the outbox alone, with a send function in the radio's place ------------------------


class NakingRadio:
    """Accepts every text and reports a NAK for it, as a radio with nobody in reach does."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.outbox: Outbox | None = None
        self.sent: list[tuple[float, Reply]] = []
        self._ids = itertools.count(1)

    def send_text(self, reply: Reply) -> int:
        packet_id = next(self._ids)
        self.sent.append((self.clock.monotonic(), reply))
        assert self.outbox is not None
        self.outbox.report(Delivery(packet_id, "MAX_RETRANSMIT"))
        return packet_id


def unused_board(outgoing: Outgoing) -> int:
    raise AssertionError(f"no board-plane packet should go out: {outgoing}")


@pytest.fixture
def memory_store() -> Iterator[Store]:
    engine = sqlalchemy.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    yield Store(engine)
    engine.dispose()


def test_a_retry_waits_for_the_airtime_budget_like_a_first_send(memory_store: Store) -> None:
    clock = Clock(speed=200.0)
    reply = Reply(to=ANA, ring=0, text="no bulletins")
    seconds = packet_airtime(reply)
    window = timedelta(seconds=60)
    # Room for two attempts in the window, not three; no backoff and no pacing to speak of.
    budget = AirtimeBudget(limit_fraction=1e-6, hard_fraction=2.5 * seconds / 60, window=window)
    radio = NakingRadio(clock)
    outbox = Outbox(
        OutboxStore(memory_store),
        radio.send_text,
        unused_board,
        packet_airtime,
        budget,
        text_interval=0.01,
        timing=OutboxTiming(backoff=(0.0,)),
        clock=clock,
    )
    radio.outbox = outbox
    outbox.put(reply)
    outbox.start()
    try:
        eventually(lambda: len(radio.sent) == 3, timeout=10)
    finally:
        outbox.stop()
    first, _, third = (at for at, _ in radio.sent)
    assert third - first >= window.total_seconds()


@pytest.mark.parametrize(
    ("age", "budget", "sent"),
    [
        (timedelta(0), AirtimeBudget(), True),
        (timedelta(minutes=10), AirtimeBudget(), False),  # stale: sync repairs it
        (timedelta(0), AirtimeBudget(limit_fraction=1e-6), False),  # no airtime left
    ],
)
def test_board_plane_packets_are_sent_once_or_dropped_never_kept(
    memory_store: Store, age: timedelta, budget: AirtimeBudget, sent: bool
) -> None:
    clock = Clock(speed=100.0)
    queue = OutboxStore(memory_store)
    queue.add(Outgoing(ring=0, payload=b"\xb0digest"), clock.now() - age)  # before a restart
    handed: list[Outgoing] = []
    outbox = Outbox(
        queue,
        NakingRadio(clock).send_text,
        lambda outgoing: handed.append(outgoing) or 1,
        packet_airtime,
        budget,
        clock=clock,
    )
    outbox.start()
    try:
        eventually(lambda: outbox.depth == 0)
    finally:
        outbox.stop()
    assert handed == ([Outgoing(ring=0, payload=b"\xb0digest")] if sent else [])
    assert queue.pending() == []


class FlakyStore(OutboxStore):
    """The real outbox table, whose deletes fail `failures` times first, as under a held lock."""

    def __init__(self, store: Store, failures: int) -> None:
        super().__init__(store)
        self.failures = failures

    def remove(self, item_id: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise sqlalchemy.exc.OperationalError("DELETE", {}, Exception("database is locked"))
        super().remove(item_id)


def flaky_outbox(
    store: Store, failures: int, handed: list[Outgoing], monkeypatch: pytest.MonkeyPatch
) -> Outbox:
    monkeypatch.setattr("node.outbox.STEP_RETRY", 0.01)
    clock = Clock(speed=100.0)
    return Outbox(
        FlakyStore(store, failures),
        NakingRadio(clock).send_text,
        lambda outgoing: handed.append(outgoing) or 1,
        packet_airtime,
        AirtimeBudget(limit_fraction=1.0, hard_fraction=1.0),
        clock=clock,
    )


def has_stopped(outbox: Outbox) -> bool:
    try:
        outbox.check()
    except RuntimeError:
        return True
    return False


def test_a_database_locked_for_a_while_delays_the_outbox_but_does_not_stop_it(
    memory_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[Outgoing] = []
    outbox = flaky_outbox(memory_store, 2, handed, monkeypatch)
    outbox.put(Outgoing(ring=0, payload=b"\xb0first"))
    outbox.start()
    try:
        eventually(lambda: outbox.depth == 0)
        outbox.put(Outgoing(ring=0, payload=b"\xb0second"))
        eventually(lambda: outbox.depth == 0)
        outbox.check()  # still sending
    finally:
        outbox.stop()
    # Sent before its row could be deleted, the first packet was handed over again on retry.
    assert [o.payload for o in handed][-1] == b"\xb0second"
    assert {o.payload for o in handed} == {b"\xb0first", b"\xb0second"}


def test_an_outbox_whose_database_keeps_failing_sends_each_packet_once_and_goes_on(
    memory_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk or a read-only file system is an event, not a crash: what was handed to the
    radio is not handed again for want of a row update, and the outbox keeps serving."""
    handed: list[Outgoing] = []
    outbox = flaky_outbox(memory_store, 10**6, handed, monkeypatch)
    outbox.put(Outgoing(ring=0, payload=b"\xb0first"))
    outbox.start()
    try:
        eventually(lambda: len(handed) == 1)
        outbox.put(Outgoing(ring=0, payload=b"\xb0second"))
        eventually(lambda: len(handed) == 2)
        assert not has_stopped(outbox)
    finally:
        outbox.stop()
    assert [o.payload for o in handed] == [b"\xb0first", b"\xb0second"]
    assert caplog.text.count("outbox: cannot record in the database") == 1


class NaksAnaOnce:
    """ACKs every text except the first one to Ana, which it NAKs."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.outbox: Outbox | None = None
        self.sent: list[str] = []
        self._ids = itertools.count(1)

    def send_text(self, reply: Reply) -> int:
        packet_id = next(self._ids)
        self.sent.append(reply.to)
        first_to_ana = reply.to == ANA and self.sent.count(ANA) == 1
        assert self.outbox is not None
        self.outbox.report(Delivery(packet_id, "MAX_RETRANSMIT" if first_to_ana else "NONE"))
        return packet_id


def test_a_retry_goes_before_replies_that_came_after_it(memory_store: Store) -> None:
    """Under steady load a retry must get its turn, not wait until it is too old."""
    clock = Clock(speed=20.0)
    radio = NaksAnaOnce(clock)
    outbox = Outbox(
        OutboxStore(memory_store),
        radio.send_text,
        unused_board,
        packet_airtime,
        AirtimeBudget(),
        text_interval=20.0,  # one text a real second
        timing=OutboxTiming(backoff=(0.0,)),
        clock=clock,
    )
    radio.outbox = outbox
    outbox.put(Reply(to=ANA, ring=0, text="no bulletins"))
    outbox.start()
    try:
        eventually(lambda: radio.sent == [ANA])
        time.sleep(0.3)  # the NAK is handled: Ana's retry is ready, held only by the pacing
        for n in range(2):
            outbox.put(Reply(to=BEN, ring=0, text=f"ok #ab{n}"))
        eventually(lambda: len(radio.sent) == 4)
    finally:
        outbox.stop()
    assert radio.sent == [ANA, ANA, BEN, BEN]


class RefusesOnce:
    """A radio that refuses the first text to `person` with `error` (nothing on air), then ACKs."""

    def __init__(self, clock: Clock, person: str, error: str) -> None:
        self.clock = clock
        self.person, self.error = person, error
        self.outbox: Outbox | None = None
        self.sent: list[tuple[str, int]] = []  # (to, packet id) of every text handed over
        self._ids = itertools.count(1)

    def send_text(self, reply: Reply) -> int:
        packet_id = next(self._ids)
        self.sent.append((reply.to, packet_id))
        refuse = reply.to == self.person and [to for to, _ in self.sent].count(self.person) == 1
        assert self.outbox is not None
        self.outbox.report(Delivery(packet_id, self.error if refuse else "NONE"))
        return packet_id


def refusing_outbox(store: Store, radio: RefusesOnce) -> Outbox:
    outbox = Outbox(
        OutboxStore(store),
        radio.send_text,
        unused_board,
        packet_airtime,
        AirtimeBudget(),
        text_interval=20.0,  # one text a real second at this clock's speed
        timing=OutboxTiming(attempts=1),  # a refusal that counted as the attempt would end it
        clock=radio.clock,
    )
    radio.outbox = outbox
    return outbox


@pytest.mark.parametrize(
    "error", ["RATE_LIMIT_EXCEEDED", "QUEUE_REFUSED", "DUTY_CYCLE_LIMIT", "NO_INTERFACE"]
)
def test_a_text_the_radio_refused_goes_again_first_and_counts_no_attempt(
    memory_store: Store, error: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("node.outbox.DUTY_CYCLE_PAUSE", 40.0)  # two real seconds here
    radio = RefusesOnce(Clock(speed=20.0), ANA, error)
    outbox = refusing_outbox(memory_store, radio)
    outbox.put(Reply(to=ANA, ring=0, text="no bulletins"))
    outbox.put(Reply(to=BEN, ring=0, text="ok #ab01"))
    outbox.start()
    try:
        eventually(lambda: outbox.replies_waiting == 0)
    finally:
        outbox.stop()
    # Ana's reply kept its place, went again under a new id, and nothing was given up.
    assert [to for to, _ in radio.sent] == [ANA, ANA, BEN]
    assert len({packet_id for _, packet_id in radio.sent}) == 3
    stats = outbox.stats
    assert (stats.refused_by_radio, stats.given_up, stats.possible_duplicates) == (1, 0, 0)
    assert stats.replies_delivered == 2
    assert queued_replies(memory_store) == []


def test_a_missing_key_holds_back_only_that_persons_reply(memory_store: Store) -> None:
    radio = RefusesOnce(Clock(speed=20.0), ANA, "PKI_SEND_FAIL_PUBLIC_KEY")
    outbox = refusing_outbox(memory_store, radio)
    outbox.put(Reply(to=ANA, ring=0, text="no bulletins"))
    outbox.put(Reply(to=BEN, ring=0, text="ok #ab01"))
    outbox.start()
    try:
        eventually(lambda: outbox.replies_waiting == 0, timeout=15)
    finally:
        outbox.stop()
    assert [to for to, _ in radio.sent] == [ANA, BEN, ANA]  # Ben did not wait for Ana's key
    assert outbox.stats.given_up == 0


def test_a_text_the_radio_can_never_send_is_dropped_not_retried(memory_store: Store) -> None:
    radio = RefusesOnce(Clock(speed=20.0), ANA, "TOO_LARGE")
    outbox = refusing_outbox(memory_store, radio)
    outbox.put(Reply(to=ANA, ring=0, text="no bulletins"))
    outbox.start()
    try:
        eventually(lambda: outbox.replies_waiting == 0)
    finally:
        outbox.stop()
    assert [to for to, _ in radio.sent] == [ANA]
    assert outbox.stats.given_up == 1
