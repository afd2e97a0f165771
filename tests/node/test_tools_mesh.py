"""The tool library and subscriptions between handhelds attached to different boards.

Real daemons on the real meshtastic client over pty radios, joined by the simulated mesh, whose
clock runs `SPEED` times faster than real time (the subscription batch delay is seconds here).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from board.errors import NotFound
from board.handheld.commands import BoardConfig
from board.handheld.tools import describe
from board.store.bulletins import Store
from board.store.tools import ToolStore
from board.sync.engine import SyncConfig
from node.demo.neighbourhood import BoardNode, Neighbourhood
from node.sim.handheld import HeardText, VirtualHandheld
from node.sim.mesh import Mesh
from node.sim.router import PKI_KEY
from tests.node import meshes
from tests.node.meshes import INNER, TWO_RINGS, board_line

SYNC_RINGS = frozenset({0, 1})
#: For the `mesh` fixture: a Monday morning, so "sat" is days away however long the test runs
#: (at 100x from the real time, a run late on a Thursday crossed into Friday: "till tmrw").
MESH_START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CONVERGE = 30.0  # real seconds


def store_of(node: BoardNode) -> Store:
    assert node.store is not None
    return node.store


def state_at(hood: Neighbourhood, node: BoardNode, ref: str, ring: int = 0) -> str:
    store = store_of(node)
    now = hood.mesh.clock.now()
    try:
        tool = store.get(ref, ring, now=now)
    except NotFound:
        return "absent"
    return describe(ToolStore(store).get(tool.id), now, BoardConfig().tz)


def ask(
    person: VirtualHandheld,
    node: BoardNode,
    text: str,
    channel: int = 0,
    *,
    accept: Callable[[HeardText], bool] = lambda _: True,
) -> str:
    """`meshes.answer`, with a ring's `!` commands relayed like any channel message."""
    return meshes.answer(person, node, text, channel, accept=accept, hop_limit=None)


def post(person: VirtualHandheld, node: BoardNode, text: str, channel: int = 0) -> str:
    """Post as `person` at `node`; returns the `#ref` the board's `ok #ref` reply gave."""
    reply = ask(person, node, text, channel)
    assert reply.startswith("ok #"), reply
    return reply.split()[1]


def ask_owner(
    asker: VirtualHandheld, node: BoardNode, owner: VirtualHandheld, text: str, channel: int = 0
) -> HeardText:
    """Ask, and ask again as a person would if no answer comes: an ask is one packet per board,
    never repaired, so a collision on the way loses it.
    """
    ref = text.split()[1]
    for _ in range(3):
        assert ask(asker, node, text, channel=channel) == f"asked the owner of {ref}"
        try:
            return owner.wait_for_text(lambda t: t.text.startswith(f"ask {ref}"), timeout=10.0)
        except TimeoutError:
            continue
    raise AssertionError("the owner never heard the ask")


def answer(person: VirtualHandheld, node: BoardNode, text: str, channel: int = 0) -> str:
    """The board's answer to `text`, past any forwarded ask that arrives meanwhile (an ask
    sent again by `ask_owner` may reach the owner after the first one did)."""
    return ask(person, node, text, channel, accept=lambda t: not t.text.startswith("ask "))


def heard(person: VirtualHandheld, start: str) -> list[HeardText]:
    return [t for t in person.inbox if t.text.startswith(start)]


def test_lend_ask_back_between_handhelds_on_different_boards(
    mesh: Mesh, hood: Neighbourhood
) -> None:
    near, far = board_line(hood, 2)
    ana, ben = hood.neighbour(near), hood.neighbour(far)
    ref = post(ana, near, "post tool Ladder, 3 m")
    assert hood.wait_until(lambda: state_at(hood, far, ref) == "free", CONVERGE)

    asked = ask_owner(ben, far, ana, f"ask {ref} free sat?")
    assert asked.text == f"ask {ref} (Ladder, 3 m) from {ben.node_id}: free sat?"
    assert asked.sender == near.radio.node_num  # the board that hears Ana delivered it

    assert answer(ana, near, f"lend {ref} to Ben until sat") == f"{ref} lent to Ben till sat"
    assert hood.wait_until(lambda: state_at(hood, far, ref) == "lent to Ben till sat", CONVERGE)
    assert ask(ben, far, "list tool").endswith("— lent to Ben till sat")
    assert ask(ben, far, f"back {ref}") == f"only the owner can mark back {ref}"

    assert answer(ana, near, f"back {ref}") == f"{ref} is back: free"
    assert hood.wait_until(lambda: state_at(hood, far, ref) == "free", CONVERGE)
    # One ask delivered. (On a loaded machine its ACK can come after the outbox's timeout, and
    # the resend, under a fresh packet id, shows the same text again: see the outbox's notes.)
    assert {t.text for t in heard(ana, "ask ")} == {asked.text}


