"""The validated bulletin model and its canonical binary encoding.

Text and radio bytes are validated here, before anything becomes a table row (sqlmodel table
models skip validation). The canonical encoding is what the id hashes and what board-to-board sync
will put on the air, so it is compact, deterministic and versioned.
"""

from __future__ import annotations

import logging
import re
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from board.errors import BoardError, InvalidBulletin, InvalidText, MalformedBulletin
from board.refs import bulletin_id, short_ref
from board.types import TypeRegistry
from board.when import unix_seconds

logger = logging.getLogger(__name__)

MAX_TEXT_BYTES = 200
MAX_TYPE_BYTES = 32
MAX_RING = 7
CANONICAL_VERSION = 1
#: No bulletin lives longer than this after it is created: an event at most a year ahead (see
#: `board.when`) plus its type's time after the event. It bounds what a forged or mistyped time
#: can cost, without reading any clock (clocks lie; docs/design.md).
MAX_LIFETIME = timedelta(days=400)

# version, ring, author (4 bytes), created_at, event_time (0 = none), expires_at, type length
_HEADER = struct.Struct(">BB4sIIIB")
_AUTHOR = re.compile(r"![0-9a-f]{8}")
_ALLOWED_CONTROLS = frozenset("\n\t")
#: Embeddings, overrides and isolates make text display in another order than it is stored
#: ("Trojan Source"); the plain direction marks (U+200E, U+200F, U+061C) stay allowed.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = str.maketrans({"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
_REPLACEMENT = "\ufffd"  # what the link puts where a handheld sent bytes that are not UTF-8
_VISIBLE = frozenset("LNPS")  # letters, numbers, punctuation, symbols (emoji are symbols)
#: Letters and symbols that render as nothing: the Hangul fillers and Khmer inherent vowels
#: (Default_Ignorable_Code_Point in Unicode's DerivedCoreProperties.txt, yet categorised Lo/Mn),
#: the Mongolian vowel separator, the braille blank (U+2800, a symbol with no dots) and the
#: musical null notehead. A text of only these looks empty on every screen.
_BLANK_LOOKING = frozenset("\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0\U0001d159")
_BLANKS = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n[\n ]*")


def is_control(char: str) -> bool:
    """A character that must never reach a screen: a control (but newline and tab), a lone
    surrogate, or a bidi override.
    """
    category = unicodedata.category(char)
    if category == "Cc":
        return char not in _ALLOWED_CONTROLS
    return category == "Cs" or char in _BIDI_CONTROLS


def normalise_text(text: str) -> str:
    """Collapse blanks and blank lines, reject control characters, enforce the byte budget.

    Text must show something: blanks, zero-width and combining characters alone are empty.
    """
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS)
    if any(is_control(char) for char in text):
        raise InvalidText("text contains control characters")
    if _REPLACEMENT in text:
        raise InvalidText("text has bytes that are not UTF-8")
    text = _NEWLINES.sub("\n", _BLANKS.sub(" ", text)).strip()
    if not any(
        unicodedata.category(char)[0] in _VISIBLE and char not in _BLANK_LOOKING for char in text
    ):
        raise InvalidText("text is empty")
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise InvalidText(f"text is {size} bytes; at most {MAX_TEXT_BYTES}")
    return text


