"""Sneakernet bundles: a board's bulletins in one signed file, carried on a USB drive.

When the radios do not reach the next neighbourhood, a person carries a bundle there. The file is
signed with the exporting board's Ed25519 key (`board.signing`), so a flipped bit on a worn
stick, a file cut short when the stick was pulled, or an edit made on the way is refused as a
whole. The bulletins inside are their canonical bytes and the tombstones their board-plane
payloads, the same encodings sync puts on the air, so ids stay content hashes and importing twice
changes nothing.

Layout (big-endian; docs/wire-format.md has the byte counts):

    header   magic "MESHBNDL" (8), version (1), exporter public key (32), created_at (4),
             since (4, 0 = everything), ring count (1), one byte per ring,
             bulletin count (4), tombstone count (4)
    records  kind (1: 1 bulletin, 2 tombstone), length (2), body
    trailer  Ed25519 signature (64) over every byte before it

`decode_bundle` raises only `BadBundle`, for any bytes.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from board.bulletin import MAX_LIFETIME, Bulletin, Tombstone
from board.errors import BoardError, ForeignPacket, MalformedBulletin, MalformedPacket
from board.signing import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, BoardKey, encode_public, verify
from board.store.bulletins import Merged, Store
from board.wire.codec import TombstoneMsg, decode, encode

logger = logging.getLogger(__name__)

MAGIC = b"MESHBNDL"
VERSION = 1
_HEAD = struct.Struct(f">8sB{PUBLIC_KEY_BYTES}sIIB")  # magic, version, key, created, since, rings
_COUNTS = struct.Struct(">II")
_RECORD = struct.Struct(">BH")
BULLETIN_RECORD = 1
TOMBSTONE_RECORD = 2
#: The ring on the primary channel: the one anyone with the default key reads.
PUBLIC_RING = 0


class BadBundle(BoardError):
    """A file that is not a bundle this board can import as it stands; nothing was imported."""


@dataclass(frozen=True)
class Bundle:
    """A decoded, signature-checked bundle."""

    exporter: bytes  # the exporting board's public key
    created_at: datetime
    since: datetime | None
    rings: tuple[int, ...]
    bulletins: tuple[Bulletin, ...]
    tombstones: tuple[Tombstone, ...]

    @property
    def exporter_text(self) -> str:
        return encode_public(self.exporter)


def _unix(moment: datetime | None) -> int:
    return 0 if moment is None else int(moment.astimezone(UTC).timestamp())


def encode_bundle(
    key: BoardKey,
    rings: Sequence[int],
    bulletins: Sequence[Bulletin],
    tombstones: Sequence[Tombstone],
    now: datetime,
    since: datetime | None = None,
) -> bytes:
    """The signed file for these items, which must all belong to `rings`."""
    ring_set = sorted(set(rings))
    stray = {b.ring for b in bulletins} | {t.ring for t in tombstones}
    if not stray <= set(ring_set):
        raise ValueError(f"items of rings {sorted(stray - set(ring_set))} not in the header")
    parts = [
        _HEAD.pack(MAGIC, VERSION, key.public_bytes, _unix(now), _unix(since), len(ring_set)),
        bytes(ring_set),
        _COUNTS.pack(len(bulletins), len(tombstones)),
    ]
    for bulletin in bulletins:
        parts.append(_record(BULLETIN_RECORD, bulletin.canonical_bytes()))
    for tombstone in tombstones:
        parts.append(_record(TOMBSTONE_RECORD, encode(TombstoneMsg.of(tombstone))))
    body = b"".join(parts)
    return body + key.sign(body)


def _record(kind: int, body: bytes) -> bytes:
    return _RECORD.pack(kind, len(body)) + body


def decode_bundle(data: bytes, progress: Callable[[int], None] | None = None) -> Bundle:
    """Check and decode a bundle file; `BadBundle` for anything else, whatever the bytes.

    The structure is read first (so a cut file says so), then the signature is checked, and
    only signed bytes are decoded into bulletins. `progress` is told the bytes read so far.
    """
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BadBundle("not a Meshboard bundle")
    if len(data) < _HEAD.size:
        raise BadBundle("bundle is truncated")
    _, version, exporter, created, since, ring_count = _HEAD.unpack_from(data)
    if version != VERSION:
        raise BadBundle(f"bundle format version {version} is unknown here (this board reads 1)")
    offset = _HEAD.size
    rings = tuple(data[offset : offset + ring_count])
    offset += ring_count
    if len(data) < offset + _COUNTS.size:
        raise BadBundle("bundle is truncated")
    bulletin_count, tombstone_count = _COUNTS.unpack_from(data, offset)
    offset += _COUNTS.size
    records: list[tuple[int, bytes]] = []
    for _ in range(bulletin_count + tombstone_count):
        if len(data) < offset + _RECORD.size:
            raise BadBundle("bundle is truncated")
        kind, length = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        if len(data) < offset + length:
            raise BadBundle("bundle is truncated")
        records.append((kind, data[offset : offset + length]))
        offset += length
    if len(data) < offset + SIGNATURE_BYTES:
        raise BadBundle("bundle is truncated")
    if len(data) > offset + SIGNATURE_BYTES:
        raise BadBundle("bundle has bytes after its signature")
    if not verify(exporter, data[:offset], data[offset:]):
        raise BadBundle("bundle signature does not match: the file was changed after export")
    if len(set(rings)) != len(rings) or any(ring > 7 for ring in rings):
        raise BadBundle("bundle header lists bad rings")
    bulletins: list[Bulletin] = []
    tombstones: list[Tombstone] = []
    for index, (kind, body) in enumerate(records):
        expected = BULLETIN_RECORD if index < bulletin_count else TOMBSTONE_RECORD
        if kind != expected:
            raise BadBundle(f"bundle record {index + 1} is of kind {kind}, expected {expected}")
        if kind == BULLETIN_RECORD:
            bulletins.append(_bulletin(body, index))
        else:
            tombstones.append(_tombstone(body, index))
        if progress is not None:
            progress(_RECORD.size + len(body))
    bundle = Bundle(
        exporter=exporter,
        created_at=datetime.fromtimestamp(created, UTC),
        since=datetime.fromtimestamp(since, UTC) if since else None,
        rings=rings,
        bulletins=tuple(bulletins),
        tombstones=tuple(tombstones),
    )
    stray = {b.ring for b in bulletins} | {t.ring for t in tombstones}
    if not stray <= set(rings):
        raise BadBundle(f"bundle holds items of ring {min(stray - set(rings))} it does not list")
    return bundle


def _bulletin(body: bytes, index: int) -> Bulletin:
    try:
        return Bulletin.from_canonical_bytes(body)
    except MalformedBulletin as exc:
        raise BadBundle(f"bundle record {index + 1}: {exc}") from exc


def _tombstone(body: bytes, index: int) -> Tombstone:
    try:
        msg = decode(body)
    except (ForeignPacket, MalformedPacket) as exc:
        raise BadBundle(f"bundle record {index + 1}: {exc}") from exc
    if not isinstance(msg, TombstoneMsg):
        raise BadBundle(f"bundle record {index + 1} is not a tombstone")
    return msg.tombstone()


# -- export and import against a store -------------------------------------------------------------


def export_items(
    store: Store, rings: Iterable[int], now: datetime, since: datetime | None = None
) -> tuple[list[Bulletin], list[Tombstone]]:
    """The rings' active bulletins (created since `since`) and tombstones (deleted since)."""
    bulletins: list[Bulletin] = []
    tombstones: list[Tombstone] = []
    for ring in sorted(set(rings)):
        bulletins += [
            b for b in store.active(now, ring=ring) if since is None or b.created_at >= since
        ]
        tombstones += [
            t for t in store.tombstones(ring, now) if since is None or t.deleted_at >= since
        ]
    return bulletins, tombstones


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a pulled drive leaves the old file or the whole new one.

    A temporary file in the same directory is written and fsynced, then renamed over `path`,
    and the directory is fsynced so the rename itself is on the stick.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass(frozen=True)
