"""Commit the flow's processed offsets to Kafka, for monitoring only.

Bytewax resumes from the offsets in its own recovery snapshots and commits nothing to Kafka, so lag
tools that read consumer-group offsets (Burrow, kafka-lag-exporter and its successors,
`kafka-consumer-groups.sh --describe`) cannot see the flow. This thread closes the gap: every few
seconds it reads the processed offsets the flow recorded in Redis (`ops_offsets`: the next offset
to process, written in the same pipeline as the writes they cover) and commits those that moved
to the consumer group (`encore-flow` by default), so any Kafka lag tool shows the lag
`GET /v1/ops/lag` shows.

The commit uses a consumer that never subscribes (a "simple" commit, generation -1): the group has
no members and nobody consumes with it. It never affects where the flow resumes. Failures are
logged and retried at the next tick; they never stop the flow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import redis
from confluent_kafka import Consumer, KafkaException, TopicPartition

from flows.redis_io import RedisClient, connect
from schemas.keys import KeyLayout, parse_partition_member

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 2.0

Offsets = dict[tuple[str, int], int]


class OffsetCommitter:
    """Commits moved offsets of the given topics from Redis to the consumer group."""

    def __init__(self, brokers: Sequence[str], group: str, topics: Sequence[str], client: RedisClient,
                 keys: KeyLayout, kafka_config: Mapping[str, str] | None = None) -> None:
        self.group = group
        self._config = {
            "bootstrap.servers": ",".join(brokers),
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "client.id": "encore-offset-committer",
            # A commit waits for the group coordinator at most this long (the consumer never joins).
            "session.timeout.ms": 6000,
            **(kafka_config or {}),
        }
        self._topics = set(topics)
        self._client = client
        self._keys = keys
        self._consumer: Consumer | None = None
        self.committed: Offsets = {}
        """What the group holds, as far as this committer knows."""
        self.failures = 0

    def read(self) -> Offsets:
        """The processed offsets (next to process) the flow recorded for these topics."""
        offsets: Offsets = {}
        for member, score in self._client.zrange(self._keys.ops_offsets, 0, -1, withscores=True):
            topic, partition = parse_partition_member(member.decode() if isinstance(member, bytes)
                                                      else member)
            if topic in self._topics:
                offsets[(topic, partition)] = int(score)
        return offsets

    def commit_once(self) -> int:
        """Commit the offsets that moved since the last commit; returns how many were committed.
        Raises on failure (Redis or Kafka); the caller decides to retry."""
        moved = {tp: offset for tp, offset in self.read().items() if self.committed.get(tp) != offset}
        if not moved:
            return 0
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in moved.items()]
        results = self._consumer.commit(offsets=offsets, asynchronous=False) or []
        failed = [r for r in results if r.error is not None]
        for result in results:
            if result.error is None:
                self.committed[(result.topic, result.partition)] = result.offset
        if failed:
            raise KafkaException(f"{len(failed)} partition commits failed, e.g. {failed[0].error}")
        return len(moved)

    def tick(self) -> None:
        """One attempt, logging (not raising) any failure."""
        try:
            count = self.commit_once()
            if count:
                log.debug("committed %d offsets to group %s", count, self.group)
            if self.failures:
                log.info("committing offsets to group %s works again", self.group)
            self.failures = 0
        except (KafkaException, redis.RedisError, OSError, ValueError) as exc:
            self.failures += 1
            if self.failures == 1 or self.failures % 30 == 0:
                log.warning("cannot commit offsets to group %s (attempt %d; the flow is unaffected): %s",
                            self.group, self.failures, exc)
            self._drop_consumer()

    def _drop_consumer(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.debug("closing the committer's consumer failed: %s", exc)
            self._consumer = None

    def close(self) -> None:
        self._drop_consumer()


def start_offset_committer(brokers: Sequence[str], redis_url: str, keys: KeyLayout, group: str,
                           topics: Sequence[str], kafka_config: Mapping[str, str] | None = None,
                           interval_s: float = COMMIT_INTERVAL_S) -> threading.Event:
    """Commit in a daemon thread every `interval_s` until the returned event is set (or the process
    ends); a last commit is made when the event is set."""
    stop = threading.Event()

    def run() -> None:
        committer = OffsetCommitter(brokers, group, topics, connect(redis_url), keys, kafka_config)
        try:
            while not stop.wait(interval_s):
                committer.tick()
            committer.tick()
        finally:
            committer.close()

    threading.Thread(target=run, name="flow-offset-commit", daemon=True).start()
    return stop
