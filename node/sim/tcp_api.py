"""The Meshtastic TCP API for a simulated radio, as `meshtasticd` serves it on port 4403.

Over TCP the client speaks exactly the serial stream (0x94 0xC3, a 16-bit length, a protobuf;
`meshtastic.tcp_interface.TCPInterface` only swaps the serial port for a socket), so the bridge
is a relay: for each accepted connection it opens the radio's pty as a serial client would
(raw mode, no controlling terminal, stale bytes flushed) and copies bytes both ways until
either side closes. It parses no frame. The real `meshtastic --host HOST:PORT`, a script's
`TCPInterface(host, portNumber=PORT)` or an app's network connection then talk to the
simulated radio as to a radio on the network.

One client at a time per radio, as over one USB cable: a second connection is accepted but
waits, unread, until the first has left (a warning says so), then is served in turn; more than
`MAX_WAITING` waiting connections are closed at once. (meshtasticd drops the older client
instead; waiting never cuts off a person's app because a script connected.) A client on the
serial path meanwhile would share the line with the TCP one, as two programs on one
/dev/ttyACM0 would: use one or the other.

When a client leaves, the bridge writes one `ToRadio.disconnect` to the radio, as the
firmware's API server closes its phone session when a TCP client goes (the Python client sends
none over TCP): the radio then keeps what it hears for the next client rather than writing to a
line nobody reads. When the radio's line goes away (unplugged, rebooted) the client's
connection is closed, and a client that reconnects is served on the new line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import termios
import threading
import tty
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from meshtastic.protobuf import mesh_pb2

from node.sim.framing import encode_frame
from node.sim.radio import SimulatedRadio, node_id

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"  # a person's machine only; 0.0.0.0 lets phones on the LAN in
MAX_WAITING = 4  # connections queued behind the one being served
CHUNK = 4096
BACKLOG = 256 * 1024  # bytes a client leaves unread (beyond the kernel's) before it is dropped
_POLL = 0.5  # seconds; only a safety net, close() wakes the thread at once
_FINAL_WRITE = 1.0  # seconds to hand the radio a leaving client's last bytes
DISCONNECT = encode_frame(mesh_pb2.ToRadio(disconnect=True).SerializeToString())


@dataclass
class _Session:
    """One TCP client relayed to one opening of the radio's pty."""

    sock: socket.socket
    peer: str
    fd: int
    to_radio: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    leaving: bool = False  # the client closed its side: hand the radio the rest, then end

    def leave(self) -> None:
        """The client is gone: tell the radio after what it sent, as the firmware learns it."""
        if not self.leaving:
            self.leaving = True
            self.to_radio += DISCONNECT


