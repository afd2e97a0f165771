"""Private rings by identity, end to end: join once on the ring's channel at one board, then be
served the ring by PKI direct message at every board of it; nothing of the ring for anyone who
never joined; a moderator's node id with another key cannot moderate.

Real daemons on the real meshtastic client over the simulated mesh, whose handhelds play
firmware 2.7.26: their direct messages are PKI-encrypted and reach a board on channel 0.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from board.config import MeshboardConfig, RingSpec, Rotation
from board.signing import BoardKey
from board.store.members import MemberStore
from board.store.moderation import ModerationStore
from board.sync.bundle import export_items
from node.demo.neighbourhood import BoardNode, Neighbourhood
from node.sim.handheld import HeardText
from node.sim.mesh import Mesh
from node.sim.profile import Role
from node.sim.radio import ChannelSpec, RadioProfile
from node.sim.router import stand_in_key
from tests.node.meshes import answer

CONVERGE = 30.0  # real seconds
PUBLIC = ChannelSpec()
GARDEN = ChannelSpec(name="garden", psk=bytes(range(32)))
BOTH = RadioProfile(channels=(PUBLIC, GARDEN))
SECRET = "Garden secret supper"
MODERATOR = 0x9ABC2345  # the garden's moderator: away today; someone borrows their node id
IMPOSTOR_KEY = bytes(range(100, 132))


def garden_config(mesh: Mesh, *keys: BoardKey) -> MeshboardConfig:
    moderator = f"!{MODERATOR:08x}"
    rotation = Rotation((moderator,), timedelta(weeks=1), mesh.clock.now() - timedelta(days=1))
    return MeshboardConfig(
        rings=(
            RingSpec("public", 0),
            RingSpec(
                "garden",
                1,
                rotation=rotation,
                trusted_boards=tuple(key.public for key in keys),
                pinned_keys=((moderator, stand_in_key(MODERATOR)),),
            ),
        )
    )


def is_post(text: HeardText) -> bool:
    return " ok #" in f" {text.text}"


def is_mod(text: HeardText) -> bool:
    return "mod:" in text.text


def member_of_garden(node: BoardNode, person: int, now_of: Mesh) -> bool:
    assert node.store is not None
    held = MemberStore(node.store.engine).current(1, f"!{person:08x}")
    return held is not None and held.joined and held.expires_at > now_of.clock.now()


def garden_ids(node: BoardNode, mesh: Mesh) -> set[str]:
    assert node.store is not None
    return {b.id for b in node.store.active(mesh.clock.now(), ring=1)}


def test_join_at_one_board_and_the_garden_reaches_you_by_direct_message_at_another(
    mesh: Mesh, hood: Neighbourhood
) -> None:
    keys = [BoardKey.generate(), BoardKey.generate()]
    config = garden_config(mesh, *keys)
    radios = [mesh.add_radio(profile=BOTH), mesh.add_radio(profile=BOTH)]
    mesh.link(*radios)
    gardener = mesh.add_handheld(profile=BOTH)
    stranger = mesh.add_handheld(profile=BOTH)  # has the garden channel, never joined
    # The boards start after the neighbours' radios are known: their clients' node databases
    # (from the config handshake) hold every key.
    a = hood.attach(radios[0], "A", config=config, key=keys[0])
    b = hood.attach(radios[1], "B", config=config, key=keys[1])
    mesh.link(gardener, a.radio)
    mesh.link(stranger, a.radio)
    mesh.link(stranger, b.radio)

    # Join at A on the garden's channel; A witnesses it and B hears the signed record.
    joined = answer(gardener, a, "join", channel=1)
    assert joined == "you are in garden: DM me 'garden list', or ring garden"
    assert hood.wait_until(lambda: member_of_garden(b, gardener.node_num, mesh), CONVERGE)

    # A direct message (PKI, channel 0) now reaches the garden: the reply says so.
    posted = answer(gardener, a, f"post meal {SECRET}", accept=is_post)
    assert posted.startswith("[garden] ok #"), posted
    ref = posted.split()[2]
    assert hood.wait_until(lambda: garden_ids(b, mesh) == garden_ids(a, mesh) != set(), CONVERGE)

    # At B, where the gardener never sent anything on the garden channel.
    mesh.unlink(gardener, a.radio)
    mesh.link(gardener, b.radio)
    listing = answer(gardener, b, "list", accept=lambda t: SECRET in t.text)
    assert listing.startswith("[garden] ") and SECRET in listing
    rings = answer(gardener, b, "rings", accept=lambda t: "your rings" in t.text)
    assert rings == "[garden] your rings: public, garden"

    # Someone who never joined gets nothing of the garden from either board, whatever they ask:
    # not by subscription, not by asking after a garden bulletin's ref.
    subscribed = answer(stranger, b, "sub meal", accept=lambda t: "subscribed" in t.text)
    assert subscribed.startswith("subscribed to meal")
    asked = answer(stranger, a, f"ask {ref} is it vegan?", accept=lambda t: ref in t.text)
    assert asked == f"no bulletin {ref}"
    later = answer(gardener, b, "post meal Second garden supper", accept=is_post).split()[2]
    for node in (a, b):
        for command in ("list", "garden list", f"read {ref}", ref, "more", "tally", "rings"):
            reply = answer(stranger, node, command)
            assert SECRET not in reply and not reply.startswith("[garden]"), (command, reply)
        chosen = answer(stranger, node, "ring garden", accept=lambda t: "no ring" in t.text)
        assert chosen == "no ring 'garden'; yours: public"
    mesh.clock.sleep(600.0)  # well past the subscriptions' batch delay
    assert all(SECRET not in t.text and later not in t.text for t in stranger.inbox)
    assert not any(t.text.startswith("[garden]") for t in stranger.inbox)
    # The operator's USB bundle of the public ring holds nothing of the garden either.
    for node in (a, b):
        assert node.store is not None
        bulletins, _ = export_items(node.store, [0], mesh.clock.now())
        assert all(SECRET not in item.text and "garden" not in item.text for item in bulletins)


def test_a_moderators_node_id_with_another_key_cannot_remove_a_bulletin(
    mesh: Mesh, hood: Neighbourhood
) -> None:
    key = BoardKey.generate()
    radio = mesh.add_radio(profile=BOTH)
    gardener = mesh.add_handheld(profile=BOTH)
    # The impostor took the moderator's node number and holds the garden key, but its radio
    # has its own key pair: the board's radio decrypts its DMs with that key.
    impostor = mesh.add_handheld(
        MODERATOR, RadioProfile(channels=(PUBLIC, GARDEN), public_key=IMPOSTOR_KEY)
    )
    a = hood.attach(radio, "A", config=garden_config(mesh, key), key=key)
    for person in (gardener, impostor):
        mesh.link(person, radio)
    answer(gardener, a, "join", channel=1)
    ref = answer(gardener, a, f"post meal {SECRET}", accept=is_post).split()[2]

    # Not served in the garden by its pinned key, so its `mod` reaches the public ring. (An
    # answer to a command sent again may come late: each step waits for its own kind.)
    assert answer(impostor, a, f"mod del {ref}", accept=is_mod) == (
        "mod: this ring has no moderators"
    )
    # Joined on the channel with its own key, it is served in the garden: the pin refuses it.
    answer(impostor, a, "join", channel=1)
    refused = answer(impostor, a, f"mod del {ref}", accept=is_mod)
    assert refused == "[garden] mod: your radio's key is not the one pinned for this moderator"
    assert SECRET in answer(gardener, a, "list")
    assert a.store is not None
    log = ModerationStore(a.store.engine).audit(1)
    assert [(e.moderator, e.accepted) for e in log if e.action == "remove"] == [
        (f"!{MODERATOR:08x}", False)
    ]


def test_news_of_the_garden_comes_tagged_to_members_and_stops_when_they_leave(
    mesh: Mesh, hood: Neighbourhood
) -> None:
    key = BoardKey.generate()
    radio = mesh.add_radio(profile=BOTH)
    gardener, friend = mesh.add_handheld(profile=BOTH), mesh.add_handheld(profile=BOTH)
    a = hood.attach(radio, "A", config=garden_config(mesh, key), key=key)
    for person in (gardener, friend):
        mesh.link(person, radio)
        answer(person, a, "join", channel=1)
    # Each step waits for its own kind of answer: one to a command sent again may come late.
    subscribed = answer(friend, a, "sub meal", accept=lambda t: "subscribed" in t.text)
    assert subscribed.startswith("[garden] subscribed to meal")
    soup = answer(gardener, a, "post meal Soup in the shed", accept=is_post).split()[2]
    news = friend.wait_for_text(lambda t: "new meal" in t.text, timeout=CONVERGE)
    assert news.text == f"[garden] new meal: {soup} Soup in the shed"
    assert news.pki_encrypted  # a PKI direct message: only the friend's radio can read it

    left = answer(friend, a, "leave garden", accept=lambda t: "left" in t.text)
    assert left.startswith("[garden] left garden")
    answer(gardener, a, f"post meal {SECRET}", accept=is_post)
    mesh.clock.sleep(600.0)  # well past the subscriptions' batch delay
    assert [t.text for t in friend.inbox if "new meal" in t.text] == [news.text]
    # Out of the garden, a DM reaches the public ring, which holds nothing.
    listing = answer(friend, a, "list", accept=lambda t: "bulletin" in t.text or "#" in t.text)
    assert listing == "no bulletins"
    assert all(SECRET not in t.text for t in friend.inbox)


def test_a_new_neighbour_whose_key_the_radio_lacks_joins_once_the_board_asks_for_it(
    mesh: Mesh, hood: Neighbourhood, caplog: pytest.LogCaptureFixture
) -> None:
    """The board's radio is a ROUTER, which never asks a new node for its NodeInfo itself
    (`MeshService::handleFromRadio`): the board asks, and answers once the key is there."""
    key = BoardKey.generate()
    router = RadioProfile(channels=(PUBLIC, GARDEN), role=Role.ROUTER)
    a = hood.attach(mesh.add_radio(profile=router), "A", config=garden_config(mesh, key), key=key)
    newcomer = mesh.add_handheld(profile=BOTH, announced=False)
    mesh.link(newcomer, a.radio)
    assert a.radio.node_key(newcomer.node_num) is None

    with caplog.at_level(logging.INFO, logger="node.daemon"):
        joined = answer(newcomer, a, "join", channel=1)
    assert f"asking {newcomer.node_id} for its node info" in caplog.text
    # The first `!join` waits for the key; one the handheld sent again may find it known.
    assert joined in (
        "joining garden: waiting for your radio's key; then DM me",
        "you are in garden: DM me 'garden list', or ring garden",
    )
    assert a.radio.node_key(newcomer.node_num) == newcomer.public_key
    assert hood.wait_until(lambda: member_of_garden(a, newcomer.node_num, mesh), CONVERGE)
    # Every answer went PKI-encrypted: none was sent in the clear while the key was missing.
    answers = [t for t in newcomer.inbox if t.sender == a.radio.node_num]
    assert answers and all(t.pki_encrypted for t in answers)
    rings = answer(newcomer, a, "rings", accept=lambda t: "your rings" in t.text)
    assert rings == "[garden] your rings: public, garden"
