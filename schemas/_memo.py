"""A memo keyed by object identity, for values derived from immutable objects (a track's scaled
features) that the hot path would otherwise recompute several times per event.

Frozen pydantic models with list fields are unhashable, and a value stored on the object itself
would be copied by `model_copy(update=...)` into an object it no longer describes. Entries hold
a weak reference with a callback that drops them, so a dead object's id, which Python may reuse,
never finds its value.

>>> from schemas.tracks import Track
>>> memo = IdentityMemo(lambda track: len(track.track_id))
>>> track = Track(track_id="abc")
>>> memo(track), memo(track), len(memo)
(3, 3, 1)
>>> del track
>>> len(memo)
0
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """`compute(obj)` once per live object (the object must not change, and support weakrefs)."""

    __slots__ = ("_compute", "_entries")

    def __init__(self, compute: Callable[[K], V]) -> None:
        self._compute = compute
        self._entries: dict[int, tuple[weakref.ref, V]] = {}

    def __call__(self, obj: K) -> V:
        key = id(obj)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is obj:
            return entry[1]
        value = self._compute(obj)
        entries = self._entries
        self._entries[key] = (weakref.ref(obj, lambda _ref, key=key: entries.pop(key, None)), value)
        return value

    def __len__(self) -> int:
        return len(self._entries)
