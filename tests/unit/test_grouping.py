"""Batch-level items (`flows.grouping`): one item per listener and per partition, the same order."""

from __future__ import annotations

from bytewax.operators import StatefulBatchLogic

from flows.grouping import Flattened, ReplicaEvents, group_batch, is_replica_events
from flows.progress import Position
from schemas.events import Event, Forget

T0 = 1_795_248_000_000


def _item(user: str, partition: int, offset: int, forget: bool = False) -> tuple:
    message = (Forget(user_id=user, request_id="r", requested_at=T0) if forget else
               Event(event_id=f"e{offset}", user_id=user, track_id="t", type="play", ts=T0 + offset))
    return user, (message, None, Position("events", partition, offset, T0))


def test_a_batch_keeps_its_events_and_adds_one_list_per_partition_in_order() -> None:
    items = [_item("a", 0, 0), _item("b", 1, 0), _item("a", 0, 1), _item("c", 0, 2),
             _item("b", 1, 1, forget=True), _item("a", 0, 3)]
    out = group_batch(items)
    assert out[: len(items)] == items
    grouped = dict(out[len(items):])
    # A partition's listening events in offset order; control messages only go to the listener.
    assert isinstance(grouped["p0"], ReplicaEvents) and [v[2].offset for v in grouped["p0"]] == [0, 1, 2, 3]
    assert [v[2].offset for v in grouped["p1"]] == [0]
    assert [k for k, v in out if is_replica_events((k, v))] == ["p0", "p1"]


class _Recorder(StatefulBatchLogic):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_batch(self, values: list[int]) -> tuple[list[int], bool]:
        self.seen += values
        return [len(values)], StatefulBatchLogic.RETAIN

    def snapshot(self) -> str:
        return f"{self.seen}"


def test_flattened_hands_the_inner_logic_the_items_in_order() -> None:
    inner = _Recorder()
    logic = Flattened(inner)
    assert logic.on_batch([[1, 2], [3]]) == ([3], StatefulBatchLogic.RETAIN)
    assert inner.seen == [1, 2, 3] and logic.snapshot() == "[1, 2, 3]"
    assert logic.notify_at() is None
