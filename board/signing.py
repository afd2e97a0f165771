"""A board's own signing key: Ed25519, kept next to its database.

Two things need a board to vouch for what it says beyond the channel key, which every member of
a ring shares: a bundle carried between neighbourhoods on a USB drive, and a moderator's removal
that this board verified (the radio decrypted the moderator's PKI direct message, so only this
board saw the proof). An Ed25519 signature is 64 bytes and a public key 32, which is also small
enough to go on the air for the rare moderation action.

The key is created on first use with mode 0600 in a file of its own, so that copying the
database (a backup, a bundle) never copies the key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from board.errors import BoardError

logger = logging.getLogger(__name__)

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
_SEED_BYTES = 32


class BadKeyFile(BoardError):
    """The key file exists but cannot be used."""


def key_path(db_path: Path) -> Path:
    """Beside the database, as `<db>.key`."""
    return db_path.with_name(db_path.name + ".key")


class BoardKey:
    """This board's private key; `public` is what other boards list as trusted."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_bytes = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> BoardKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> BoardKey:
        """The key in `path`, made (0600) if there is none yet."""
        try:
            seed = path.read_bytes()
        except FileNotFoundError:
            key = cls.generate()
            key._write(path)
            logger.info("created this board's signing key in %s", path)
            return key
        if len(seed) != _SEED_BYTES:
            raise BadKeyFile(f"{path} is not a board key ({len(seed)} bytes, expected 32)")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public(self) -> str:
        """The public key as base64 text, for the configuration file and bundle headers."""
        return encode_public(self.public_bytes)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def _write(self, path: Path) -> None:
        seed = self._private.private_bytes_raw()
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, seed)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)


def encode_public(public_bytes: bytes) -> str:
    return base64.b64encode(public_bytes).decode("ascii")


def decode_public(text: str) -> bytes:
    """A base64 public key from a file or the configuration; BoardError if it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BoardError(f"{text!r} is not a board public key") from error
    if len(raw) != PUBLIC_KEY_BYTES:
        raise BoardError(f"{text!r} is not a board public key")
    return raw


def verify(public_bytes: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is the holder of `public_bytes` signing `message`."""
    if len(public_bytes) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_bytes).verify(signature, message)
    except InvalidSignature:
        return False
    return True
