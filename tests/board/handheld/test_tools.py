"""The tool library in the core: commands, last-writer-wins, loans, asks, and its wire messages."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from board.bulletin import Bulletin
from board.errors import ForeignPacket, MalformedPacket
from board.handheld.asks import DEDUPE_FOR, HEARD_FOR, AskRouter
from board.handheld.commands import BoardConfig, CommandHandler
from board.handheld.subs import Subscriptions
from board.handheld.tools import ToolCommands
from board.messages import Inbound, Outcome
from board.store.applied import Applied
from board.store.bulletins import Store
from board.store.tools import ToolStore, loans_between
from board.wire.codec import MAGIC_VERSION, Kind, decode, encode
from board.wire.keys import bulletin_key
from board.wire.tools import MAX_ASK_HOPS, AskMsg, ToolStateMsg
from tests.board.conftest import MONDAY_10H
from tests.board.sync.test_engine import Mesh, full

OWNER = "!a1b2c3d4"
WHEN_HINT = "try tue 18:00, 6pm, tomorrow"
BEN = "!0badcafe"
Make = Callable[..., Bulletin]


@pytest.fixture
def tools(store: Store) -> ToolStore:
    return ToolStore(store)


@pytest.fixture
def handler(store: Store, tools: ToolStore) -> CommandHandler:
    extensions = (ToolCommands(store, tools, AskRouter(store)), Subscriptions(store))
    return CommandHandler(store, BoardConfig(), extensions=extensions)


def say(
    handler: CommandHandler, text: str, sender: str = OWNER, ring: int = 0, minutes: int = 0
) -> Outcome:
    now = MONDAY_10H + timedelta(minutes=minutes)
    return handler.handle(Inbound(sender, ring, text, direct=True, now=now))


def text_of(outcome: Outcome) -> str:
    return outcome.replies[0].text


def ladder(handler: CommandHandler, ring: int = 0) -> str:
    reply = text_of(say(handler, "post tool Ladder, 3 m", ring=ring))
    return reply.split()[1]  # "#a3f0"


def test_owner_lends_and_takes_back(handler: CommandHandler, tools: ToolStore) -> None:
    ref = ladder(handler)
    lent = say(handler, f"lend {ref} to Ben until fri", minutes=1)
    assert text_of(lent) == f"{ref} lent to Ben till fri"
    assert len(lent.tool_states) == 1 and lent.tool_states[0].borrower == "Ben"
    assert f"{ref}: Ladder, 3 m — lent to Ben till fri" in text_of(say(handler, "list tool"))
    assert "(lent to Ben till fri)" in text_of(say(handler, f"read {ref}"))
    back = say(handler, f"back {ref}", minutes=2)
    assert text_of(back) == f"{ref} is back: free"
    assert not back.tool_states[0].lent
    assert text_of(say(handler, "list tool")).endswith("— free")
    assert text_of(say(handler, f"back {ref}", minutes=3)) == f"{ref} is free already"


@pytest.mark.parametrize("command", ["lend {ref} to Mallory", "back {ref}"])
def test_only_the_owner_changes_a_tool(handler: CommandHandler, command: str) -> None:
    ref = ladder(handler)
    say(handler, f"lend {ref} Ben", minutes=1)
    refused = say(handler, command.format(ref=ref), sender=BEN, minutes=2)
    assert (
        text_of(refused)
        == f"only the owner can {'lend' if 'lend' in command else 'mark back'} {ref}"
    )
    assert refused.tool_states == []
    assert text_of(say(handler, "list tool")).endswith("— lent to Ben")


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("lend", "lend needs a ref: lend #a3f0 [to whom] [until fri]"),
        ("lend #zz", "no bulletin #zz"),
        (
            "lend {ref} until someday",
            "cannot read 'someday' as a time; try tue 18:00, 6pm, tomorrow",
        ),
        ("lend {ref} the whole neighbourhood choir", "who is 29 bytes; at most 20"),
        ("lend {meal} Ben", "{meal} is a meal, not a tool"),
        ("ask {meal}", "{meal} is a meal, not a tool"),
    ],
)
def test_bad_lends_change_nothing(
    handler: CommandHandler, tools: ToolStore, command: str, answer: str
) -> None:
    ref = ladder(handler)
    meal = text_of(say(handler, "post meal Soup")).split()[1]
    outcome = say(handler, command.format(ref=ref, meal=meal), minutes=1)
    assert text_of(outcome) == answer.format(ref=ref, meal=meal)
    assert outcome.tool_states == [] and outcome.asks == []
    assert tools.active(0, MONDAY_10H) == []


def test_a_later_word_wins_even_if_the_clock_went_back(
    handler: CommandHandler, tools: ToolStore
) -> None:
    ref = ladder(handler)
    first = say(handler, f"lend {ref} Ben", minutes=10).tool_states[0]
    second = say(handler, f"back {ref}", minutes=5).tool_states[0]  # clock stepped back
    assert second.stamp == first.stamp + 1
    assert text_of(say(handler, "list tool")).endswith("— free")


def test_a_tool_of_another_ring_does_not_exist_here(handler: CommandHandler) -> None:
    ref = ladder(handler, ring=1)
    assert text_of(say(handler, f"ask {ref} free sat?", sender=BEN)) == f"no bulletin {ref}"
    assert text_of(say(handler, f"lend {ref} Ben")) == f"no bulletin {ref}"


def state(target: bytes, stamp: int, lent: bool = True, borrower: str = "Ben") -> ToolStateMsg:
    return ToolStateMsg(target, 0, lent, stamp, 0, borrower if lent else "")


def test_last_writer_wins_whatever_the_order(store: Store, make: Make) -> None:
    """Two boards hearing the owner's words in every order hold the same word at the end."""
    tool = make(type="tool", text="Ladder")
    target = bulletin_key(tool.id)
    words = [
        state(target, 100, borrower="Ben"),
        state(target, 200, lent=False),
        state(target, 200, borrower="Cleo"),  # the same second: the bytes decide
        state(target, 150, borrower="Dan"),
    ]
    finals = set()
    for order in itertools.permutations(words):
        other = Store.open("sqlite://")
        other.add(tool, MONDAY_10H)
        board = ToolStore(other)
        for word in order:
            board.apply(word)
        finals.add(board.get(tool.id))
        assert board.loans_between(MONDAY_10H - timedelta(days=1), MONDAY_10H, 0) == 0
        assert loans_between(other, datetime.fromtimestamp(0).astimezone(), MONDAY_10H) == 3
        other.close()
    assert finals == {max(words, key=ToolStateMsg.version)}


