"""Batch-level items: what `attach_track` hands the keyed steps, one item per key per batch.

Bytewax costs something per item and per operator (a Python call for a map or a filter, routing
and grouping for a keyed step), so the flow sends each keyed step one item per touched key per
source batch rather than one per event: `group_batch` turns a batch of events with their tracks
into one list per listener (in the batch's order, which is partition order for that listener) and
one `ReplicaEvents` per source partition (its listening events in offset order, for the global
model's replica). `Flattened` feeds such lists to a logic written for single items, so the
learners, their snapshots and their tests do not change: a logic sees the same items in the same
order as when they came one by one.
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


def group_batch(items: list[EventWithTrack]) -> list[tuple[str, list[Any]]]:
    """`(user_id, (message, track, position))` items → one `(user_id, [values])` per listener and
    one `(replica_id, ReplicaEvents)` per partition with listening events."""
    users: dict[str, list[Any]] = {}
    replicas: dict[str, ReplicaEvents] = {}
    for item in items:
        user_id, value = item
        users.setdefault(user_id, []).append(value)
        if isinstance(value[0], Event):  # control messages teach the global model nothing
            replica, _ = key_by_partition(item)
            group = replicas.get(replica)
            if group is None:
                group = replicas[replica] = ReplicaEvents()
            group.append(value)
    return [*users.items(), *replicas.items()]


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
