"""The text commands as a person on a handheld experiences them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from board.handheld.commands import (
    HINT,
    MAX_CONVERSATIONS,
    NOTHING_MORE,
    POST_USAGE,
    BoardConfig,
    CommandHandler,
)
from board.handheld.paging import MAX_PACKET_BYTES, MORE_SUFFIX
from board.messages import Inbound, Outcome, Reply
from board.store.bulletins import Store
from board.types import TypeRegistry, TypeRule

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN).astimezone(UTC)  # Monday 10:00 in Berlin
ALICE, BOB = "!a1b2c3d4", "!0badcafe"


class Person:
    """A handheld talking to the board, with a clock that the test moves."""

    def __init__(self, handler: CommandHandler, sender: str = ALICE, ring: int = 0) -> None:
        self.handler, self.sender, self.ring, self.now = handler, sender, ring, NOW

    def send(self, text: str, *, direct: bool = True) -> list[Reply]:
        replies = self.handler.handle(
            Inbound(self.sender, self.ring, text, direct, self.now)
        ).replies
        for reply in replies:
            assert (reply.to, reply.ring) == (self.sender, self.ring)
            assert len(reply.text.encode("utf-8")) <= MAX_PACKET_BYTES
        return replies

    def ask(self, text: str, *, direct: bool = True) -> str:
        """Send and expect exactly one packet back."""
        replies = self.send(text, direct=direct)
        assert len(replies) == 1, replies
        return replies[0].text

    def post(self, text: str) -> str:
        """Post and return the ref the board answered with."""
        answer = self.ask(f"post {text}")
        assert answer.startswith("ok #"), answer
        return answer.removeprefix("ok #").split()[0]


@pytest.fixture
def handler(store: Store) -> CommandHandler:
    return CommandHandler(store, BoardConfig(tz=BERLIN))


@pytest.fixture
def alice(handler: CommandHandler) -> Person:
    return Person(handler, ALICE)


@pytest.fixture
def bob(handler: CommandHandler) -> Person:
    return Person(handler, BOB)


def strip_more(pages: list[str]) -> str:
    return "".join(page.removesuffix(MORE_SUFFIX) for page in pages[:-1]) + pages[-1]


def list_lines(pages: list[str]) -> list[str]:
    return [line for page in pages for line in page.removesuffix(MORE_SUFFIX).splitlines()]


def fill(person: Person, count: int = 4) -> None:
    """Post enough long-lined bulletins that a list needs more than one packet."""
    for n in range(count):
        person.now += timedelta(minutes=1)
        person.post(f"skill Lesson {n}: knitting, soldering or bread, ask at the hall")


def read_all(person: Person, first: str) -> list[str]:
    pages = [first]
    while pages[-1].endswith(MORE_SUFFIX):
        pages.append(person.ask("more"))
    return pages


# help and hints


@pytest.mark.parametrize("command", ["help", "?", "HELP", "!help", "! help"])
def test_help_names_every_command_and_type(alice: Person, command: str) -> None:
    menu = alice.ask(command)
    assert len(menu.encode()) <= MAX_PACKET_BYTES
    for word in ("post", "list", "read", "more", "del", "help", *TypeRegistry().names):
        assert word in menu


def test_help_on_a_shared_channel(alice: Person) -> None:
    assert "post" in alice.ask("!help", direct=False)


def test_help_fits_with_many_configured_types(store: Store) -> None:
    rules = [TypeRule(f"typename{n}", timedelta(days=1), timedelta(hours=1)) for n in range(30)]
    person = Person(CommandHandler(store, BoardConfig(types=TypeRegistry(rules))))
    assert "typename0" in person.ask("help")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("xyz", "unknown command 'xyz'; send help"),
        ("!xyz", "unknown command 'xyz'; send help"),
        ("Hello board, what is up?", "unknown command 'Hello'; send help"),
        ("w" * 80, "unknown command 'wwwwwwwwwwwwwwwww…'; send help"),
        ("", HINT),
        ("   ", HINT),
        ("!", HINT),
    ],
)
def test_a_direct_message_is_never_met_with_silence(alice: Person, text: str, answer: str) -> None:
    assert alice.ask(text) == answer


@pytest.mark.parametrize(
    "text", ["post meal Soup", "list", "hello everyone", "!", "!xyz", "!!!", "", "help"]
)
def test_shared_channel_ignores_what_is_not_a_known_prefixed_command(
    alice: Person, store: Store, text: str
) -> None:
    assert alice.send(text, direct=False) == []
    assert store.count() == 0


def test_prefixed_post_on_a_shared_channel_works(alice: Person, store: Store) -> None:
    assert alice.ask("!post meal Soup", direct=False).startswith("ok #")
    assert store.count() == 1


def test_the_prefix_is_configurable(store: Store) -> None:
    person = Person(CommandHandler(store, BoardConfig(prefix="@")))
    assert person.ask("@list", direct=False) == "no bulletins"
    assert person.send("!list", direct=False) == []


def test_an_empty_prefix_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        CommandHandler(store, BoardConfig(prefix=""))


# post


def test_post_stores_and_echoes(alice: Person, store: Store) -> None:
    answer = alice.ask("post meal tue 18:00 Soup at the hall")
    [bulletin] = store.active(NOW)
    assert answer == f"ok #{bulletin.ref} meal tmrw 18:00: Soup at the hall"
    assert (bulletin.author, bulletin.ring, bulletin.type) == (ALICE, 0, "meal")
    assert bulletin.event_time == datetime(2026, 11, 24, 18, 0, tzinfo=BERLIN)


def test_post_keywords_are_case_insensitive(alice: Person, store: Store) -> None:
    alice.post("MEAL Tomorrow 6PM Soup")
    [bulletin] = store.active(NOW)
    assert bulletin.type == "meal"
    assert bulletin.event_time == datetime(2026, 11, 24, 18, 0, tzinfo=BERLIN)


def test_post_keeps_the_lines_of_the_text(alice: Person, store: Store) -> None:
    alice.post("notice Hall closed\nuse the side door")
    assert store.active(NOW)[0].text == "Hall closed\nuse the side door"


def test_post_goes_to_the_ring_it_came_from(handler: CommandHandler, store: Store) -> None:
    ref = Person(handler, ALICE, ring=3).post("tool Ladder")
    assert store.get(ref).ring == 3


def test_a_resent_post_is_answered_with_the_same_ref(alice: Person, store: Store) -> None:
    first = alice.post("meal tue 18:00 Soup at the hall")
    alice.now += timedelta(seconds=40)
    assert alice.post("meal tue 18:00 Soup at the hall") == first
    assert store.count() == 1


def test_a_meal_posted_for_a_day_lasts_the_whole_day(alice: Person) -> None:
    ref = alice.post("meal tue Soup in the evening")
    alice.now = datetime(2026, 11, 24, 20, 0, tzinfo=BERLIN).astimezone(UTC)
    assert alice.ask("list").startswith(f"#{ref} meal today: Soup")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("post", POST_USAGE),
        ("post meal", POST_USAGE),
        ("post meal tue 18:00", POST_USAGE),
        ("post meal   ", POST_USAGE),
        ("post soup Hot soup", "unknown type 'soup'; types: meal skill tool childcare food notice"),
        ("post meal 25:00 Soup", "no such time '25:00'; try tue 18:00, 6pm, tomorrow"),
        ("post meal " + "ü" * 101, "text is 202 bytes; at most 200"),
        ("post meal Soup\x07", "text contains control characters"),
    ],
)
def test_post_mistakes_are_explained(alice: Person, store: Store, text: str, answer: str) -> None:
    assert alice.ask(text) == answer
    assert store.count() == 0


def test_reposting_what_its_author_just_deleted_is_explained(alice: Person) -> None:
    ref = alice.post("meal Soup")
    alice.ask(f"del #{ref}")
    assert alice.ask("post meal Soup") == f"#{ref} was deleted; change the text to post it again"


def test_post_echo_fits_one_packet(alice: Person) -> None:
    answer = alice.ask("post notice " + "ü" * 100)
    assert answer.startswith("ok #")
    assert answer.endswith("…")


# list and more


def test_list_empty(alice: Person) -> None:
    assert alice.ask("list") == "no bulletins"
    assert alice.ask("list meal") == "no meal bulletins"


def test_list_unknown_type(alice: Person) -> None:
    assert alice.ask("list soup").startswith("unknown type 'soup'; types: meal")


def test_list_is_newest_first_one_per_line(alice: Person) -> None:
    soup = alice.post("meal tue 18:00 Soup at the hall")
    alice.now += timedelta(minutes=1)
    ladder = alice.post("tool Ladder to lend")
    assert alice.ask("list") == (
        f"#{ladder} tool: Ladder to lend\n#{soup} meal tmrw 18:00: Soup at the hall"
    )
    assert alice.ask("LIST meal") == f"#{soup} tmrw 18:00: Soup at the hall"


def test_list_shows_only_the_inbound_ring(handler: CommandHandler) -> None:
    Person(handler, ALICE, ring=1).post("meal Soup on ring one")
    assert Person(handler, BOB, ring=0).ask("list") == "no bulletins"
    assert "ring one" in Person(handler, BOB, ring=1).ask("list")


@pytest.mark.parametrize(
    ("count", "text", "packets"),
    [
        (25, "Lesson {n}: knitting, soldering or bread, ask at the hall", 9),  # 3 a packet
        (10, "{n}", 1),  # short lines: more than the first read fits one packet
        (40, "{n}", 4),
    ],
)
def test_list_and_more_cover_every_bulletin_exactly_once(
    alice: Person, count: int, text: str, packets: int
) -> None:
    refs = []
    for n in range(count):
        alice.now += timedelta(minutes=1)
        refs.append(alice.post("skill " + text.format(n=n)))
    pages = read_all(alice, alice.ask("list"))
    assert len(pages) == packets
    listed = [line.split()[0].removeprefix("#") for line in list_lines(pages)]
    assert listed == refs[::-1]
    assert alice.ask("more") == NOTHING_MORE


def test_more_continues_the_snapshot_even_if_others_post(alice: Person, bob: Person) -> None:
    fill(alice, 12)
    first = alice.ask("list")
    bob.now = alice.now + timedelta(minutes=1)
    bob.post("meal Soup")
    pages = read_all(alice, first)
    assert len(list_lines(pages)) == 12
    assert not any("Soup" in line for line in list_lines(pages))


def refs_of(page: str) -> list[str]:
    return [
        line.split()[0].removeprefix("#") for line in page.removesuffix(MORE_SUFFIX).split("\n")
    ]


def test_more_goes_on_after_the_last_one_shown_even_once_it_is_deleted(alice: Person) -> None:
    refs = []
    for n in range(8):
        alice.now += timedelta(minutes=1)
        refs.append(alice.post(f"skill Lesson {n}: knitting, soldering or bread, ask at the hall"))
    shown = refs_of(alice.ask("list"))
    assert alice.ask(f"del #{shown[-1]}") == f"deleted #{shown[-1]}"
    rest = [ref for page in read_all(alice, alice.ask("more")) for ref in refs_of(page)]
    assert rest == [ref for ref in refs[::-1] if ref not in shown]


def test_more_when_the_rest_went_meanwhile(alice: Person, store: Store) -> None:
    fill(alice, 8)
    shown = refs_of(alice.ask("list"))
    for bulletin in store.active(alice.now, ring=0)[len(shown) :]:
        assert alice.ask(f"del #{bulletin.ref}") == f"deleted #{bulletin.ref}"
    assert alice.ask("more") == NOTHING_MORE


def test_more_with_nothing_pending(alice: Person) -> None:
    assert alice.ask("more") == NOTHING_MORE


def test_pending_pages_are_forgotten_after_15_minutes(alice: Person) -> None:
    fill(alice)
    assert alice.ask("list").endswith(MORE_SUFFIX)
    alice.now += timedelta(minutes=15)
    assert alice.ask("more") == NOTHING_MORE


def test_pending_pages_belong_to_one_sender_and_ring(handler: CommandHandler) -> None:
    alice = Person(handler, ALICE)
    fill(alice)
    assert alice.ask("list").endswith(MORE_SUFFIX)
    assert Person(handler, BOB).ask("more") == NOTHING_MORE
    assert Person(handler, ALICE, ring=1).ask("more") == NOTHING_MORE
    assert alice.ask("more") != NOTHING_MORE


def test_only_the_latest_conversations_keep_pages(handler: CommandHandler) -> None:
    fill(Person(handler))
    people = [Person(handler, f"!{n:08x}") for n in range(MAX_CONVERSATIONS + 1)]
    for person in people:
        person.ask("list")
    assert people[0].ask("more") == NOTHING_MORE
    assert people[-1].ask("more") != NOTHING_MORE


def test_a_one_page_list_clears_older_pages(alice: Person) -> None:
    fill(alice)
    assert alice.ask("list").endswith(MORE_SUFFIX)
    assert alice.ask("list meal") == "no meal bulletins"
    assert alice.ask("more") == NOTHING_MORE


# read


@pytest.mark.parametrize("form", ["read #{ref}", "read {ref}", "READ {upper}", "#{ref}"])
def test_read(alice: Person, form: str) -> None:
    ref = alice.post("meal tue 18:00 Soup at the hall\nbring a bowl")
    answer = alice.ask(form.format(ref=ref, upper=ref.upper()))
    assert answer == f"#{ref} meal tmrw 18:00\nSoup at the hall\nbring a bowl\nby {ALICE}"


def test_read_a_full_multibyte_bulletin_pages_and_reassembles(alice: Person) -> None:
    text = ("Gemüsesuppe für alle 🍲 " * 8).encode()[:200].decode(errors="ignore").strip()
    assert 195 <= len(text.encode()) <= 200
    ref = alice.post(f"food {text}")
    pages = read_all(alice, alice.ask(f"read #{ref}"))
    assert len(pages) == 2
    assert strip_more(pages) == f"#{ref} food\n{text}\nby {ALICE}"
    assert alice.ask("more") == NOTHING_MORE


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("read #zzzz", "no bulletin #zzzz"),
        ("read #a", "no bulletin #a"),
        ("read", "read needs a ref: read #a3f0"),
    ],
)
def test_read_mistakes(alice: Person, text: str, answer: str) -> None:
    assert alice.ask(text) == answer


def test_read_of_another_ring_is_not_found(handler: CommandHandler) -> None:
    ref = Person(handler, ALICE, ring=1).post("meal Soup")
    assert Person(handler, ALICE, ring=0).ask(f"read #{ref}") == f"no bulletin #{ref}"


# del


def test_the_author_deletes(alice: Person, store: Store) -> None:
    ref = alice.post("meal Soup")
    assert alice.ask(f"del #{ref}") == f"deleted #{ref}"
    assert alice.ask("list") == "no bulletins"
    assert store.count() == 0


def test_someone_else_cannot_delete(alice: Person, bob: Person) -> None:
    ref = alice.post("meal Soup")
    assert bob.ask(f"del #{ref}") == f"only the author can delete #{ref}"
    assert bob.ask("list").startswith(f"#{ref} ")


def test_delete_unknown_and_other_ring(handler: CommandHandler) -> None:
    alice = Person(handler, ALICE)
    assert alice.ask("del #zz9") == "no bulletin #zz9"
    assert alice.ask("del") == "del needs a ref: del #a3f0"
    ref = Person(handler, ALICE, ring=2).post("meal Soup")
    assert alice.ask(f"del {ref}") == f"no bulletin #{ref}"


# every reply


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize(
    "command",
    ["help", "post meal tue Soup", "list", "list meal", "read #zzzz", "more", "del #zzzz"],
)
def test_replies_go_to_the_sender_on_the_inbound_ring(
    handler: CommandHandler, command: str, direct: bool
) -> None:
    bob = Person(handler, BOB, ring=3)
    replies = bob.send("!" + command, direct=direct)
    assert replies
    assert all(reply.to == BOB and reply.ring == 3 for reply in replies)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["", "!", "post meal ", "post ", "list ", "read ", "del ", "more", "#"]),
    st.text(max_size=400),
    st.booleans(),
)
def test_no_input_raises_or_overflows_a_packet(prefix: str, text: str, direct: bool) -> None:
    engine = sqlalchemy.create_engine("sqlite://", poolclass=StaticPool)
    person = Person(CommandHandler(Store(engine), BoardConfig(tz=BERLIN)))
    person.send(prefix + text, direct=direct)  # Person checks every packet's size and address
    person.send("list")
    person.send("more")
    engine.dispose()


def test_the_outcome_names_what_other_boards_must_hear(handler: CommandHandler) -> None:
    def send(text: str, sender: str = ALICE) -> Outcome:
        return handler.handle(Inbound(sender, 0, text, True, NOW))

    posted = send("post meal Soup")
    [bulletin] = posted.posted
    assert posted.replies[0].text.startswith(f"ok #{bulletin.ref}")
    assert send("post meal Soup").posted == []  # a re-send changes nothing
    assert send(f"del #{bulletin.ref}", sender=BOB).deleted == []  # refused
    assert send(f"del #{bulletin.ref}").deleted == [bulletin.id]
    assert send("list").posted == send("list").deleted == []
