"""The board's signing key: made once, kept private, and signatures that catch any change."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from board.errors import BoardError
from board.signing import BadKeyFile, BoardKey, decode_public, key_path, verify


def test_the_key_is_made_once_private_and_read_back(tmp_path: Path) -> None:
    path = key_path(tmp_path / "board.db")
    assert path.name == "board.db.key"
    key = BoardKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = BoardKey.load_or_create(path)
    assert again.public == key.public
    assert decode_public(key.public) == key.public_bytes


def test_a_signature_fails_for_another_message_or_another_key(tmp_path: Path) -> None:
    key, other = BoardKey.generate(), BoardKey.generate()
    signature = key.sign(b"remove #a3f0")
    assert verify(key.public_bytes, b"remove #a3f0", signature)
    assert not verify(key.public_bytes, b"remove #a3f1", signature)
    assert not verify(other.public_bytes, b"remove #a3f0", signature)
    assert not verify(key.public_bytes, b"remove #a3f0", signature[:-1])


def test_a_damaged_key_file_or_public_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "board.db.key"
    path.write_bytes(b"short")
    with pytest.raises(BadKeyFile, match="not a board key"):
        BoardKey.load_or_create(path)
    with pytest.raises(BoardError, match="not a board public key"):
        decode_public("not base64!")
