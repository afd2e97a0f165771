"""Text commands from handhelds: the board's contract with the people who use it.

One message in, one packet out for every common action (docs/design.md: handheld first). On a shared
channel only prefixed commands are answered; in a direct message plain commands work too. Answers
always go to the sender, on the ring the command arrived on.

Paging: `read` computes all its pages when asked and keeps the ones not yet sent per (sender,
ring). `list` keeps only the last bulletin it showed, and `more` reads the next page from the
store, newest first from there: a ring may hold tens of thousands of bulletins, and a person
reads a few pages. Each bulletin is shown once; one posted meanwhile is newer than the page, so
it waits for the next `list`. Pending pages are forgotten after PENDING_TTL or when more than
MAX_CONVERSATIONS conversations are waiting; a `list` or `read` that fits one packet clears them.

Beyond the documented grammar, a bare `#a3f0` reads that bulletin, and on a shared channel an
unknown `!word` gets no answer (other bots share the `!` prefix; silence saves airtime).

With a rate limiter (the daemon always has one), each command the board would answer spends the
sender's tokens; one over the limit is not carried out, and only the first of a stretch is
answered, with when to try again (`board.ratelimit`).

`handle` never raises for any text: user mistakes are BoardErrors and become a one-packet answer,
and a reply never carries a control character (an echoed word is shown with `?` in its place).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from board.bulletin import Bulletin, is_control, new_bulletin
from board.config import DEFAULT_CONFIG, ConfigError, MeshboardConfig, RingSpec
from board.errors import BoardError, NotFound
from board.handheld.membership import Membership
from board.handheld.moderation import ModCommand, Moderation
from board.handheld.paging import (
    MAX_PACKET_BYTES,
    MORE_SUFFIX,
    fit_lines,
    paginate,
    split_utf8,
    truncate_utf8,
    utf8_len,
)
from board.messages import ExtensionCommand, Inbound, Outcome, Reply
from board.ratelimit import RateLimiter, Verdict
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.members import MemberStore
from board.store.shares import tally_period
from board.store.tools import loans_between
from board.tally import calendar_month, handheld_line
from board.types import TypeRegistry
from board.when import format_when, is_day_only, parse_when

logger = logging.getLogger(__name__)

PENDING_TTL = timedelta(minutes=15)
MAX_CONVERSATIONS = 256
#: A `post` repeated with the same words this soon is a re-send, not a second bulletin.
REPOST_WINDOW = timedelta(minutes=10)
#: List lines are summaries (`read` shows the rest), so a packet holds several.
LIST_LINE_BYTES = 60
#: The shortest list line is `#a3f0: x` and a newline: no packet holds more lines than this, so
#: a page fetched one longer shows whether there is more.
MAX_LIST_LINES = MAX_PACKET_BYTES // len("#a3f0: x\n")
#: Lines are summaries of up to LIST_LINE_BYTES, so a packet usually holds three or four: a
#: list reads this many bulletins first, and more only when they all fit.
LIST_FIRST_READ = 6
MAX_ECHOED_WORD = 20

POST_USAGE = "post needs text: post <type> [when] <text>"
HINT = "send help for commands"
NOTHING_MORE = "nothing more"
SLOW_DOWN = "slow down: try again in {seconds} s"
JOIN_HOW = "join: send !join on the ring's own channel (its key is your invitation)"
WHICH_RING = (
    "you are in {names}: start with the ring's name (e.g. {first} list) or send ring {first}"
)
#: Commands a person in several rings may send before choosing one.
_RING_FREE = frozenset({"help", "?", "rings", "ring", "leave", "join"})

_HEAD = re.compile(r"\s*(\S+)\s*")
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class BoardConfig:
    """What a board operator can configure about the command language."""

    tz: ZoneInfo = UTC_ZONE
    types: TypeRegistry = field(default_factory=TypeRegistry)
    prefix: str = "!"
    rings: MeshboardConfig = DEFAULT_CONFIG  # who moderates which ring


@dataclass(frozen=True)
class _Listing:
    """Where a `list` stopped: `more` goes on after `shown`."""

    type_name: str | None
    shown: Bulletin | None  # the last bulletin sent; None before the first page


@dataclass
class _Pending:
    pages: list[str]  # not yet sent, in order
    touched: datetime
    listing: _Listing | None = None  # a list: its next page comes from the store


Command = Callable[[Inbound, str], list[str]]


class Extension(Protocol):
    """A feature that adds commands (the tool library, subscriptions) without editing this file."""

    def commands(self) -> Mapping[str, ExtensionCommand]: ...

    def help_lines(self) -> list[str]:
        """Lines for `help more`."""
        ...

    def status(self, bulletin: Bulletin, now: datetime) -> str | None:
        """A short word on a bulletin's current state for `list` and `read` (e.g. `free`)."""
        ...