def to_utc_seconds(moment: datetime) -> datetime:
    """UTC, whole seconds, and representable as the unsigned 32-bit time the encoding carries."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidBulletin("times must be timezone-aware")
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if not 0 < moment.timestamp() < 2**32:
        raise InvalidBulletin(f"time out of range: {moment.isoformat()}")
    return moment


def _fromunix_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Bulletin(BaseModel):
    """One bulletin as posted: immutable, because its id is a hash of its content."""

    model_config = ConfigDict(frozen=True, strict=True)

    type: str
    text: str
    author: str
    ring: int
    created_at: datetime
    event_time: datetime | None = None
    expires_at: datetime

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        size = len(value.encode("utf-8"))
        if not value.isalnum() or value != value.lower() or size > MAX_TYPE_BYTES:
            raise InvalidBulletin(f"bad type '{value}'")
        return value

    @field_validator("text")
    @classmethod
    def _check_text(cls, value: str) -> str:
        return normalise_text(value)

    @field_validator("author")
    @classmethod
    def _check_author(cls, value: str) -> str:
        if not _AUTHOR.fullmatch(value):
            raise InvalidBulletin(f"bad node id '{value}'; expected like !a1b2c3d4")
        return value

    @field_validator("ring")
    @classmethod
    def _check_ring(cls, value: int) -> int:
        if not 0 <= value <= MAX_RING:
            raise InvalidBulletin(f"ring {value} is not a channel index 0..{MAX_RING}")
        return value

    @field_validator("created_at", "expires_at")
    @classmethod
    def _check_time(cls, value: datetime) -> datetime:
        return to_utc_seconds(value)

    @field_validator("event_time")
    @classmethod
    def _check_event_time(cls, value: datetime | None) -> datetime | None:
        return None if value is None else to_utc_seconds(value)

    @model_validator(mode="after")
    def _check_expiry(self) -> Bulletin:
        if self.expires_at <= self.created_at:
            raise InvalidBulletin("a bulletin must expire after it is created")
        if self.expires_at - self.created_at > MAX_LIFETIME:
            raise InvalidBulletin(f"a bulletin lives at most {MAX_LIFETIME.days} days")
        return self

    @property
    def id(self) -> str:
        return bulletin_id(self.canonical_bytes())

    @property
    def ref(self) -> str:
        return short_ref(self.id)

    def canonical_bytes(self) -> bytes:
        """The deterministic binary form: fixed header, length-prefixed type, text to the end."""
        type_bytes = self.type.encode("utf-8")
        header = _HEADER.pack(
            CANONICAL_VERSION,
            self.ring,
            bytes.fromhex(self.author[1:]),
            unix_seconds(self.created_at),
            0 if self.event_time is None else unix_seconds(self.event_time),
            unix_seconds(self.expires_at),
            len(type_bytes),
        )
        return header + type_bytes + self.text.encode("utf-8")

    @classmethod
    def from_canonical_bytes(cls, data: bytes) -> Bulletin:
        """Decode bytes from another board; anything that would not re-encode identically fails."""
        if len(data) < _HEADER.size:
            raise MalformedBulletin(f"bulletin is {len(data)} bytes; too short")
        version, ring, author, created, event, expires, type_len = _HEADER.unpack_from(data)
        if version != CANONICAL_VERSION:
            raise MalformedBulletin(f"unknown bulletin version {version}")
        type_end = _HEADER.size + type_len
        if type_len == 0 or len(data) <= type_end:
            raise MalformedBulletin("bulletin type or text missing")
        try:
            bulletin = cls(
                type=data[_HEADER.size : type_end].decode("utf-8"),
                text=data[type_end:].decode("utf-8"),
                author="!" + author.hex(),
                ring=ring,
                created_at=_fromunix_seconds(created),
                event_time=_fromunix_seconds(event) if event else None,
                expires_at=_fromunix_seconds(expires),
            )
        except (UnicodeDecodeError, BoardError, ValidationError) as exc:
            raise MalformedBulletin(f"malformed bulletin: {exc}") from exc
        if bulletin.canonical_bytes() != data:
            raise MalformedBulletin("bulletin text is not in canonical form")
        return bulletin


from_canonical_bytes = Bulletin.from_canonical_bytes


def readable_bulletins(rows: Iterable[tuple[str, bytes]]) -> list[Bulletin]:
    """Stored (id, canonical) rows as bulletins, leaving out (and logging) any that the current
    rules refuse.

    A row stored before a rule was tightened (e.g. an event years ahead) must not break every
    list of its ring; `read` of that one bulletin still reports it.
    """
    bulletins = []
    for stored_id, canonical in rows:
        try:
            bulletins.append(Bulletin.from_canonical_bytes(canonical))
        except MalformedBulletin as exc:
            logger.warning("not listing stored bulletin %s: %s", stored_id, exc)
    return bulletins


def new_bulletin(
    types: TypeRegistry,
    *,
    type: str,
    text: str,
    author: str,
    ring: int,
    now: datetime,
    event_time: datetime | None = None,
    all_day: bool = False,
) -> Bulletin:
    """Build a bulletin posted at `now`, with its expiry from the type's rule.

    `all_day` marks an event given only as a day (see `board.when.is_day_only`), so that it lasts
    the whole day. Raises only BoardError subclasses, never pydantic's ValidationError.
    """
    rule = types.get(type)
    created_at = to_utc_seconds(now)
    event = None if event_time is None else to_utc_seconds(event_time)
    expires_at = types.expiry(rule.name, created_at, event, all_day=all_day)
    try:
        return Bulletin(
            type=rule.name,
            text=text,
            author=author,
            ring=ring,
            created_at=created_at,
            event_time=event,
            expires_at=expires_at,
        )
    except ValidationError as exc:
        raise InvalidBulletin(f"invalid bulletin: {exc.errors()[0]['msg']}") from exc


@dataclass(frozen=True)
class Tombstone:
    """A deletion as sync carries it; `deleted_by=None` is a board operator."""

    bulletin_id: str
    ring: int
    author: str
    deleted_by: str | None
    deleted_at: datetime
    expires_at: datetime