class ImportReport:
    """What an import did, for the person holding the USB stick."""

    exporter: str  # base64 public key of the board that signed the file
    created_at: datetime
    new: int
    already: int  # held already, or deleted here before
    removed: int  # held bulletins removed by the bundle's tombstones
    tombstones: int  # tombstones stored
    expired: int  # bulletins that expired on the way
    implausible: int  # bulletins expiring beyond anything a board posts now (a wrong clock)


def import_bundle(
    store: Store,
    bundle: Bundle,
    served: Iterable[int],
    now: datetime,
    *,
    trusted: Mapping[int, Iterable[str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Merge a decoded bundle into `store` in one transaction, or refuse it whole.

    A bundle holding a ring this board does not serve is refused: nothing crosses rings, and a
    board that does not serve a ring stores none of it. Bulletins that expired on the way, or
    that expire further ahead than any board could post today (the sync engine's rule), are
    skipped and counted, as the board plane would drop them.

    `trusted` maps a private ring (any but channel 0) to the base64 keys of the boards whose
    bundles may add to it: anyone can sign a file, and only the channel key keeps a private ring
    private on the air, so a USB stick must not be a way around it. The public ring takes any
    valid signature: whoever carried the file could have posted the same over the air.
    """
    served_rings = frozenset(served)
    foreign = sorted(set(bundle.rings) - served_rings)
    if foreign:
        raise BadBundle(
            f"bundle holds ring {foreign[0]}, which this board does not serve; nothing imported"
        )
    for ring in bundle.rings:
        allowed = set((trusted or {}).get(ring, ()))
        if ring != PUBLIC_RING and bundle.exporter_text not in allowed:
            raise BadBundle(
                f"bundle holds private ring {ring} but its signer {bundle.exporter_text} is not "
                "a trusted board of that ring; nothing imported"
            )
    horizon = now + MAX_LIFETIME
    expired = [b for b in bundle.bulletins if b.expires_at <= now]
    implausible = [b for b in bundle.bulletins if b.expires_at > horizon]
    keep = [b for b in bundle.bulletins if now < b.expires_at <= horizon]
    tombstones = [t for t in bundle.tombstones if now < t.expires_at <= horizon]
    skipped = len(expired) + len(implausible) + len(bundle.tombstones) - len(tombstones)
    if progress is not None and skipped:
        progress(skipped)
    merged: Merged = store.merge(keep, tombstones, now, progress)
    logger.info(
        "imported bundle from %s: %d new, %d already here",
        bundle.exporter_text,
        merged.new,
        merged.already,
    )
    return ImportReport(
        exporter=bundle.exporter_text,
        created_at=bundle.created_at,
        new=merged.new,
        already=merged.already,
        removed=merged.removed,
        tombstones=merged.tombstones,
        expired=len(expired),
        implausible=len(implausible),
    )
