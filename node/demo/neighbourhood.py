"""A simulated neighbourhood: real board daemons on pty radios, joined by one simulated mesh.

Each board node is the production daemon talking through the real `SerialInterface` to its own
simulated radio, with its own SQLite file; all of them share the mesh's clock, so Trickle
intervals and airtime run faster than real time. `meshboard demo`, the sync tests and the
benchmarks build their meshes with this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from board.config import MeshboardConfig
from board.handheld.commands import BoardConfig
from board.signing import BoardKey
from board.store.bulletins import Store
from board.sync.engine import SyncConfig
from node.daemon import Daemon
from node.outbox import MIN_TEXT_INTERVAL
from node.sim.handheld import VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.radio import RadioProfile, SimulatedRadio, node_id

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0  # real seconds for a daemon's serial handshake
REPLY_TIMEOUT = 30.0  # real seconds for a board's answer to a handheld
SENDS = 3  # times a person sends a command the app reports undelivered


@dataclass
class BoardNode:
    """One board node of the neighbourhood; its database outlives its daemon."""

    name: str
    radio: SimulatedRadio
    db_path: Path
    sync: SyncConfig
    config: MeshboardConfig | None = None  # the rings it serves; None: those of `sync`
    key: BoardKey | None = None  # the board's signing key (needed to vouch for moderators)
    store: Store | None = None
    daemon: Daemon | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    failures: list[BaseException] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return node_id(self.radio.node_num)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class Neighbourhood:
    """Board daemons on the pty radios of a `Mesh`."""

    def __init__(
        self,
        mesh: Mesh,
        workdir: Path,
        *,
        board: BoardConfig | None = None,
        sync: SyncConfig | None = None,
        text_interval: float = MIN_TEXT_INTERVAL,
    ) -> None:
        self.mesh = mesh
        self.workdir = workdir
        self._board = board or BoardConfig()
        self._sync = sync or SyncConfig()
        self._text_interval = text_interval
        self.boards: list[BoardNode] = []

    def attach(
        self,
        radio: SimulatedRadio,
        name: str | None = None,
        *,
        sync: SyncConfig | None = None,
        config: MeshboardConfig | None = None,
        key: BoardKey | None = None,
    ) -> BoardNode:
        """Run a board daemon on `radio` (already in the mesh) with a fresh database.

        With `config`, the board serves exactly its rings (as `meshboard run --config` does).
        """
        index = len(self.boards)
        node = BoardNode(
            name=name or f"board-{index}",
            radio=radio,
            db_path=self.workdir / f"board-{index}-{radio.node_num:08x}.db",
            sync=sync or self._sync,
            config=config,
            key=key or BoardKey.generate(),  # as `meshboard run` has one: deletions sync
        )
        self.boards.append(node)
        self.start(node)
        return node

    def start(self, node: BoardNode) -> None:
        """Start (or restart) `node`'s daemon on its existing database; wait until connected."""
        if node.running:
            raise RuntimeError(f"{node.name} is already running")
        node.store = Store.open(node.db_path)
        node.daemon = Daemon.assemble(
            node.radio.port,
            node.store,
            board=self._board,
            sync=node.sync,
            clock=self.mesh.clock,
            seed=self.mesh.seed * 1000 + self.boards.index(node),
            text_interval=self._text_interval,
            config=node.config,
            key=node.key,
        )
        node._stop = threading.Event()
        daemon, stop = node.daemon, node._stop

        def serve() -> None:
            try:
                daemon.run(stop)
            except Exception as error:  # kept for the caller: a test or the demo reports it
                logger.exception("%s failed", node.name)
                node.failures.append(error)
                daemon.connected.set()

        node._thread = threading.Thread(target=serve, name=node.name, daemon=True)
        node._thread.start()
        if not daemon.connected.wait(CONNECT_TIMEOUT) or node.failures:
            raise RuntimeError(f"{node.name} did not start: {node.failures}")

    def stop(self, node: BoardNode) -> None:
        """Stop `node`'s daemon, as a power cut would between two packets; keep its database."""
        node._stop.set()
        if node._thread is not None:
            node._thread.join(timeout=30)
            if node._thread.is_alive():
                raise RuntimeError(f"{node.name} did not stop")
        if node.store is not None:
            node.store.close()
        node.store, node.daemon, node._thread = None, None, None

    def neighbour(self, node: BoardNode, profile: RadioProfile | None = None) -> VirtualHandheld:
        """A new handheld that hears only `node`'s radio."""
        person = self.mesh.add_handheld(profile=profile)
        self.mesh.link(person, node.radio)
        return person

    def holdings(self, node: BoardNode, ring: int | None = None) -> set[str]:
        """Ids of the active bulletins `node` holds, read from its database."""
        if node.store is not None:  # the engine's pool is thread-safe; sessions are per call
            return {b.id for b in node.store.active(self.mesh.clock.now(), ring=ring)}
        store = Store.open(node.db_path)
        try:
            return {b.id for b in store.active(self.mesh.clock.now(), ring=ring)}
        finally:
            store.close()

    def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float,
        *,
        progress: Callable[[], None] | None = None,
        every: float = 0.25,
    ) -> bool:
        """Poll `condition` every `every` real seconds until it holds or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            self._raise_failures()
            if condition():
                return True
            if time.monotonic() >= deadline:
                return False
            if progress is not None:
                progress()
            time.sleep(every)

    def converged(self, ids: set[str], ring: int | None = None) -> bool:
        """True when every board holds every bulletin in `ids`."""
        return all(ids <= self.holdings(node, ring) for node in self.boards)

    def close(self) -> None:
        for node in self.boards:
            if node.running:
                self.stop(node)
        self._raise_failures()

    def _raise_failures(self) -> None:
        for node in self.boards:
            if node.failures:
                raise RuntimeError(f"{node.name} failed") from node.failures[0]

    def __enter__(self) -> Neighbourhood:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def ask(
    person: VirtualHandheld,
    node: BoardNode,
    text: str,
    *,
    channel: int = 0,
    timeout: float = REPLY_TIMEOUT,
    pki: bool = False,
) -> str:
    """Send `text` to `node` and return the board's next reply (always a direct message).

    On channel 0 it is a direct message, PKI-encrypted by the handheld's firmware (2.7.14+),
    as `pki` insists. On another channel it is the `!` command on that channel, since a direct
    message always reaches the board on channel 0, the public ring's (Router.cpp
    perhapsDecode). When the handheld's firmware reports the message undelivered (its NAK
    after its own retries: lost to collisions), the person sends it again, as people do when
    the app says so; a message that did get through is never sent twice.
    """
    before = len(person.inbox)
    deadline = time.monotonic() + timeout
    for _ in range(SENDS):
        if channel == 0:
            packet_id = person.send_text(text, to=node.radio.node_num, pki_encrypted=pki)
        else:
            packet_id = person.send_text(f"!{text}", channel=channel)
        heard = person.wait_for_answer(
            packet_id,
            lambda t: t.sender == node.radio.node_num and person.inbox.index(t) >= before,
            timeout=max(0.0, deadline - time.monotonic()),
        )
        if heard is not None:
            return heard.text
        logger.info("%s: %r was not delivered; sending it again", person.node_id, text)
    raise TimeoutError(f"{person.node_id}: {text!r} undelivered after {SENDS} sends")
