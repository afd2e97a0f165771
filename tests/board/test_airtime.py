"""Time on air from the LoRa formula, and the board's airtime budget across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from board.airtime import AirtimeBudget, estimate_airtime
from board.store.bulletins import Store

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "preset", "seconds"),
    [
        (200, "LONG_FAST", 1.911),  # docs/design.md: a 200-byte packet ≈1.9 s (223 bytes on air)
        (200, "MEDIUM_FAST", 0.570),  # ≈0.56 s
        (45, "LONG_FAST", 0.764),  # a digest (the 2-byte bitfield costs it a symbol block)
        (0, "LONG_FAST", 0.395),
        (233, "LONG_SLOW", 14.557),
    ],
)
def test_estimate_airtime(payload: int, preset: str, seconds: float) -> None:
    assert estimate_airtime(payload, preset) == pytest.approx(seconds, abs=0.001)


def test_airtime_grows_with_payload() -> None:
    times = [estimate_airtime(n) for n in range(234)]
    assert times == sorted(times)


def test_budget_slides_with_the_window() -> None:
    budget = AirtimeBudget()  # 5 % of an hour: 180 s
    assert budget.limit == 180.0
    budget.record(NOW, 100.0)
    budget.record(NOW + timedelta(minutes=30), 70.0)
    later = NOW + timedelta(minutes=45)
    assert budget.used(later) == 170.0
    assert budget.remaining(later) == 10.0
    assert budget.can_send(later, 10.0)
    assert not budget.can_send(later, 10.5)
    assert budget.can_send(later, 150.0, essential=True)  # people get up to the legal 10 %
    assert not budget.can_send(later, 191.0, essential=True)
    assert budget.used(NOW + timedelta(minutes=61)) == 70.0


def test_budget_survives_a_restart() -> None:
    store = Store.open("sqlite://")
    budget = AirtimeBudget.load(store, NOW)
    budget.record(NOW - timedelta(hours=2), 50.0)
    budget.record(NOW, 100.0)
    budget.record(NOW + timedelta(minutes=10), 60.0)
    restarted = AirtimeBudget.load(store, NOW + timedelta(minutes=20))
    assert restarted.used(NOW + timedelta(minutes=20)) == 160.0
    assert not restarted.can_send(NOW + timedelta(minutes=20), 30.0)


def test_clock_set_back_by_days_does_not_silence_the_board() -> None:
    budget = AirtimeBudget()
    budget.record(NOW, 180.0)
    assert not budget.can_send(NOW + timedelta(minutes=5), 1.0)
    assert budget.can_send(NOW - timedelta(days=2), 1.0)


@pytest.mark.parametrize(
    ("reports", "busy"),
    [
        ([10.0], False),
        ([26.0], True),
        ([26.0, 22.0], True),  # hysteresis: still busy until below 20 %
        ([26.0, 19.0], False),
    ],
)
def test_busy_channel_pauses_sync_not_people(reports: list[float], busy: bool) -> None:
    budget = AirtimeBudget()
    for minute, percent in enumerate(reports):
        budget.note_channel_utilisation(NOW + timedelta(minutes=minute), percent)
    now = NOW + timedelta(minutes=len(reports))
    assert budget.can_send(now, 1.0) is not busy
    assert budget.can_send(now, 1.0, essential=True)


def test_stale_utilisation_report_is_ignored() -> None:
    budget = AirtimeBudget()
    budget.note_channel_utilisation(NOW, 35.0)
    assert not budget.can_send(NOW + timedelta(minutes=59), 1.0)
    assert budget.can_send(NOW + timedelta(minutes=61), 1.0)


def test_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError):
        AirtimeBudget(limit_fraction=0.2)


def test_a_pki_direct_message_costs_its_12_bytes_of_tag_and_nonce() -> None:
    assert estimate_airtime(188, pki=True) == estimate_airtime(200)
    assert estimate_airtime(100, pki=True) > estimate_airtime(100)
