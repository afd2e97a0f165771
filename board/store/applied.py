"""What keeping an item from another board did: one answer for every last-writer-wins store.

Moderation actions and tool states both travel between boards and are kept only when they beat
what is held; the sync engine decides from this whether to pass an item on, tell the sender of
a newer one, or wait for the bulletin it names.
"""

from __future__ import annotations

from enum import Enum


class Applied(Enum):
    NEW = "new"  # kept: it is now the item's state
    DUPLICATE = "duplicate"  # exactly what is held
    STALE = "stale"  # what is held is newer (the sender should hear ours)
    ORPHAN = "orphan"  # the bulletin it names is not held here (yet)
