"""The handheld's `mod del <ref>` and `mod undo <ref>`: the moderator on duty hides or restores
any bulletin of the ring, and the board vouches for it to every other board.

`mod undo` also brings back a deleted bulletin: a `del` that a board carried out for whoever
claimed the author's id on the channel key is signed and synced like the author's own, and
only a moderator can tell them apart. The restore is stamped after the deletion, so it wins on
every board (`board.store.moderation`).

Every attempt, carried out or not, goes into the audit log, so that the neighbourhood can see
who tried what. A refusal is one packet that says what to do instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from board.config import MeshboardConfig
from board.errors import AmbiguousRef, BoardError, NotFound
from board.mod_policy import sign_action
from board.refs import normalise_ref
from board.signing import BoardKey
from board.store.bulletins import Store
from board.store.moderation import ModerationStore, short
from board.wire.keys import bytes_to_id, id_to_bytes
from board.wire.moderation import Action, ModerationMsg

logger = logging.getLogger(__name__)

USAGE = "mod del #ref · mod undo #ref (moderator on duty, by PKI DM)"
NOT_VERIFIED = "mod: send it as a direct message with PKI (your radio needs the board's key)"
KEY_NOT_PINNED = "mod: your radio's key is not the one pinned for this moderator"
_ACTIONS = {"del": Action.REMOVE, "undo": Action.RESTORE}


@dataclass(frozen=True)
class ModCommand:
    """One `mod` command as it arrived: who sent it, where, and whether the radio verified them."""

    sender: str
    ring: int
    words: str  # what followed `mod`
    verified: bool
    now: datetime
    public_key: bytes | None = None  # the key the radio decrypted it with


class Refused(BoardError):
    """A moderation attempt that is not carried out; the text is the reply."""

    def __init__(self, reply: str, reason: str) -> None:
        super().__init__(reply)
        self.reason = reason  # short, for the audit log


class Moderation:
    """Carries out the `mod` commands of one board; the command handler delegates to it."""

    def __init__(
        self,
        store: Store,
        config: MeshboardConfig,
        key: BoardKey | None,
        tz: ZoneInfo,
    ) -> None:
        self._store = store
        self._log = ModerationStore(store.engine)
        self._config = config
        self._key = key
        self._tz = tz

    def handle(self, cmd: ModCommand) -> tuple[str, ModerationMsg | None]:
        """The reply, and the signed action to sync when one was carried out."""
        parts = cmd.words.split()
        if len(parts) != 2 or parts[0].lower() not in _ACTIONS:
            return USAGE, None
        action, typed = _ACTIONS[parts[0].lower()], parts[1]
        try:
            msg = self._carry_out(cmd, action, typed)
        except Refused as refused:
            self._log.log(
                at=cmd.now,
                ring=cmd.ring,
                moderator=cmd.sender,
                action=action,
                bulletin=typed.removeprefix("#")[:26],
                source="handheld",
                refused=refused.reason,
            )
            return str(refused), None
        verb = "removed" if action == Action.REMOVE else "restored"
        return f"{verb} #{short(bytes_to_id(msg.target))}; other boards will follow", msg

    def _carry_out(self, cmd: ModCommand, action: Action, typed: str) -> ModerationMsg:
        self._check_sender(cmd)
        if self._key is None:
            raise Refused("mod: this board has no signing key", "no board key")
        bulletin_id, expires_at, deleted_at = self._target(cmd, action, typed)
        held = self._log.current(bulletin_id)
        at = cmd.now.replace(microsecond=0)
        for before in (held.at if held is not None else None, deleted_at):
            if before is not None and before >= at:
                # A second action in one second must still win, and so must a restore over a
                # deletion stamped by a board whose clock is ahead of ours.
                at = before + timedelta(seconds=1)
        msg = sign_action(
            self._key, action, id_to_bytes(bulletin_id), cmd.ring, cmd.sender, at, expires_at
        )
        self._log.apply(msg, cmd.now)
        self._log.log(
            at=cmd.now,
            ring=cmd.ring,
            moderator=cmd.sender,
            action=action,
            bulletin=bulletin_id,
            source="handheld",
            board_key=msg.board_key,
        )
        return msg

    def _check_sender(self, cmd: ModCommand) -> None:
        spec = self._config.by_channel(cmd.ring)
        rotation = spec.rotation if spec is not None else None
        if rotation is None or not rotation.moderators:
            raise Refused("mod: this ring has no moderators", "ring has no moderators")
        on_duty = rotation.on_duty(cmd.now)
        if cmd.sender != on_duty:
            until = rotation.next_change(cmd.now).astimezone(self._tz).strftime("%a %d %b %H:%M")
            if on_duty is None:
                reply = f"mod: nobody is on duty until {until}"
            else:
                reply = f"mod: you are not on duty; {on_duty} is until {until}"
            raise Refused(reply, "not on duty")
        if not cmd.verified:
            raise Refused(NOT_VERIFIED, "not verified (no PKI direct message)")
        pinned = spec.pinned_key(cmd.sender) if spec is not None else None
        if pinned is not None and cmd.public_key != pinned:
            raise Refused(KEY_NOT_PINNED, "radio key is not the one pinned for this moderator")

    def _target(
        self, cmd: ModCommand, action: Action, typed: str
    ) -> tuple[str, datetime, datetime | None]:
        """The bulletin's id, its expiry, and when it was deleted (None if it was not): a
        removal finds visible bulletins, an undo removed or deleted ones.
        """
        try:
            if action == Action.REMOVE:
                bulletin = self._store.get(typed, cmd.ring, now=cmd.now)
                return bulletin.id, bulletin.expires_at, None
            ref = normalise_ref(typed)
            removed = self._log.removed(ref, cmd.ring, cmd.now)
            deleted = {t.bulletin_id: t for t in self._store.deleted(ref, cmd.ring, cmd.now)}
        except AmbiguousRef as exc:
            raise Refused(f"mod: {exc}", "ambiguous ref") from exc
        except NotFound as exc:
            raise Refused(f"mod: {exc}", "unknown ref") from exc
        shown = typed.removeprefix("#")[:12]
        ids = sorted(set(removed) | deleted.keys())
        if not ids:
            raise Refused(f"mod: #{shown} is not a removed bulletin", "unknown ref")
        if len(ids) > 1:
            raise Refused(f"mod: #{shown} matches several; type more of it", "ambiguous ref")
        tombstone = deleted.get(ids[0])
        if tombstone is not None:
            return ids[0], tombstone.expires_at, tombstone.deleted_at
        held = self._log.current(ids[0])
        if held is None:  # expired between the two reads
            raise Refused(f"mod: #{shown} is not a removed bulletin", "unknown ref")
        return ids[0], held.expires_at, None