def test_a_partitioned_board_takes_the_owners_latest_word(mesh: Mesh, hood: Neighbourhood) -> None:
    first, middle, last = board_line(hood, 3)
    ana = hood.neighbour(first)
    ref = post(ana, first, "post tool Wheelbarrow")
    assert hood.wait_until(lambda: state_at(hood, last, ref) == "free", CONVERGE)
    hood.stop(last)  # away while Ana lends and takes back
    assert ask(ana, first, f"lend {ref} Cleo").startswith(f"{ref} lent to Cleo")
    assert hood.wait_until(lambda: state_at(hood, middle, ref) == "lent to Cleo", CONVERGE)
    assert ask(ana, first, f"back {ref}") == f"{ref} is back: free"
    hood.start(last)
    assert hood.wait_until(
        lambda: all(state_at(hood, n, ref) == "free" for n in (first, middle, last)), CONVERGE
    )


def test_subscriber_hears_of_a_post_at_another_board(mesh: Mesh, hood: Neighbourhood) -> None:
    near, far = board_line(hood, 2, TWO_RINGS)
    ana, ben = hood.neighbour(near, TWO_RINGS), hood.neighbour(far, TWO_RINGS)
    assert ask(ben, far, "sub meal").startswith("subscribed to meal")
    secret = post(ana, near, "post meal Inner supper", channel=1)  # ring 1: not Ben's sub
    # Let the boards finish passing it on before Ana speaks again, as on a quiet evening: a
    # text sent into that flood can be lost to a collision, and a person would wait for `ok`.
    assert hood.wait_until(lambda: hood.converged(hood.holdings(near)), CONVERGE)
    # Ana used the inner ring, so she is its member and her DMs go there: she names the public.
    soup = post(ana, near, "public post meal Soup at the hall")
    news = ben.wait_for_text(lambda t: t.text.startswith("new meal"), timeout=CONVERGE)
    assert news.text == f"new meal: {soup} Soup at the hall"
    assert news.channel == 0 and news.sender == far.radio.node_num

    assert ask(ben, far, "unsub meal") == "unsubscribed from meal"
    later = post(ana, near, "public post meal Stew on friday")
    assert hood.wait_until(lambda: later in ask(ben, far, "list meal"), CONVERGE)
    mesh.clock.sleep(600.0)  # well past the batch delay
    assert [t.text for t in heard(ben, "new ")] == [news.text]
    assert not any(secret in t.text for t in ben.inbox if t.channel == 0)


def test_a_private_rings_tools_never_reach_another_channel(mesh: Mesh, hood: Neighbourhood) -> None:
    inner = [mesh.add_radio(profile=TWO_RINGS) for _ in range(2)]
    outsider = mesh.add_radio()  # public channel only
    mesh.link(inner[0], inner[1])
    mesh.link(inner[1], outsider)
    near, far = (hood.attach(radio) for radio in inner)
    public_board = hood.attach(outsider, sync=SyncConfig(rings=frozenset({0})))
    ana, ben = hood.neighbour(near, TWO_RINGS), hood.neighbour(far, TWO_RINGS)
    eve = hood.neighbour(far)  # near the inner boards, but on the public channel only
    mesh.link(eve, public_board.radio)
    assert ask(eve, far, "sub tool").startswith("subscribed")
    ref = post(ana, near, "post tool Secret drill", channel=1)
    assert hood.wait_until(lambda: state_at(hood, far, ref, ring=1) == "free", CONVERGE)
    ask_owner(ben, far, ana, f"ask {ref} can I?", channel=1)
    assert answer(ana, near, f"lend {ref} Ben", channel=1) == f"{ref} lent to Ben"
    assert hood.wait_until(lambda: state_at(hood, far, ref, ring=1) == "lent to Ben", CONVERGE)
    assert ask(eve, far, f"ask {ref}") == f"no bulletin {ref}"
    mesh.clock.sleep(600.0)

    # Eve hears only the answers to what she typed herself: no news of the tool, no state.
    assert [t.text for t in eve.inbox if t.direct] == [
        "subscribed to tool: new ones come by DM; unsub tool stops",
        f"no bulletin {ref}",
    ]
    # Ana hears of her tool only within the ring: a `!` command on its channel, or a board's
    # answer as a PKI direct message (on channel 0, as every DM arrives; only her radio can
    # read it), from one of the inner boards.
    inner_boards = {near.radio.node_num, far.radio.node_num}
    about = [t for t in ana.inbox if ref.removeprefix("#") in t.text]
    assert about and all(
        t.channel == 1 or (t.direct and t.pki_encrypted and t.sender in inner_boards) for t in about
    )
    # On the air the tool's name goes out on the inner key, or to Ana or Ben as a PKI DM.
    on_air = [r for r in mesh.log if b"Secret drill" in r.payload]
    members = {ana.node_num, ben.node_num}
    assert {r.channel for r in on_air if r.to not in members} == {(INNER.name, INNER.psk)}
    assert {r.channel for r in on_air if r.to in members} == {PKI_KEY}
    public_store = store_of(public_board)
    assert public_store.count() == 0
    assert ToolStore(public_store).active(0, mesh.clock.now()) == []
    assert ToolStore(public_store).active(1, mesh.clock.now()) == []
