"""Bulletin types and how long each kind lives.

Every bulletin expires (docs/design.md): a meal is over a few hours after it is served, a tool offer
lasts weeks. The set is configurable per board, so the rules are data, not code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from board.errors import UnknownType

#: A bulletin whose event is long past still lives this long, so it is never expired on arrival.
MIN_LIFETIME = timedelta(hours=1)

#: An event given only as a day ("meal tue") lasts the whole local day.
ALL_DAY = timedelta(days=1)

#: A board's own type names stay this short so that a bulletin with a full 200-byte text still
#: fits one board-plane announce (docs/wire-format.md): 10 bytes, since a real radio refuses a
#: board-plane payload over 231 bytes (`board.wire.frame`); it was 12 when the limit was taken
#: to be 233. Longer names would keep such bulletins local. The wire still accepts longer names
#: from other boards.
MAX_TYPE_NAME_BYTES = 10

#: The longest a type may keep a bulletin: `board.bulletin.MAX_LIFETIME` refuses anything beyond
#: it, so a rule asking for more would make every post of that type fail.
MAX_RULE_LIFETIME = timedelta(days=400)


@dataclass(frozen=True)
class TypeRule:
    """How long bulletins of one type live."""

    name: str
    lifetime: timedelta  # after posting, when there is no event time
    after_event: timedelta  # after the event time, when there is one


DEFAULT_TYPE_RULES: tuple[TypeRule, ...] = (
    TypeRule("meal", timedelta(days=1), timedelta(hours=6)),
    TypeRule("skill", timedelta(days=14), timedelta(hours=6)),
    TypeRule("tool", timedelta(days=28), timedelta(days=1)),
    TypeRule("childcare", timedelta(days=7), timedelta(hours=12)),
    TypeRule("food", timedelta(days=3), timedelta(hours=12)),
    TypeRule("notice", timedelta(days=14), timedelta(days=1)),
)


class TypeRegistry:
    """The bulletin types one board accepts, in the order its menu shows them."""

    def __init__(self, rules: Iterable[TypeRule] = DEFAULT_TYPE_RULES) -> None:
        self._rules: dict[str, TypeRule] = {}
        for rule in rules:
            key = rule.name.lower()
            if not key.isalnum() or key in self._rules:
                raise ValueError(f"type names must be unique single words: {rule.name!r}")
            if len(key.encode("utf-8")) > MAX_TYPE_NAME_BYTES:
                raise ValueError(
                    f"type name {rule.name!r} is longer than {MAX_TYPE_NAME_BYTES} bytes"
                )
            if max(rule.lifetime, rule.after_event) > MAX_RULE_LIFETIME:
                raise ValueError(
                    f"type {rule.name!r} lives longer than {MAX_RULE_LIFETIME.days} days"
                )
            self._rules[key] = TypeRule(key, rule.lifetime, rule.after_event)
        if not self._rules:
            raise ValueError("a board needs at least one bulletin type")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._rules)

    def get(self, name: str) -> TypeRule:
        """Look a type up as a person typed it (any case)."""
        try:
            return self._rules[name.lower()]
        except KeyError:
            raise UnknownType(name, self.names) from None

    def expiry(
        self,
        type_name: str,
        created_at: datetime,
        event_time: datetime | None,
        *,
        all_day: bool = False,
    ) -> datetime:
        """When a bulletin stops being listed, never sooner than MIN_LIFETIME after posting.

        `all_day` marks an event given only as a day (its time is local midnight): it then lasts
        until the end of that day before `after_event` starts counting.
        """
        rule = self.get(type_name)
        if event_time is None:
            return created_at + rule.lifetime
        end = event_time + ALL_DAY if all_day else event_time
        return max(end + rule.after_event, created_at + MIN_LIFETIME)
