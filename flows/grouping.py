"""Batch-level items for the global model: one item per source partition per batch.

Bytewax costs something per item and per operator (a Python call for a map or a filter, routing
and grouping for a keyed step), so `group_batch` hands `learn_global` one `ReplicaEvents` per
source partition and batch (its listening events in offset order) instead of one item per event
through a filter and a key map. The listeners' items pass through one by one: `update_profile`
counts its input items as the events it took in (Bytewax's metrics, which the scale-out test reads).
`Flattened` feeds such lists to a logic written for single items, so the replica, its snapshot and
its tests do not change: it sees the same events in the same order as when they came one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

from bytewax.operators import StatefulBatchLogic

from flows.global_steps import key_by_partition
from flows.track_lookup import EventWithTrack
from schemas.events import Event

V = TypeVar("V")
W = TypeVar("W")
S = TypeVar("S")


class ReplicaEvents(list):
    """One source partition's listening events of one batch, in offset order (a list, so it
    pickles as one when it crosses workers)."""

    __slots__ = ()


def group_batch(items: list[EventWithTrack]) -> list[tuple[str, Any]]:
    """`(user_id, (message, track, position))` items, as they are, then one
    `(replica_id, ReplicaEvents)` per partition with listening events."""
    replicas: dict[str, ReplicaEvents] = {}
    for item in items:
        if isinstance(item[1][0], Event):  # control messages teach the global model nothing
            replica, value = key_by_partition(item)
            group = replicas.get(replica)
            if group is None:
                group = replicas[replica] = ReplicaEvents()
            group.append(value)
    return [*items, *replicas.items()]


def is_replica_events(item: tuple[str, list[Any]]) -> bool:
    return isinstance(item[1], ReplicaEvents)


class Flattened(StatefulBatchLogic[list[V], W, S], Generic[V, W, S]):
    """A logic that takes lists of items, over one that takes items: everything else passes through."""

    def __init__(self, inner: StatefulBatchLogic[V, W, S]) -> None:
        self.inner = inner

    def on_batch(self, values: list[list[V]]) -> tuple[Iterable[W], bool]:
        return self.inner.on_batch([value for group in values for value in group])

    def on_notify(self) -> tuple[Iterable[W], bool]:
        return self.inner.on_notify()

    def on_eof(self) -> tuple[Iterable[W], bool]:
        return self.inner.on_eof()

    def notify_at(self) -> datetime | None:
        return self.inner.notify_at()

    def snapshot(self) -> S:
        return self.inner.snapshot()
