"""The raw pass-through rate: the flow's own Kafka source into a sink that only counts.

`encore bench ingest` runs this beside the full flow on the same topic, so the ratio of the two says
what Encore's per-event work costs on top of reading Kafka in Bytewax at all.
Run as `python -m bytewax.run benchmarks.passthrough:flow` with `ENCORE_KAFKA_BOOTSTRAP`,
`ENCORE_REDIS_URL`, `BENCH_TOPIC` and `BENCH_COUNT_KEY` set.
"""

from __future__ import annotations

import os

import bytewax.operators as op
import redis
from bytewax.connectors.kafka import KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from encore.settings import Settings


class _CountPartition(StatelessSinkPartition[object]):
    def __init__(self, url: str, key: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._key = key

    def write_batch(self, items: list[object]) -> None:
        self._client.incrby(self._key, len(items))  # one round trip per batch, as the flow's writes


class CountSink(DynamicSink[object]):
    def __init__(self, url: str, key: str) -> None:
        self._url = url
        self._key = key

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPartition:
        return _CountPartition(self._url, self._key)


def flow() -> Dataflow:
    settings = Settings.from_env()
    source = KafkaSource(settings.require_kafka().split(","), [os.environ["BENCH_TOPIC"]],
                         batch_size=settings.flow_batch_size, raise_on_errors=False,
                         add_config={"fetch.wait.max.ms": str(settings.kafka_fetch_wait_ms)})
    dataflow = Dataflow("passthrough")
    messages = op.input("read_events", dataflow, source)
    op.output("count", messages, CountSink(settings.require_redis(), os.environ["BENCH_COUNT_KEY"]))
    return dataflow
