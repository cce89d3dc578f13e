"""Where the flow stands in each partition, recorded in Redis with the writes it belongs to.

Bytewax keeps its Kafka offsets in its own recovery snapshots and commits nothing to Kafka, so the
flow records, in the same pipeline as the profile (or catalog, or dead-letter) writes, the next
offset it will process per partition and the broker timestamp of the last message processed. Lag
readers compare these with the log end offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.client import Pipeline
from redis.cluster import ClusterPipeline

from schemas.keys import KeyLayout, partition_member


@dataclass(frozen=True, slots=True)
class Position:
    """A message's place in Kafka, and when the broker stamped it."""

    topic: str
    partition: int
    offset: int
    broker_ts_ms: int


class Progress:
    """The newest position per partition among a batch's messages."""

    __slots__ = ("latest",)

    def __init__(self) -> None:
        self.latest: dict[tuple[str, int], Position] = {}

    def note(self, position: Position) -> None:
        key = (position.topic, position.partition)
        held = self.latest.get(key)
        if held is None or position.offset > held.offset:
            self.latest[key] = position

    def record(self, pipe: Pipeline | ClusterPipeline, keys: KeyLayout) -> None:
        if not self.latest:
            return
        # GT: a replay after a crash, or another worker, never moves an offset backwards.
        pipe.zadd(keys.ops_offsets,
                  {partition_member(p.topic, p.partition): p.offset + 1 for p in self.latest.values()},
                  gt=True)
        pipe.hset(keys.ops_offset_times,
                  mapping={partition_member(p.topic, p.partition): p.broker_ts_ms
                           for p in self.latest.values()})
