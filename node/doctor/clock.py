"""Whether the board's clock can be trusted: the Pi's, and the radio's beside it.

The board stamps bulletins with the Pi's clock, and expiry and "tue 18:00" come from it too. A
Pi has no battery-backed clock and often no network, so after a power cut it may be hours or
days off (firmware_notes/raspberry-pi.md, section 6). The facts are gathered by
`read_clock_facts()` and passed in, so each state can be presented to the checks.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meshtastic.protobuf import config_pb2

from node.doctor.findings import Finding, fail, ok, warn

logger = logging.getLogger(__name__)

GpsMode = config_pb2.Config.PositionConfig.GpsMode

#: This release was made in 2026: a clock that shows an earlier time is certainly wrong (a Pi
#: that never saved its time boots at 1970-01-01).
EARLIEST_PLAUSIBLE = datetime(2026, 1, 1, tzinfo=UTC)
#: Two clocks closer than this agree. Event times are typed to the minute and lifetimes run
#: in hours; two minutes is below what anyone notices, and wide enough for the seconds a
#: handshake takes and for clocks that count whole seconds.
TOLERANCE = 120.0
RTC = Path("/sys/class/rtc/rtc0")
RTC_FIX = (
    "echo 'dtoverlay=i2c-rtc,ds3231' | sudo tee -a /boot/firmware/config.txt   # a DS3231 RTC",
    "or give the Pi network time: firmware_notes/raspberry-pi.md, section 6",
)
SET_DATE = "sudo date -s 'YYYY-MM-DD HH:MM'"

# adjtimex(2): the clock state it returns, and the status bit the kernel keeps set until a
# time source (NTP, chrony, GPS) disciplines the clock. Reading needs no privilege.
TIME_ERROR = 5
STA_UNSYNC = 0x0040


@dataclass(frozen=True)
class ClockFacts:
    """What the Pi knows about its own clock."""

    now: datetime  # the Pi's clock (UTC)
    synchronized: bool | None  # the kernel's word; None where it cannot be asked
    rtc: bool  # an RTC exists (rtc0)
    rtc_time: datetime | None = None  # what the RTC holds; None when unreadable or unset

    @property
    def plausible(self) -> bool:
        return self.now >= EARLIEST_PLAUSIBLE

    @property
    def rtc_agrees(self) -> bool:
        return self.rtc_time is not None and _apart(self.rtc_time, self.now) <= TOLERANCE

    @property
    def trusted(self) -> bool:
        """Right now and after a power cut: synchronized, or kept by an RTC that agrees."""
        return self.plausible and (self.synchronized is True or self.rtc_agrees)


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """`struct timex` up to `status`, then room for the rest (glibc pads it to 11 ints)."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_byte * 256),
    )


