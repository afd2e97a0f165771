"""Whom a board trusts: the rules a moderation action, or a ring's member record, must pass
here and on every other board.

A handheld's `mod del` is carried out only when the ring has a rotation, the sender is the
moderator on duty now, and the radio marked the message as a PKI-encrypted direct message (the
firmware checked the sender's key, so a node that borrowed the moderator's id on a shared
channel key cannot pass). The board then signs the action; a board hearing it over the air
checks the signature, that the key is its own or one it lists for the ring, and that the named
moderator was on duty at the action's time by its own copy of the rotation. A pinned
moderator's action must also come with the pinned key.

A member record (`board.wire.members`) is trusted the same way: signed by this board or one it
lists for the ring.

A tombstone (`board.wire.tombstone`) is signed by the board that heard the author's `del` (or
whose operator deleted): on a ring that lists its boards, it must be one of them or this board;
on a ring that lists none, any board's valid signature is taken. That is trust on first use,
and listing the ring's boards in the configuration closes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from board.bulletin import Tombstone
from board.config import DEFAULT_CONFIG, MeshboardConfig
from board.errors import BoardError
from board.signing import BoardKey, decode_public, verify
from board.wire import members, tombstone
from board.wire.members import MemberMsg
from board.wire.moderation import Action, ModerationMsg, signed_fields
from board.wire.tombstone import SignedTombstone, TombstoneMsg

#: An action stamped further ahead of our clock than this is refused: a later time wins, so a
#: skewed or forged clock would otherwise decide a bulletin's fate for good.
MAX_CLOCK_AHEAD = timedelta(hours=1)


@dataclass(frozen=True)
class ModerationPolicy:
    """The configuration and this board's own key: everything the rules depend on."""

    config: MeshboardConfig = DEFAULT_CONFIG
    own_key: bytes | None = None  # this board's public key, trusted on every ring

    def trusted(self, ring: int) -> frozenset[bytes]:
        """The board keys whose moderation this board accepts on `ring` (read when needed:
        moderation is rare).
        """
        spec = self.config.by_channel(ring)
        keys = {self.own_key} if self.own_key is not None else set()
        for text in spec.trusted_boards if spec is not None else ():
            try:
                keys.add(decode_public(text))
            except BoardError:
                continue  # a typo in the file must not stop the board
        return frozenset(keys)

    def refusal(self, msg: ModerationMsg, now: datetime) -> str | None:
        """Why a moderation heard from another board must be refused, or None to accept it."""
        if not verify(msg.board_key, msg.signed_bytes(), msg.signature):
            return "bad signature"
        if msg.board_key not in self.trusted(msg.ring):
            return "board key not trusted on this ring"
        spec = self.config.by_channel(msg.ring)
        rotation = spec.rotation if spec is not None else None
        if rotation is None:
            return "ring has no moderators"
        if rotation.on_duty(msg.at) != msg.moderator:
            return f"{msg.moderator} was not on duty then"
        if msg.at > now + MAX_CLOCK_AHEAD:
            return "time is ahead of this board's clock"
        return None

    def member_refusal(self, msg: MemberMsg, now: datetime) -> str | None:
        """Why a member record heard from another board must be refused, or None to accept it.

        The same trust as a moderation: a board this one lists for the ring witnessed it.
        """
        spec = self.config.by_channel(msg.ring)
        if spec is None or not spec.private:
            return "not a private ring"
        if not verify(msg.board_key, msg.signed_bytes(), msg.signature):
            return "bad signature"
        if msg.board_key not in self.trusted(msg.ring):
            return "board key not trusted on this ring"
        if msg.at > now + MAX_CLOCK_AHEAD:
            return "time is ahead of this board's clock"
        return None

    def lists_boards(self, ring: int) -> bool:
        """Whether the configuration names the boards of `ring` (else any board is taken)."""
        spec = self.config.by_channel(ring)
        return spec is not None and bool(spec.trusted_boards)

    def tombstone_refusal(self, msg: TombstoneMsg, now: datetime) -> str | None:
        """Why a tombstone heard from another board must be refused, or None to accept it.

        A board signed it: one this board lists for the ring, or itself; any board when the
        ring lists none (trust on first use). A board deletes only for the bulletin's author or
        its own operator, and a later time wins over a moderator's restore, so a time far
        ahead of our clock is refused as for a moderation.
        """
        if msg.board_key is None or msg.signature is None:
            return "unsigned"
        if not verify(msg.board_key, msg.signed_bytes(), msg.signature):
            return "bad signature"
        if self.lists_boards(msg.ring) and msg.board_key not in self.trusted(msg.ring):
            return "board key not trusted on this ring"
        if msg.deleted_by is not None and msg.deleted_by != msg.author:
            return f"{msg.deleted_by} is not the author"
        if msg.deleted_at > now + MAX_CLOCK_AHEAD:
            return "time is ahead of this board's clock"
        return None


def sign_tombstone(key: BoardKey, deletion: Tombstone) -> SignedTombstone:
    """A deletion this board carried out (for the author, or its operator), signed so other
    boards can check it."""
    deletion = replace(
        deletion,
        deleted_at=deletion.deleted_at.replace(microsecond=0),
        expires_at=deletion.expires_at.replace(microsecond=0),
    )
    return SignedTombstone(
        deletion.bulletin_id,
        deletion.ring,
        deletion.author,
        deletion.deleted_by,
        deletion.deleted_at,
        deletion.expires_at,
        board_key=key.public_bytes,
        signature=key.sign(tombstone.signed_fields(deletion)),
    )


def sign_action(
    key: BoardKey,
    action: Action,
    target: bytes,
    ring: int,
    moderator: str,
    at: datetime,
    expires_at: datetime,
) -> ModerationMsg:
    """An action this board verified, signed so other boards can check it."""
    at, expires_at = at.replace(microsecond=0), expires_at.replace(microsecond=0)
    signature = key.sign(signed_fields(action, target, ring, moderator, at, expires_at))
    return ModerationMsg(
        action, target, ring, moderator, at, expires_at, key.public_bytes, signature
    )


def sign_member(
    key: BoardKey,
    ring: int,
    node: str,
    joined: bool,
    radio_key: bytes,
    at: datetime,
    expires_at: datetime,
) -> MemberMsg:
    """A join or leave this board witnessed, signed so other boards can check it."""
    at, expires_at = at.replace(microsecond=0), expires_at.replace(microsecond=0)
    signed = members.signed_fields(ring, node, joined, at, expires_at, radio_key)
    return MemberMsg(
        ring, node, joined, at, expires_at, radio_key, key.public_bytes, key.sign(signed)
    )