class TcpBridge:
    """Serves `radio` on a TCP port. Use as a context manager or call `close()`."""

    def __init__(self, radio: SimulatedRadio, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.radio = radio
        self.name = node_id(radio.node_num)
        self._listener = socket.create_server((host, port), backlog=MAX_WAITING + 1)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._waiting: deque[tuple[socket.socket, str]] = deque()
        self._served = 0
        address = self._listener.getsockname()
        self.host: str = address[0]
        self.port: int = address[1]
        self._thread = threading.Thread(
            target=self._serve, name=f"tcp-api-{self.name}", daemon=True
        )
        self._thread.start()
        logger.info("%s: Meshtastic TCP API on %s:%d", self.name, self.host, self.port)

    @property
    def address(self) -> str:
        """`host:port`, as `meshtastic --host` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """True while a client is being served."""
        with self._lock:
            return self._session is not None

    @property
    def served(self) -> int:
        """Connections served so far, the current one included."""
        with self._lock:
            return self._served

    def close(self) -> None:
        """Stop listening and drop every client; returns once the bridge's thread has ended."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            logger.error("%s: the TCP bridge's thread did not end", self.name)
        self._wake_w.close()

    def __enter__(self) -> TcpBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the bridge's thread --------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
        except Exception:  # a bug here must not leave a port that accepts and never answers
            logger.exception("%s: the TCP bridge failed", self.name)
        finally:
            self._shut_down()

    def _step(self) -> None:
        session = self._session
        readers: list[socket.socket | int] = [self._listener, self._wake_r]
        writers: list[socket.socket | int] = []
        if session is not None:
            if not session.leaving:
                readers.append(session.sock)
            readers.append(session.fd)
            if session.to_client:
                writers.append(session.sock)
            if session.to_radio:
                writers.append(session.fd)
        readable, writable, _ = select.select(readers, writers, [], _POLL)
        if self._wake_r in readable:
            with contextlib.suppress(OSError):
                self._wake_r.recv(CHUNK)
        if self._listener in readable:
            self._accept()
        if session is not None and not self._relay(session, readable, writable):
            self._end(session)
        while self._session is None and self._waiting:
            sock, peer = self._waiting.popleft()
            if _hung_up(sock):
                logger.info("%s: %s left before its turn", self.name, peer)
                sock.close()
            else:
                self._begin(sock, peer)

    def _accept(self) -> None:
        try:
            sock, address = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        peer = f"{address[0]}:{address[1]}"
        if len(self._waiting) < MAX_WAITING:
            self._waiting.append((sock, peer))  # served at the end of this step when free
            if self._session is not None:
                logger.warning(
                    "%s: %s is already connected over TCP; %s waits until it leaves",
                    self.name,
                    self._session.peer,
                    peer,
                )
        else:
            logger.warning(
                "%s: %d clients already wait for the radio; refused %s",
                self.name,
                MAX_WAITING,
                peer,
            )
            sock.close()

    def _begin(self, sock: socket.socket, peer: str) -> None:
        """Open the radio's line for `sock`, as a serial client opens /dev/ttyACM0."""
        try:
            fd = os.open(self.radio.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as error:
            logger.warning("%s: cannot open %s for %s: %s", self.name, self.radio.port, peer, error)
            sock.close()
            return
        try:
            tty.setraw(fd)
            termios.tcflush(fd, termios.TCIFLUSH)  # what the radio wrote for an earlier client
        except termios.error as error:
            logger.warning("%s: %s is not a serial line: %s", self.name, self.radio.port, error)
            os.close(fd)
            sock.close()
            return
        sock.setblocking(False)
        with self._lock:
            self._session = _Session(sock, peer, fd)
            self._served += 1
        logger.info("%s: TCP client %s connected", self.name, peer)

    def _relay(
        self, session: _Session, readable: Sequence[object], writable: Sequence[object]
    ) -> bool:
        """Move what is ready one step each way; False once the session is over."""
        if session.sock in readable:
            try:
                data = session.sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                session.leave()
            elif data:
                session.to_radio += data
        if session.fd in writable and not _write_fd(session):
            logger.info("%s: the radio's line closed under %s", self.name, session.peer)
            return False
        if session.fd in readable:
            try:
                data = os.read(session.fd, CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:  # EIO: the radio was unplugged or rebooted
                data = b""
            if data == b"":
                logger.info("%s: the radio's line closed under %s", self.name, session.peer)
                return False
            if data:
                session.to_client += data
            if len(session.to_client) > BACKLOG:  # rather than stall the radio and the mesh
                logger.warning("%s: %s reads nothing; dropped", self.name, session.peer)
                session.leave()
                return False
        if session.sock in writable:
            try:
                sent = session.sock.send(session.to_client)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # reset or closed: what the radio says next is for the next client
                session.to_client.clear()
                session.leave()
                sent = 0
            del session.to_client[:sent]
        return not (session.leaving and not session.to_radio)

    def _end(self, session: _Session) -> None:
        _flush_to_radio(session)
        with contextlib.suppress(OSError):
            os.close(session.fd)
        with contextlib.suppress(OSError):
            session.sock.shutdown(socket.SHUT_RDWR)
        session.sock.close()
        with self._lock:
            self._session = None
        logger.info("%s: TCP client %s left", self.name, session.peer)

    def _shut_down(self) -> None:
        if self._session is not None:
            self._session.leave()
            self._end(self._session)
        while self._waiting:
            self._waiting.popleft()[0].close()
        self._listener.close()
        self._wake_r.close()
        logger.info("%s: TCP API on %s:%d closed", self.name, self.host, self.port)


def _hung_up(sock: socket.socket) -> bool:
    """True when the peer has closed its side (Linux tells; elsewhere assume it has not)."""
    poller = select.poll()
    poller.register(sock, getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def _write_fd(session: _Session) -> bool:
    """Write what the radio can take now; False when its line is gone."""
    try:
        written = os.write(session.fd, session.to_radio)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
    del session.to_radio[:written]
    return True


def _flush_to_radio(session: _Session) -> None:
    """Hand the radio what is left for it, waiting briefly for room on the line."""
    while session.to_radio:
        _, writable, _ = select.select([], [session.fd], [], _FINAL_WRITE)
        if not writable or not _write_fd(session):
            return