def kernel_synchronized() -> bool | None:
    """The kernel's view (what `timedatectl` shows): None off Linux or when it cannot be asked."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()  # modes = 0: only read
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError) as error:
        logger.info("cannot ask the kernel about the clock: %s", error)
        return None
    if state < 0:
        logger.info("adjtimex failed: errno %d", ctypes.get_errno())
        return None
    return state != TIME_ERROR and not timex.status & STA_UNSYNC


def read_rtc(rtc: Path = RTC) -> datetime | None:
    """What the RTC holds (seconds since the epoch, UTC); None when it has no valid time."""
    with contextlib.suppress(OSError, ValueError):
        return datetime.fromtimestamp(int((rtc / "since_epoch").read_text().strip()), UTC)
    return None


def read_clock_facts() -> ClockFacts:
    return ClockFacts(
        now=datetime.now(UTC),
        synchronized=kernel_synchronized(),
        rtc=RTC.exists(),
        rtc_time=read_rtc(),
    )


def check_clock(facts: ClockFacts) -> Finding:
    """The Pi's clock: plausible, and kept right by a time source or an RTC."""
    shown = f"{facts.now:%Y-%m-%d %H:%M} UTC"
    if not facts.plausible:
        return fail(
            "clock",
            f"the Pi's clock says {shown}, before this release: expiry and event times "
            "would be wrong",
            f"{SET_DATE}   # the real date and time now",
            *RTC_FIX,
        )
    if facts.synchronized:
        return ok("clock", f"{shown}, synchronized (the kernel's time-source status)")
    if facts.rtc_agrees:
        return ok("clock", f"{shown}, not synchronized, kept by the RTC (rtc0), which agrees")
    if facts.rtc:
        held = (
            "no valid time"
            if facts.rtc_time is None
            else f"a time {_off(facts.rtc_time, facts.now)} the system's"
        )
        return warn(
            "clock",
            f"{shown}, not synchronized, and the RTC (rtc0) holds {held}",
            f"{SET_DATE}   # if the system's time is wrong",
            "sudo hwclock -w   # then store it in the RTC (a battery keeps it)",
        )
    if facts.synchronized is None:
        return warn(
            "clock",
            f"{shown}; cannot tell whether it is synchronized",
            "timedatectl   # 'System clock synchronized: yes' is what you want",
        )
    return warn(
        "clock",
        f"{shown}, not synchronized and no RTC: after a power cut it may be hours off",
        *RTC_FIX,
    )


def check_radio_time(
    clock: ClockFacts, radio_time: datetime | None, pi_time: datetime, gps_mode: int, cli: str
) -> Finding:
    """The radio's clock beside the Pi's: a second opinion, and a source when it has GPS.

    `radio_time` is what the radio said at the handshake, `pi_time` the Pi's clock then.
    Which clock to correct depends on which is trusted: the Pi's when it is synchronized or
    kept by an RTC, else the radio's.
    """
    gps = gps_mode == GpsMode.ENABLED
    if radio_time is None:
        if gps:
            return warn(
                "radiotime",
                "GPS on, but no fix yet: the radio does not know the time",
                "put the radio (or its GPS antenna) where it sees the sky",
                *((f"{cli} --set-time   # meanwhile, the Pi's time",) if clock.trusted else ()),
            )
        if clock.trusted:
            return ok("radiotime", "no time of its own (no GPS); the board keeps the Pi's")
        fix: tuple[str, ...] = RTC_FIX
        if gps_mode == GpsMode.DISABLED:
            fix = (f"{cli} --set position.gps_mode ENABLED   # if the radio has a GPS", *fix)
        return warn("radiotime", "neither the radio nor the Pi has a time source", *fix)
    source = " (GPS)" if gps else ""
    gap = _apart(radio_time, pi_time)
    if gap <= TOLERANCE:
        return ok("radiotime", f"agrees with the Pi's clock: {gap:.0f} s apart{source}")
    summary = f"the radio's clock{source} is {_off(radio_time, pi_time)} the Pi's"
    if clock.trusted:
        return warn("radiotime", summary, f"{cli} --set-time   # sets it from the Pi's")
    return warn(
        "radiotime",
        summary,
        f"sudo date -u -s '{radio_time:%Y-%m-%d %H:%M:%S}'   # the radio's time, if it is right",
    )


def _apart(a: datetime, b: datetime) -> float:
    return abs((a - b).total_seconds())


def _off(clock: datetime, reference: datetime) -> str:
    """`3 h 12 min ahead of`, `45 s behind`."""
    seconds = (clock - reference).total_seconds()
    return f"{duration_text(abs(seconds))} {'ahead of' if seconds > 0 else 'behind'}"


def duration_text(seconds: float) -> str:
    """The two largest units, to the second: `2 d 4 h`, `3 h 12 min`, `3 h`, `45 s`."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    shown = parts[:2]
    if len(shown) == 2 and shown[1][0] == 0:
        shown.pop()
    return " ".join(f"{n} {unit}" for n, unit in shown)