def _head(text: str) -> tuple[str, str]:
    """Split off the first word; the rest keeps its inner newlines."""
    match = _HEAD.match(text)
    if match is None:
        return "", ""
    return match[1], text[match.end() :]


def _one_line(text: str) -> str:
    return text.replace("\n", " ")


def _well_formed(text: str) -> str:
    """`text` with lone surrogates (not UTF-8, so unsendable) as U+FFFD, as the link shows bytes
    that are not UTF-8.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def _printable(text: str) -> str:
    """`text` with every control character (an echoed word may hold one) shown as `?`."""
    if not any(is_control(char) for char in text):
        return text
    return "".join("?" if is_control(char) else char for char in text)


def _guard(texts: list[str]) -> list[str]:
    """Last line of defence: no packet leaves the core over MAX_PACKET_BYTES or unprintable."""
    packets: list[str] = []
    for text in map(_printable, texts):
        if utf8_len(text) <= MAX_PACKET_BYTES:
            packets.append(text)
        else:
            logger.warning("re-splitting an oversized reply of %d bytes", utf8_len(text))
            packets.extend(split_utf8(text, MAX_PACKET_BYTES))
    return packets


class CommandHandler:
    """Turns one inbound text into the replies to send; holds only the pending `more` pages.

    Not thread-safe: the daemon calls it from one thread.
    """

    def __init__(
        self,
        store: Store,
        config: BoardConfig,
        *,
        limiter: RateLimiter | None = None,
        extensions: Sequence[Extension] = (),
        key: BoardKey | None = None,
    ) -> None:
        if not config.prefix or config.prefix != config.prefix.strip():
            raise ValueError("the command prefix must be non-empty, without spaces")
        self._store = store
        self._config = config
        self._limiter = limiter
        self._key = key  # signs the tombstone of a `del`, so that other boards accept it
        self._moderation = Moderation(store, config.rings, key, config.tz)
        self.membership = Membership(MemberStore(store.engine), config.rings, key)
        self._pending: OrderedDict[tuple[str, int], _Pending] = OrderedDict()
        self._changes = Outcome(replies=[])
        self._commands: dict[str, Command] = {
            "help": self._help,
            "?": self._help,
            "post": self._post,
            "list": self._list,
            "read": self._read,
            "more": self._more,
            "del": self._delete,
            "mod": self._moderate,
            "tally": self._tally,
            "join": self._join,
            "leave": self._leave,
            "rings": self._rings,
            "ring": self._ring,
        }
        self._extensions = tuple(extensions)
        for extension in self._extensions:
            for word, command in extension.commands().items():
                self._commands[word] = self._bind(command)
        for spec in config.rings.rings:
            if spec.name in self._commands:
                raise ConfigError(f"ring {spec.name!r}: a ring may not be named like a command")

    def _bind(self, command: ExtensionCommand) -> Command:
        return lambda msg, rest: command(msg, rest, self._changes)

    def handle(self, msg: Inbound) -> Outcome:
        """Replies and changes for one message; user mistakes become a one-packet answer."""
        body = self._command_text(msg)
        if body is None:
            return Outcome(replies=[])
        if self._limiter is not None and self._answers(msg, body):
            verdict = self._limiter.check(msg.sender, msg.now)
            if not verdict.allowed:
                return self._refuse(msg, verdict)
        self._forget_stale(msg.now)
        self._changes = Outcome(replies=[])
        tag, ambiguous = "", tuple[str, ...]()
        if msg.verified:  # PKI, on channel 0 whatever the sender meant: membership says the ring
            served = self.membership.serve(replace(msg, text=body))
            if served.msg.ring < 0:
                return self._changes  # no ring this board serves is theirs
            msg, body, tag, ambiguous = served.msg, served.msg.text, served.tag, served.ambiguous
            if served.renewed is not None:
                self._changes.members.append(served.renewed)
        else:  # heard on the ring's own channel: its sender holds the ring's key
            record = self.membership.witness(msg)
            if record is not None:
                self._changes.members.append(record)
        try:
            if ambiguous and _head(body)[0].lower() not in _RING_FREE:
                names = " and ".join(ambiguous)
                texts = [WHICH_RING.format(names=names, first=ambiguous[0])]
            else:
                texts = self._dispatch(msg, body)
        except BoardError as exc:
            texts = [truncate_utf8(str(exc), MAX_PACKET_BYTES)]
        self._changes.replies.extend(
            Reply(to=msg.sender, ring=msg.ring, text=tag + text) for text in _guard(texts)
        )
        return self._changes

    def key_learned(self, node: str, public_key: bytes, now: datetime) -> Outcome:
        """The radio learned `node`'s key: the joins that waited for it are made now."""
        return Outcome(replies=[], members=self.membership.key_learned(node, public_key, now))

    def _command_text(self, msg: Inbound) -> str | None:
        """The command without its prefix, or None when a shared-channel text is not for us."""
        text = _well_formed(msg.text).strip()
        if text.startswith(self._config.prefix):
            return text[len(self._config.prefix) :].strip()
        return text if msg.direct else None

    def _answers(self, msg: Inbound, body: str) -> bool:
        """Whether the board would answer: a direct message, or a command it knows."""
        word, _ = _head(body)
        return msg.direct or word.startswith("#") or word.lower() in self._commands

    def _refuse(self, msg: Inbound, verdict: Verdict) -> Outcome:
        """Over the limit: say when to try again, once per stretch, and otherwise nothing."""
        if not verdict.first_refusal:
            return Outcome(replies=[])
        logger.info("%s is sending too fast; quiet for %d s", msg.sender, verdict.retry_seconds)
        text = SLOW_DOWN.format(seconds=verdict.retry_seconds)
        return Outcome(replies=[Reply(to=msg.sender, ring=msg.ring, text=text)])

    def _dispatch(self, msg: Inbound, body: str) -> list[str]:
        word, rest = _head(body)
        if word.startswith("#"):  # a bare `#a3f0` reads that bulletin
            return self._read(msg, word)
        command = self._commands.get(word.lower())
        if command is not None:
            return command(msg, rest)
        if not msg.direct:  # other bots on the channel use `!` too: stay quiet
            return []
        if not word:
            return [HINT]
        return [f"unknown command '{truncate_utf8(word, MAX_ECHOED_WORD)}'; send help"]

    def _help(self, msg: Inbound, rest: str) -> list[str]:
        rings = any(spec.private and spec.serve for spec in self._config.rings.rings)
        if rest.strip().lower() == "more" and (self._extensions or rings):
            lines = [line for ext in self._extensions for line in ext.help_lines()]
            if rings:  # first: it says how to reach an inner circle at all
                lines.insert(
                    0, f"{self._config.prefix}join on a ring's channel · rings · ring <name>"
                )
            return [fit_lines(lines, MAX_PACKET_BYTES)[0]]
        head = [
            f"DM me, or start with {self._config.prefix} on a channel:",
            "post <type> [when] <text>",
            "list [type] · read #ref · more",
            "del #ref · help" + (" · help more" if self._extensions or rings else ""),
        ]
        tail = "when: tue 18:00, 6pm, tmrw"
        room = MAX_PACKET_BYTES - utf8_len("\n".join([*head, tail])) - 1
        types = truncate_utf8("types: " + " ".join(self._config.types.names), max(room, 8))
        return ["\n".join([*head, types, tail])]

    def _post(self, msg: Inbound, rest: str) -> list[str]:
        type_word, rest = _head(rest)
        if not type_word:
            return [POST_USAGE]
        types, tz = self._config.types, self._config.tz
        rule = types.get(type_word)
        event, used = parse_when(rest.split(maxsplit=2)[:2], msg.now, tz)
        for _ in range(used):
            _, rest = _head(rest)
        if not rest.strip():
            return [POST_USAGE]
        bulletin = new_bulletin(
            types,
            type=rule.name,
            text=rest,
            author=msg.sender,
            ring=msg.ring,
            now=msg.now,
            event_time=event,
            all_day=event is not None and is_day_only(event, tz),
        )
        earlier = self._store.find_repost(bulletin, REPOST_WINDOW)
        if earlier is not None:
            bulletin = earlier
        elif self._store.add(bulletin, msg.now):
            self._changes.posted.append(bulletin)
        else:
            try:
                self._store.get(bulletin.id, msg.ring)
            except NotFound:
                return [f"#{bulletin.ref} was deleted; change the text to post it again"]
        echo = "ok " + self._line(bulletin, msg.now, with_type=True)
        return [truncate_utf8(echo, MAX_PACKET_BYTES)]

    def _list(self, msg: Inbound, rest: str) -> list[str]:
        type_word, _ = _head(rest)
        type_name = self._config.types.get(type_word).name if type_word else None
        key = (msg.sender, msg.ring)
        self._pending.pop(key, None)
        page = self._list_page(msg, _Listing(type_name, shown=None))
        if page is None:
            return [f"no {type_name} bulletins" if type_name else "no bulletins"]
        text, listing = page
        if listing is not None:
            self._keep(key, _Pending([], msg.now, listing))
        return [text]

    def _list_page(self, msg: Inbound, listing: _Listing) -> tuple[str, _Listing | None] | None:
        """The next packet of a list, and where the one after starts (None: that was all).

        Bulletins are read and lines made only until one does not fit (a tool's line asks for
        its state): usually LIST_FIRST_READ, at most one packet's worth and one more.
        """
        shown: list[Bulletin] = []
        lines: list[str] = []
        after, wanted = listing.shown, LIST_FIRST_READ
        while wanted > 0:
            batch = self._store.page(
                msg.now, msg.ring, listing.type_name, after=after, limit=wanted
            )
            for bulletin in batch:
                line = self._line(bulletin, msg.now, with_type=listing.type_name is None)
                lines.append(truncate_utf8(line, LIST_LINE_BYTES))
                shown.append(bulletin)
                if fit_lines(lines, MAX_PACKET_BYTES)[1] < len(lines):  # more than a packet
                    packet, used = fit_lines(lines, MAX_PACKET_BYTES - utf8_len(MORE_SUFFIX))
                    return packet + MORE_SUFFIX, _Listing(listing.type_name, shown[used - 1])
            if len(batch) < wanted:  # the store has no more
                break
            after, wanted = batch[-1], MAX_LIST_LINES + 1 - len(shown)
        return (fit_lines(lines, MAX_PACKET_BYTES)[0], None) if shown else None

    def _read(self, msg: Inbound, rest: str) -> list[str]:
        ref, _ = _head(rest)
        if not ref:
            return ["read needs a ref: read #a3f0"]
        bulletin = self._store.get(ref, msg.ring, now=msg.now)
        header = f"#{bulletin.ref} {bulletin.type}"
        if bulletin.event_time is not None:
            header += " " + format_when(bulletin.event_time, msg.now, self._config.tz)
        status = self._status(bulletin, msg.now)
        if status is not None:
            header += f" ({status})"
        return self._first_page(msg, paginate(f"{header}\n{bulletin.text}\nby {bulletin.author}"))

    def _more(self, msg: Inbound, _rest: str) -> list[str]:
        key = (msg.sender, msg.ring)
        pending = self._pending.get(key)
        if pending is None:
            return [NOTHING_MORE]
        if pending.pages:
            page = pending.pages.pop(0)
        else:
            assert pending.listing is not None
            found = self._list_page(msg, pending.listing)
            if found is None:  # what was left expired or went meanwhile
                del self._pending[key]
                return [NOTHING_MORE]
            page, pending.listing = found
        if pending.pages or pending.listing is not None:
            pending.touched = msg.now
            self._pending.move_to_end(key)
        else:
            del self._pending[key]
        return [page]

    def _delete(self, msg: Inbound, rest: str) -> list[str]:
        ref, _ = _head(rest)
        if not ref:
            return ["del needs a ref: del #a3f0"]
        bulletin = self._store.delete(
            ref, requester=msg.sender, ring=msg.ring, now=msg.now, key=self._key
        )
        self._changes.deleted.append(bulletin.id)
        return [f"deleted #{bulletin.ref}"]

    def _join(self, msg: Inbound, _rest: str) -> list[str]:
        spec = self._config.rings.by_channel(msg.ring)
        if msg.verified or spec is None or not spec.private:
            return [JOIN_HOW]
        if self.membership.pending(msg.ring, msg.sender):
            return [f"joining {spec.name}: waiting for your radio's key; then DM me"]
        return [f"you are in {spec.name}: DM me '{spec.name} list', or ring {spec.name}"]

    def _leave(self, msg: Inbound, rest: str) -> list[str]:
        name, _ = _head(rest)
        if not msg.verified:  # `!leave` on the ring's own channel
            spec = self._config.rings.by_channel(msg.ring)
        else:
            spec = self._your_ring(msg, name)
        if spec is None or not spec.private:
            return ["leave <ring>: you cannot leave the public ring"]
        record = self.membership.leave(spec, msg.sender, msg.now)
        if record is not None:
            self._changes.members.append(record)
        return [f"left {spec.name}; send !join on its channel to come back"]

    def _rings(self, msg: Inbound, _rest: str) -> list[str]:
        if not msg.verified:
            return [f"this channel is {self._config.rings.name_of(msg.ring)}; DM me for yours"]
        names = [
            spec.name + ("*" if spec.channel == self.membership.chosen(msg.sender) else "")
            for spec in self.membership.rings_of(msg)
        ]
        return [truncate_utf8("your rings: " + ", ".join(names), MAX_PACKET_BYTES)]

    def _ring(self, msg: Inbound, rest: str) -> list[str]:
        name, _ = _head(rest)
        if not msg.verified:
            return ["ring <name>: send it as a direct message"]
        if not name:
            return self._rings(msg, rest)
        spec = self.membership.choose(msg, name)
        if spec is None:
            raise BoardError(self._no_ring(msg, name))
        return [f"now in {spec.name}: your messages go there until you send ring <name>"]

    def _your_ring(self, msg: Inbound, name: str) -> RingSpec:
        spec = next((s for s in self.membership.rings_of(msg) if s.name == name.lower()), None)
        if spec is None:
            raise BoardError(self._no_ring(msg, name))
        return spec

    def _no_ring(self, msg: Inbound, name: str) -> str:
        """The same answer for a ring that does not exist and one the sender is not in."""
        yours = ", ".join(spec.name for spec in self.membership.rings_of(msg))
        return f"no ring '{truncate_utf8(name, MAX_ECHOED_WORD)}'; yours: {yours}"

    def _moderate(self, msg: Inbound, rest: str) -> list[str]:
        command = ModCommand(
            msg.sender, msg.ring, rest, msg.verified, msg.now, public_key=msg.public_key
        )
        reply, action = self._moderation.handle(command)
        if action is not None:
            self._changes.moderated.append(action)
        return [reply]

    def _tally(self, msg: Inbound, _rest: str) -> list[str]:
        """This month's tally for the ring asked on (`board.tally`), in one packet."""
        month = calendar_month(msg.now, self._config.tz)
        engine = self._store.engine
        counted = tally_period(
            engine,
            month,
            msg.ring,
            lambda start, end, ring: loans_between(self._store, start, end, ring),
        )
        return [truncate_utf8(handheld_line(counted), MAX_PACKET_BYTES)]

    def _line(self, bulletin: Bulletin, now: datetime, *, with_type: bool) -> str:
        """`#a3f0 meal tue 18:00: Soup at the hall`, on one line."""
        parts = [f"#{bulletin.ref}"]
        if with_type:
            parts.append(bulletin.type)
        if bulletin.event_time is not None:
            parts.append(format_when(bulletin.event_time, now, self._config.tz))
        line = " ".join(parts) + ": " + _one_line(bulletin.text)
        status = self._status(bulletin, now)
        if status is None:
            return line
        tail = f" — {status}"  # kept whole: the text gives way
        return truncate_utf8(line, max(LIST_LINE_BYTES - utf8_len(tail), 8)) + tail

    def _status(self, bulletin: Bulletin, now: datetime) -> str | None:
        for extension in self._extensions:
            status = extension.status(bulletin, now)
            if status is not None:
                return status
        return None

    def _first_page(self, msg: Inbound, pages: list[str]) -> list[str]:
        """Send the first page now and keep the rest for `more`."""
        key = (msg.sender, msg.ring)
        self._pending.pop(key, None)
        if len(pages) > 1:
            self._keep(key, _Pending(pages[1:], msg.now))
        return pages[:1]

    def _keep(self, key: tuple[str, int], pending: _Pending) -> None:
        """Remember what `more` sends next; only the latest MAX_CONVERSATIONS are kept."""
        self._pending[key] = pending
        while len(self._pending) > MAX_CONVERSATIONS:
            self._pending.popitem(last=False)

    def _forget_stale(self, now: datetime) -> None:
        """Drop pending pages untouched for PENDING_TTL (the dict is kept oldest first)."""
        while self._pending:
            key, pending = next(iter(self._pending.items()))
            if now - pending.touched < PENDING_TTL:
                break
            del self._pending[key]