def test_states_go_with_their_tool(store: Store, tools: ToolStore, make: Make) -> None:
    tool, meal = make(type="tool", text="Ladder"), make(type="meal")
    store.add(tool, MONDAY_10H)
    store.add(meal, MONDAY_10H)
    assert tools.apply(state(bulletin_key(meal.id), 5)).applied is Applied.ORPHAN
    assert tools.apply(ToolStateMsg(bulletin_key(tool.id), 1, False, 5)).applied is Applied.ORPHAN
    assert tools.apply(state(bulletin_key(tool.id), 5)).applied is Applied.NEW
    store.delete(tool.id, None, None, MONDAY_10H)
    assert tools.get(tool.id) is None
    assert tools.loans_between(datetime.fromtimestamp(0).astimezone(), MONDAY_10H, ring=0) == 1
    assert tools.loans_between(datetime.fromtimestamp(0).astimezone(), MONDAY_10H, ring=1) == 0


def test_ask_goes_to_the_owner_when_heard_else_to_the_boards(store: Store, make: Make) -> None:
    tool = make(type="tool", text="Ladder, 3 m\nin the shed")
    store.add(tool, MONDAY_10H)
    router = AskRouter(store)
    routed = router.from_handheld(tool, BEN, "free sat?", MONDAY_10H)
    assert routed.deliver == [] and routed.forward is not None
    assert routed.forward.hops == MAX_ASK_HOPS and routed.forward.ring == 0

    elsewhere = AskRouter(store)  # the board that hears the owner
    elsewhere.heard(OWNER, MONDAY_10H)
    delivered = elsewhere.from_board(routed.forward, MONDAY_10H + timedelta(seconds=5))
    assert [(r.to, r.ring, r.text) for r in delivered.deliver] == [
        (OWNER, 0, f"ask #{tool.ref} (Ladder, 3 m) from {BEN}: free sat?")
    ]
    assert delivered.forward is None
    again = elsewhere.from_board(routed.forward, MONDAY_10H + timedelta(seconds=9))
    assert again.deliver == [] and again.forward is None  # heard twice: delivered once
    later = MONDAY_10H + DEDUPE_FOR + HEARD_FOR
    assert elsewhere.from_board(routed.forward, later).forward is not None  # owner gone quiet


