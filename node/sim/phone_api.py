"""The firmware's PhoneAPI: what a radio does with each thing its client hands it.

Read from meshtastic/firmware at tag v2.7.26.54e0d8d: `src/mesh/PhoneAPI.cpp`
(`handleToRadio`, `handleToRadioPacket`, `wasSeenRecently`, `getFromRadio`, `close`),
`src/mesh/MeshService.cpp` (`sendToMesh`, `sendQueueStatusToPhone`, `loop`) and
`src/mesh/Default.h` (the intervals). The simulated radio asks this class, per client packet,
whether to pass it on; what passes goes to the radio's Router (`node/sim/router.py`), and the
QueueStatus the client then reads comes from here too. Which rules hold follows the radio's
firmware version (`node/sim/rules.py`).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from node.sim.router import BROADCAST_NUM, ERRNO_OK
from node.sim.rules import ActiveRules

PortNum = portnums_pb2.PortNum

TWO_SECONDS = 2.0  # TWO_SECONDS_MS: texts
TEN_SECONDS = 10.0  # TEN_SECONDS_MS: position, waypoint, alert, telemetry
THIRTY_SECONDS = 30.0  # THIRTY_SECONDS_MS: traceroute
RECENT_IDS = 20  # recentToRadioPacketIds[20] in PhoneAPI.h
TEN_SECOND_PORTS = frozenset(
    {PortNum.POSITION_APP, PortNum.WAYPOINT_APP, PortNum.ALERT_APP, PortNum.TELEMETRY_APP}
)
NODEINFO_PING = 1  # Heartbeat.nonce that asks for a NodeInfo broadcast instead (v2.7.23)
TRACEROUTE_EVERY_30_S = "TraceRoute can only be sent once every 30 seconds"
NO_BROADCAST_TRACEROUTE = "Multi-hop traceroute to broadcast address is not allowed"


class Verdict(enum.Enum):
    SEND = "send"  # on to MeshService::handleToRadio → sendToMesh
    REPEATED = "repeated id"  # wasSeenRecently: dropped without a word to the client
    RATE_LIMITED = "rate limited"  # a QueueStatus (res 0), nothing sent
    REFUSED = "refused"  # a multi-hop traceroute to everyone: a QueueStatus and a notification


@dataclass(frozen=True)
class Decision:
    """What `PhoneAPI::handleToRadioPacket` did with one packet from the client."""

    verdict: Verdict
    # Also `MeshService::sendRoutingErrorResponse(RATE_LIMIT_EXCEEDED, &p)`: a text only.
    nak: bool = False
    notification: str = ""  # a ClientNotification (reply_id: the packet's id), if any

    @property
    def sent(self) -> bool:
        return self.verdict is Verdict.SEND


class PhoneAPI:
    """One radio's client-facing state: recently handed ids, per-port send times, and the last
    QueueStatus it told the client. Thread-safe: the radio's thread and the mesh's ask it."""

    def __init__(self, rules: ActiveRules) -> None:
        self.rules = rules
        self._lock = threading.Lock()
        self._recent: list[int] = []  # oldest first
        self._last_sent: dict[int, float] = {}  # lastPortNumToRadio, per port
        self._last_free: int | None = None  # MeshService::lastQueueStatus.free

    def handle_to_radio_packet(self, packet: mesh_pb2.MeshPacket, now: float) -> Decision:
        """`PhoneAPI::handleToRadioPacket` for a packet the client handed over at `now`
        (seconds of the radio's clock). A packet that is sent may be changed: a traceroute to
        one node gets want_ack (v2.7.12)."""
        with self._lock:
            if self.rules.recent_ids and packet.id and self._seen_recently(packet.id):
                return Decision(Verdict.REPEATED)
            port = packet.decoded.portnum
            last = self._last_sent.get(port)

            def within(seconds: float) -> bool:
                return last is not None and now - last < seconds  # Throttle::isWithinTimespanMs

            if port == PortNum.TRACEROUTE_APP and self.rules.traceroute_rate:
                if within(THIRTY_SECONDS):
                    return Decision(Verdict.RATE_LIMITED, notification=TRACEROUTE_EVERY_30_S)
                if packet.to == BROADCAST_NUM and packet.hop_limit > 0:
                    return Decision(Verdict.REFUSED, notification=NO_BROADCAST_TRACEROUTE)
            elif port in TEN_SECOND_PORTS and self.rules.port_rates and within(TEN_SECONDS):
                return Decision(Verdict.RATE_LIMITED)
            elif port == PortNum.TEXT_MESSAGE_APP and self.rules.text_rate and within(TWO_SECONDS):
                return Decision(Verdict.RATE_LIMITED, nak=self.rules.rate_limit_nak)
            if (
                port == PortNum.TRACEROUTE_APP
                and packet.to != BROADCAST_NUM
                and self.rules.reliable_text_acks
            ):
                packet.want_ack = True  # "Upgrade traceroute requests from phone"
            self._last_sent[port] = now  # only on acceptance
            return Decision(Verdict.SEND)

    def _seen_recently(self, packet_id: int) -> bool:
        """`PhoneAPI::wasSeenRecently`: the last 20 ids, with no time limit. It runs before
        the rate limits, so a packet they refuse is remembered too."""
        if packet_id in self._recent:
            return True
        self._recent.append(packet_id)
        del self._recent[:-RECENT_IDS]
        return False

    def close(self) -> None:
        """`PhoneAPI::close` (the client said disconnect, or went silent): the per-port times
        go; the recent ids stay until the radio reboots."""
        with self._lock:
            self._last_sent.clear()

    # -- QueueStatus ----------------------------------------------------------------------

    def queue_status(
        self, free: int, maxlen: int, *, res: int = ERRNO_OK, packet_id: int = 0
    ) -> mesh_pb2.QueueStatus:
        """`MeshService::sendQueueStatusToPhone`: the router's queue as it is now, `res` (0:
        queued) and the packet it answers; also sent, res 0, for a packet PhoneAPI refused.
        Remembered as `lastQueueStatus`."""
        with self._lock:
            self._last_free = free
        return mesh_pb2.QueueStatus(res=res, free=free, maxlen=maxlen, mesh_packet_id=packet_id)

    def after_queue_change(self, free: int, maxlen: int) -> mesh_pb2.QueueStatus | None:
        """`MeshService::loop`: when the last QueueStatus said the queue was full and it is
        not any more, tell the client (res 0, no packet id), or a client waiting for room
        would wait forever."""
        with self._lock:
            waiting = self._last_free == 0 and free != 0
        return self.queue_status(free, maxlen) if waiting else None

    def heartbeat(
        self, heartbeat: mesh_pb2.Heartbeat, free: int, maxlen: int
    ) -> mesh_pb2.QueueStatus | None:
        """`PhoneAPI::handleToRadio` (heartbeat_tag) and `getFromRadio`: a heartbeat is answered
        with `router->getQueueStatus()`, which is not remembered as lastQueueStatus. Nonce 1
        asks for a NodeInfo broadcast instead (v2.7.23), which is not answered."""
        if not self.rules.heartbeat_answer or heartbeat.nonce == NODEINFO_PING:
            return None
        return mesh_pb2.QueueStatus(res=0, free=free, maxlen=maxlen, mesh_packet_id=0)
