"""Domain errors of the board core.

Every message is short and human, because the command handler and the CLI show it to a person
verbatim (on a handheld, inside one 200-byte packet).
"""

from __future__ import annotations

from collections.abc import Iterable


class BoardError(Exception):
    """Base of every error the core raises for bad input or a missing bulletin."""


class UnknownType(BoardError):
    """A bulletin type that this board is not configured for."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known: tuple[str, ...] = tuple(known)
        super().__init__(f"unknown type '{name}'; types: {' '.join(self.known)}")


class InvalidText(BoardError):
    """Bulletin text that is empty, too long or contains control characters."""


class InvalidWhen(BoardError):
    """An event time that cannot be read, such as `25:00` or `13pm`."""


class InvalidBulletin(BoardError):
    """A bulletin field other than the text breaks an invariant (author, ring, times, type)."""


class MalformedBulletin(BoardError):
    """Bytes that are not a valid canonical bulletin encoding (e.g. from another board)."""


class NotFound(BoardError):
    """No bulletin matches the reference a person typed."""


class AmbiguousRef(BoardError):
    """A typed reference matches several bulletins; `matches` are refs long enough to tell apart."""

    def __init__(self, ref: str, matches: Iterable[str]) -> None:
        self.ref = ref
        self.matches: list[str] = list(matches)
        shown = " ".join(f"#{m}" for m in self.matches)
        super().__init__(f"#{ref} matches {shown}; send more of it")


class NotAuthor(BoardError):
    """Someone other than the author tried to delete a bulletin."""


class ForeignPacket(BoardError):
    """A payload on the board port that is not ours: another app, or a newer board plane."""


class MalformedPacket(BoardError):
    """A board-plane payload of our version that is truncated, oversized or has bad fields."""


class DatabaseUnavailable(BoardError):
    """The database file cannot be opened: another program kept it locked, or it is damaged."""