def test_an_ask_nobody_can_deliver_dies_out(store: Store, make: Make) -> None:
    tool = make(type="tool", text="Ladder")
    msg = AskMsg(bulletin_key(tool.id), 0, BEN, MAX_ASK_HOPS, "free sat?")
    hops = 0
    while msg is not None:
        msg = AskRouter(store).from_board(msg, MONDAY_10H).forward  # a fresh board each hop
        hops += 1
    assert hops == MAX_ASK_HOPS + 1


def test_engine_boards_converge_on_the_owners_latest_word(make: Make) -> None:
    """Partitioned boards hear `lend` and `back` in opposite orders; once joined, they agree."""
    mesh = Mesh(full(3))
    mesh.start()
    tool = make(type="tool", text="Ladder", now=mesh.time)
    mesh.post(0, tool)
    mesh.run(120.0)
    target = bulletin_key(tool.id)
    stamp = int(mesh.time.timestamp())
    lend, back = state(target, stamp), state(target, stamp + 60, lent=False)
    for index, words in ((1, (lend, back)), (2, (back, lend))):
        board = mesh.boards[index]
        for word in words:
            board.engine.tools.apply(word)
    mesh.boards[0].engine.tools.apply(lend)  # board 0 missed the `back`
    for board in mesh.boards:
        board.engine.start(mesh.time, None)  # compare notes soon
    agreed = lambda: all(b.engine.tools.get(tool.id) == back for b in mesh.boards)  # noqa: E731
    mesh.run(3600.0, until=agreed)
    assert agreed()
    sent = [s.msg for s in mesh.sent if isinstance(s.msg, ToolStateMsg)]
    assert lend not in sent  # a superseded word is never asked for or pushed


states = st.builds(
    ToolStateMsg,
    target=st.binary(min_size=16, max_size=16),
    ring=st.integers(0, 7),
    lent=st.just(True),
    stamp=st.integers(1, 2**32 - 1),
    until=st.integers(0, 2**32 - 1),
    borrower=st.text(st.characters(categories=["L", "N"]), max_size=5),
)
asks = st.builds(
    AskMsg,
    target=st.binary(min_size=16, max_size=16),
    ring=st.integers(0, 7),
    asker=st.integers(1, 2**32 - 1).map(lambda n: f"!{n:08x}"),
    hops=st.integers(0, MAX_ASK_HOPS),
    text=st.text(st.characters(categories=["L", "N", "P"]), max_size=20).map(str.strip),
)


@given(st.one_of(states, asks))
def test_new_messages_round_trip(msg: ToolStateMsg | AskMsg) -> None:
    payload = encode(msg)
    assert decode(payload) == msg
    assert len(payload) <= (48 if isinstance(msg, ToolStateMsg) else 104)


@pytest.mark.parametrize("kind", [Kind.TOOL_STATE, Kind.ASK])
@given(body=st.binary(max_size=120))
def test_new_decoders_raise_only_their_domain_error(kind: Kind, body: bytes) -> None:
    payload = bytes([MAGIC_VERSION, kind]) + body
    try:
        msg = decode(payload)
    except (ForeignPacket, MalformedPacket):
        return
    assert encode(msg) == payload


@pytest.mark.parametrize(
    "body",
    [
        bytes(16) + bytes([0, 2]) + (1).to_bytes(4, "big") + bytes(4),  # unknown flag
        bytes(16) + bytes([0, 0]) + (1).to_bytes(4, "big") + bytes(4) + b"Ben",  # free, borrower
        bytes(16) + bytes([0, 1]) + bytes(8),  # stamp 0
        bytes(16) + bytes([0, 1]) + (1).to_bytes(4, "big") + bytes(4) + b"x" * 21,
        bytes(16) + bytes([0, 1]) + (1).to_bytes(4, "big") + bytes(4) + b"\xff",
        bytes(16) + bytes([0, 1]) + (1).to_bytes(4, "big") + bytes(4) + b" Ben",
    ],
)
def test_bad_tool_states(body: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode(bytes([MAGIC_VERSION, Kind.TOOL_STATE]) + body)
