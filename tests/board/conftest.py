"""Fixtures for the board core: a real in-memory SQLite store and a bulletin factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.pool import StaticPool

from board.bulletin import Bulletin, new_bulletin
from board.store.bulletins import Store
from board.types import TypeRegistry

# Monday 2026-11-23 10:00 in Berlin (CET, UTC+1).
MONDAY_10H = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool)
    yield Store(engine)
    engine.dispose()


@pytest.fixture
def make() -> Callable[..., Bulletin]:
    """Build a valid bulletin; keyword arguments override the defaults."""

    def build(**overrides: Any) -> Bulletin:
        fields: dict[str, Any] = {
            "type": "meal",
            "text": "Soup at the hall",
            "author": "!a1b2c3d4",
            "ring": 0,
            "now": MONDAY_10H,
        }
        fields.update(overrides)
        return new_bulletin(TypeRegistry(), **fields)

    return build
