"""The doctor's clock findings for each state a Pi and its radio can be in."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.doctor.clock import (
    ClockFacts,
    GpsMode,
    check_clock,
    check_radio_time,
    duration_text,
    kernel_synchronized,
    read_rtc,
)
from node.doctor.findings import Status

NOW = datetime(2026, 11, 24, 18, 30, tzinfo=UTC)
CLI = "meshtastic --port /dev/ttyACM0"
HOURS_3 = timedelta(hours=3)
RTC_FIX = (
    "echo 'dtoverlay=i2c-rtc,ds3231' | sudo tee -a /boot/firmware/config.txt   # a DS3231 RTC",
    "or give the Pi network time: firmware_notes/raspberry-pi.md, section 6",
)
SYNCED = ClockFacts(now=NOW, synchronized=True, rtc=False)
ADRIFT = ClockFacts(now=NOW, synchronized=False, rtc=False)


@pytest.mark.parametrize(
    ("facts", "status", "summary", "fix"),
    [
        pytest.param(
            ClockFacts(now=datetime(1970, 1, 1, 0, 2, tzinfo=UTC), synchronized=False, rtc=False),
            Status.FAIL,
            "the Pi's clock says 1970-01-01 00:02 UTC, before this release: expiry and event "
            "times would be wrong",
            ("sudo date -s 'YYYY-MM-DD HH:MM'   # the real date and time now", *RTC_FIX),
            id="before-release",
        ),
        pytest.param(
            SYNCED,
            Status.OK,
            "2026-11-24 18:30 UTC, synchronized (the kernel's time-source status)",
            (),
            id="synchronized",
        ),
        pytest.param(
            ClockFacts(NOW, False, rtc=True, rtc_time=NOW + timedelta(seconds=3)),
            Status.OK,
            "2026-11-24 18:30 UTC, not synchronized, kept by the RTC (rtc0), which agrees",
            (),
            id="rtc-agrees",
        ),
        pytest.param(
            ClockFacts(NOW, False, rtc=True, rtc_time=None),
            Status.WARN,
            "2026-11-24 18:30 UTC, not synchronized, and the RTC (rtc0) holds no valid time",
            (
                "sudo date -s 'YYYY-MM-DD HH:MM'   # if the system's time is wrong",
                "sudo hwclock -w   # then store it in the RTC (a battery keeps it)",
            ),
            id="rtc-unset",
        ),
        pytest.param(
            ClockFacts(NOW, False, rtc=True, rtc_time=NOW + HOURS_3),
            Status.WARN,
            "2026-11-24 18:30 UTC, not synchronized, and the RTC (rtc0) holds a time "
            "3 h ahead of the system's",
            (
                "sudo date -s 'YYYY-MM-DD HH:MM'   # if the system's time is wrong",
                "sudo hwclock -w   # then store it in the RTC (a battery keeps it)",
            ),
            id="rtc-disagrees",
        ),
        pytest.param(
            ADRIFT,
            Status.WARN,
            "2026-11-24 18:30 UTC, not synchronized and no RTC: after a power cut it may "
            "be hours off",
            RTC_FIX,
            id="no-time-source",
        ),
        pytest.param(
            ClockFacts(NOW, None, rtc=False),
            Status.WARN,
            "2026-11-24 18:30 UTC; cannot tell whether it is synchronized",
            ("timedatectl   # 'System clock synchronized: yes' is what you want",),
            id="cannot-tell",
        ),
    ],
)
def test_the_pis_clock(
    facts: ClockFacts, status: Status, summary: str, fix: tuple[str, ...]
) -> None:
    finding = check_clock(facts)
    assert (finding.check, finding.status, finding.summary, finding.fix) == (
        "clock",
        status,
        summary,
        fix,
    )


@pytest.mark.parametrize(
    ("clock", "radio_time", "gps", "status", "summary", "fix"),
    [
        pytest.param(
            SYNCED,
            NOW + timedelta(seconds=4),
            GpsMode.ENABLED,
            Status.OK,
            "agrees with the Pi's clock: 4 s apart (GPS)",
            (),
            id="agrees",
        ),
        pytest.param(
            SYNCED,
            NOW + HOURS_3,
            GpsMode.DISABLED,
            Status.WARN,
            "the radio's clock is 3 h ahead of the Pi's",
            (f"{CLI} --set-time   # sets it from the Pi's",),
            id="radio-wrong",
        ),
        pytest.param(
            ADRIFT,
            NOW - HOURS_3,
            GpsMode.ENABLED,
            Status.WARN,
            "the radio's clock (GPS) is 3 h behind the Pi's",
            ("sudo date -u -s '2026-11-24 15:30:00'   # the radio's time, if it is right",),
            id="pi-wrong",
        ),
        pytest.param(
            SYNCED,
            None,
            GpsMode.ENABLED,
            Status.WARN,
            "GPS on, but no fix yet: the radio does not know the time",
            (
                "put the radio (or its GPS antenna) where it sees the sky",
                f"{CLI} --set-time   # meanwhile, the Pi's time",
            ),
            id="gps-without-fix",
        ),
        pytest.param(
            SYNCED,
            None,
            GpsMode.NOT_PRESENT,
            Status.OK,
            "no time of its own (no GPS); the board keeps the Pi's",
            (),
            id="no-gps-pi-synchronized",
        ),
        pytest.param(
            ADRIFT,
            None,
            GpsMode.DISABLED,
            Status.WARN,
            "neither the radio nor the Pi has a time source",
            (f"{CLI} --set position.gps_mode ENABLED   # if the radio has a GPS", *RTC_FIX),
            id="gps-disabled-pi-adrift",
        ),
        pytest.param(
            ADRIFT,
            None,
            GpsMode.NOT_PRESENT,
            Status.WARN,
            "neither the radio nor the Pi has a time source",
            RTC_FIX,
            id="no-gps-pi-adrift",
        ),
    ],
)
def test_the_radios_clock(
    clock: ClockFacts,
    radio_time: datetime | None,
    gps: int,
    status: Status,
    summary: str,
    fix: tuple[str, ...],
) -> None:
    finding = check_radio_time(clock, radio_time, NOW, gps, CLI)
    assert (finding.check, finding.status, finding.summary, finding.fix) == (
        "radiotime",
        status,
        summary,
        fix,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux's")
def test_the_kernel_answers_whether_the_clock_is_synchronized() -> None:
    assert isinstance(kernel_synchronized(), bool)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("1795000000\n", datetime.fromtimestamp(1795000000, UTC)),
        (None, None),  # no such file: the driver is not loaded
        ("", None),  # an RTC without a valid time reads as an error or nothing
    ],
)
def test_the_rtc_is_read_from_sysfs(
    tmp_path: Path, content: str | None, expected: datetime | None
) -> None:
    if content is not None:
        (tmp_path / "since_epoch").write_text(content)
    assert read_rtc(tmp_path) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (303, "5 min 3 s"),
        (11520, "3 h 12 min"),
        (10799.6, "3 h"),
        (187200, "2 d 4 h"),
    ],
)
def test_durations_read_as_two_units(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
