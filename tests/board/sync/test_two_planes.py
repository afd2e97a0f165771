"""One board on two planes (the air, and an MQTT broker through node/bridge): two sync engines
over one store. What one stores the other announces at once (`reread`), and the broker's engine
(`relay=False`: every board hears every packet there) passes nothing on and sends nothing twice.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from board.store.bulletins import Store
from board.sync.engine import SyncConfig, SyncEngine
from board.wire.codec import Announce, Digest, encode
from tests.board.sync.test_engine import (
    NEIGHBOUR,
    RELAY_WINDOW,
    T0,
    announced,
    bulletin,
    sent_between,
)

BROKER = SyncConfig(relay=False, imin=10.0, imax=900.0, relay_window=2.0, news_check=60.0)


def test_what_the_broker_brings_is_announced_on_the_air_within_a_relay_window(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "board.db")
    air = SyncEngine(store, SyncConfig(), random.Random(1))
    broker = SyncEngine(store, BROKER, random.Random(2))
    air.start(T0)
    broker.start(T0)
    sent_between(air, T0, 30)  # the start's digests
    far = bulletin(1, T0)
    at = T0 + timedelta(seconds=60)
    broker.receive(encode(Announce(far.canonical_bytes())), 0, NEIGHBOUR, at)
    assert far.id in {b.id for b in store.active(at, ring=0)}
    air.reread(at)
    assert announced(sent_between(air, at, RELAY_WINDOW)) == [far.canonical_bytes()]
    store.close()


def test_on_the_broker_news_is_not_passed_on_and_a_post_is_sent_once() -> None:
    broker = SyncEngine(Store.open("sqlite://"), BROKER, random.Random(3))
    broker.start(T0)
    sent_between(broker, T0, 30)
    heard = bulletin(1, T0)
    at = T0 + timedelta(seconds=60)
    broker.receive(encode(Announce(heard.canonical_bytes())), 0, NEIGHBOUR, at)
    ours = bulletin(2, at)
    broker.store.add(ours, at)
    broker.local_bulletin(ours, at)
    later = sent_between(broker, at, 3600)
    assert announced(later) == [ours.canonical_bytes()]  # nobody answered, and none resent
    assert sum(isinstance(m, Digest) for m in later) <= 8  # Trickle alone: 10 s doubling to 900

    relaying = SyncEngine(Store.open("sqlite://"), SyncConfig(), random.Random(3))
    relaying.start(T0)
    sent_between(relaying, T0, 30)
    relaying.receive(encode(Announce(heard.canonical_bytes())), 0, NEIGHBOUR, at)
    assert announced(sent_between(relaying, at, RELAY_WINDOW)) == [heard.canonical_bytes()]
