"""The flow's consumer lag, per partition, in messages and in seconds.

Bytewax keeps its Kafka offsets in its recovery snapshots and commits nothing to Kafka, so the flow
records in Redis, with the writes they belong to, the next offset it will process per partition
(`ops_offsets`, Kafka-commit style: processed + 1) and the broker timestamp of the last message it
processed (`ops_offset_times`). Lag compares them with the log:

- `lag_messages = end_offset - processed_offset` (never below 0), where `processed_offset` is that
  committed-style next offset, or the partition's beginning offset while the flow has recorded
  nothing for it;
- `lag_seconds` is 0 when caught up, else how old the oldest unprocessed message is: now minus the
  timestamp of the message at `processed_offset`, read from Kafka (and cached per offset).

The log end is the high watermark, checked against the log itself: the embedded Tansu broker
reports, as high watermark, the base offset of the newest record batch + 1 rather than the offset
after its last record, so a batch of many records would hide most of the lag. The reader fetches
from `high watermark - 1` and takes the offset after the last record it gets: on Apache Kafka that
is the high watermark itself; on Tansu it is the true end (docs/operating.md has the details).

All Kafka reads use kafka-python with manually assigned partitions: no consumer group to join.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from schemas.keys import KeyLayout, parse_partition_member

log = logging.getLogger(__name__)

Partition = tuple[str, int]


class LagUnavailable(RuntimeError):
    """Kafka or Redis could not be read, so lag cannot be computed right now."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    beginning_offset: int
    end_offset: int
    processed_offset: int
    """The next offset the flow will process (processed + 1), as a Kafka commit would hold it."""
    lag_messages: int
    lag_seconds: float
    last_processed_ms: int | None
    """Broker timestamp of the last message the flow processed in this partition."""
    rate_per_s: float | None
    """Messages processed per second over the last few reports (None until there are two)."""


@dataclass(frozen=True, slots=True)
class TopicLag:
    topic: str
    partitions: list[PartitionLag]

    @property
    def lag_messages(self) -> int:
        return sum(p.lag_messages for p in self.partitions)

    @property
    def lag_seconds(self) -> float:
        return max((p.lag_seconds for p in self.partitions), default=0.0)

    @property
    def rate_per_s(self) -> float | None:
        rates = [p.rate_per_s for p in self.partitions if p.rate_per_s is not None]
        return round(sum(rates), 3) if rates else None


@dataclass(frozen=True, slots=True)
class LagReport:
    group: str
    as_of_ms: int
    topics: list[TopicLag] = field(default_factory=list)

    @property
    def lag_messages(self) -> int:
        return sum(t.lag_messages for t in self.topics)

    @property
    def lag_seconds(self) -> float:
        return max((t.lag_seconds for t in self.topics), default=0.0)

    def partitions(self) -> Iterable[PartitionLag]:
        for topic in self.topics:
            yield from topic.partitions

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `GET /v1/ops/lag`: per topic totals, per partition details."""
        return {
            "group": self.group,
            "as_of_ms": self.as_of_ms,
            "lag_messages": self.lag_messages,
            "lag_seconds": self.lag_seconds,
            "topics": [
                {"topic": t.topic, "lag_messages": t.lag_messages, "lag_seconds": t.lag_seconds,
                 "rate_per_s": t.rate_per_s, "partitions": [asdict(p) for p in t.partitions]}
                for t in self.topics
            ],
        }


def lag_of(end_offset: int, processed_offset: int) -> int:
    """Messages behind: the log end minus the next offset to process, never below 0.

    >>> lag_of(120, 100), lag_of(100, 100), lag_of(100, 103)
    (20, 0, 0)
    """
    return max(0, end_offset - processed_offset)


def lag_seconds_of(lag_messages: int, now_ms: float, oldest_unprocessed_ms: int | None) -> float:
    """How old the oldest unprocessed message is, in seconds; 0 when caught up.

    >>> lag_seconds_of(0, 10_000, 1_000), lag_seconds_of(5, 10_000, 1_000), lag_seconds_of(5, 10, None)
    (0.0, 9.0, 0.0)
    """
    if lag_messages <= 0 or oldest_unprocessed_ms is None:
        return 0.0
    return round(max(0.0, now_ms - oldest_unprocessed_ms) / 1000, 3)


class KafkaLogReader:
    """The Kafka side of lag: partitions, log start and end offsets, message timestamps.

    Thread-safe (one lock around one kafka-python consumer, created lazily and again after an
    error, so an API started before its broker still comes up).
    """

    def __init__(self, bootstrap: Sequence[str], timeout_s: float = 3.0,
                 client_options: Mapping[str, Any] | None = None) -> None:
        """`client_options`: kafka-python keyword arguments (security protocol, SASL, TLS), as
        `schemas.kafka_config.KafkaClientConfig.kafka_python()` makes them."""
        self._bootstrap = list(bootstrap)
        self._client_options = dict(client_options or {})
        self._timeout_ms = int(timeout_s * 1000)
        self._lock = threading.Lock()
        self._consumer: KafkaConsumer | None = None
        self._true_ends: dict[Partition, tuple[int, int]] = {}
        """(topic, partition) → (high watermark, true end) of the last check."""
        self._timestamps: collections.OrderedDict[tuple[str, int, int], int] = collections.OrderedDict()

    def _client(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap, client_id="encore-lag", group_id=None,
                enable_auto_commit=False, request_timeout_ms=max(self._timeout_ms, 1000),
                bootstrap_timeout_ms=self._timeout_ms, fetch_max_wait_ms=100,
                consumer_timeout_ms=self._timeout_ms, **self._client_options,
            )
        return self._consumer

    def _reset(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:  # closing a broken client must not hide the first error
                log.debug("closing the lag reader failed: %s", exc)
        self._consumer = None

    def close(self) -> None:
        with self._lock:
            self._reset()

    def ping(self) -> None:
        """A round trip to the cluster (a metadata request); raises LagUnavailable if it fails."""
        with self._lock:
            try:
                self._client().topics()
            except (KafkaError, OSError, ValueError) as exc:
                self._reset()
                raise LagUnavailable(f"Kafka is unreachable: {exc}") from exc

    def log_offsets(self, topics: Sequence[str]) -> dict[Partition, tuple[int, int]]:
        """(beginning offset, end offset) of every partition of these topics."""
        with self._lock:
            try:
                return self._log_offsets(topics)
            except (KafkaError, OSError, ValueError, AssertionError) as exc:
                self._reset()
                raise LagUnavailable(f"cannot read Kafka offsets: {exc}") from exc

    def _log_offsets(self, topics: Sequence[str]) -> dict[Partition, tuple[int, int]]:
        consumer = self._client()
        tps = []
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:  # not in the cached metadata: ask the cluster once more
                consumer.topics()
                partitions = consumer.partitions_for_topic(topic)
            tps.extend(TopicPartition(topic, p) for p in sorted(partitions or ()))
        if not tps:
            return {}
        beginnings = consumer.beginning_offsets(tps, timeout_ms=self._timeout_ms)
        ends = consumer.end_offsets(tps, timeout_ms=self._timeout_ms)
        return {(tp.topic, tp.partition): (beginnings[tp], self._true_end(tp, ends[tp])) for tp in tps}

    def _true_end(self, tp: TopicPartition, high_watermark: int) -> int:
        """The offset after the partition's last record: the high watermark, unless the last
        record batch reaches past it (Tansu counts a batch as one record)."""
        if high_watermark <= 0:
            return high_watermark
        key = (tp.topic, tp.partition)
        held = self._true_ends.get(key)
        if held is not None and held[0] == high_watermark:
            return held[1]
        records = self._read(tp, high_watermark - 1, max_records=1_000_000)
        end = max([high_watermark, *(r.offset + 1 for r in records)])
        self._true_ends[key] = (high_watermark, end)
        return end

    def timestamp_at(self, topic: str, partition: int, offset: int) -> int | None:
        """Timestamp (ms) of the first message at or after `offset`, or None if none came in time."""
        key = (topic, partition, offset)
        with self._lock:
            if key in self._timestamps:
                self._timestamps.move_to_end(key)
                return self._timestamps[key]
            try:
                records = self._read(TopicPartition(topic, partition), offset, max_records=1)
            except (KafkaError, OSError, ValueError, AssertionError) as exc:
                self._reset()
                log.warning("cannot read the message at %s:%d@%d: %s", topic, partition, offset, exc)
                return None
            if not records:
                return None
            self._timestamps[key] = records[0].timestamp
            while len(self._timestamps) > 4096:
                self._timestamps.popitem(last=False)
            return records[0].timestamp

    def _read(self, tp: TopicPartition, offset: int, max_records: int) -> list[Any]:
        consumer = self._client()
        consumer.assign([tp])
        consumer.seek(tp, offset)
        polled = consumer.poll(timeout_ms=self._timeout_ms, max_records=max_records)
        return [r for r in polled.get(tp, []) if r.offset >= offset]


@dataclass(frozen=True, slots=True)
class ProcessedOffsets:
    """What the flow recorded in Redis: next offset to process, and last processed timestamp."""

    offsets: dict[Partition, int]
    times_ms: dict[Partition, int]

    @classmethod
    def read(cls, client: redis.Redis, keys: KeyLayout) -> ProcessedOffsets:
        try:
            pipe = client.pipeline(transaction=False)
            pipe.zrange(keys.ops_offsets, 0, -1, withscores=True)
            pipe.hgetall(keys.ops_offset_times)
            raw_offsets, raw_times = pipe.execute()
        except redis.RedisError as exc:
            raise LagUnavailable(f"cannot read processed offsets from Redis: {exc}") from exc
        return cls.parse(raw_offsets, raw_times)

    @classmethod
    def parse(cls, raw_offsets: Iterable[tuple[bytes | str, float]],
              raw_times: Mapping[bytes | str, bytes | str]) -> ProcessedOffsets:
        """Parse redis-py's answers (ZRANGE WITHSCORES, HGETALL).

        >>> ProcessedOffsets.parse([(b"e:0", 12.0)], {b"e:0": b"1700"})
        ProcessedOffsets(offsets={('e', 0): 12}, times_ms={('e', 0): 1700})
        """
        def name(member: bytes | str) -> str:
            return member.decode() if isinstance(member, bytes) else member

        offsets = {parse_partition_member(name(m)): int(score) for m, score in raw_offsets}
        times = {parse_partition_member(name(m)): int(float(v)) for m, v in raw_times.items()}
        return cls(offsets, times)


class LagMonitor:
    """Computes lag reports from Kafka and Redis; shares one report among callers for `ttl_s`,
    so the API, the /ops page and Prometheus scrapes do not multiply the reads. A failure is shared
    the same way for `2 * ttl_s`, so callers do not queue behind one unreachable broker."""

    def __init__(self, reader: KafkaLogReader, client: redis.Redis, keys: KeyLayout,
                 topics: Sequence[str], group: str, ttl_s: float = 1.0, rate_window_s: float = 10.0,
                 clock: Any = time) -> None:
        self.reader = reader
        self.group = group
        self._client = client
        self._keys = keys
        self._topics = list(topics)
        self._ttl_s = ttl_s
        self._rate_window_s = rate_window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, LagReport] | None = None
        self._failed: tuple[float, LagUnavailable] | None = None
        self._history: collections.deque[tuple[float, dict[Partition, int]]] = collections.deque()
        self.last_success_s: float | None = None
        """Monotonic time of the last report that read Kafka and Redis successfully."""

    def report(self, max_age_s: float | None = None) -> LagReport:
        """The current lag; raises LagUnavailable when Kafka or Redis cannot be read."""
        max_age = self._ttl_s if max_age_s is None else max_age_s
        with self._lock:
            now = self._clock.monotonic()
            if self._cached is not None and now - self._cached[0] <= max_age:
                return self._cached[1]
            if self._failed is not None and now - self._failed[0] <= 2 * self._ttl_s:
                raise self._failed[1]
            try:
                report = self._compute(now)
            except LagUnavailable as exc:
                self._failed = (self._clock.monotonic(), exc)
                raise
            self._failed = None
            self._cached = (now, report)
            self.last_success_s = now
            return report

    def _compute(self, now_s: float) -> LagReport:
        log_offsets = self.reader.log_offsets(self._topics)
        processed = ProcessedOffsets.read(self._client, self._keys)
        now_ms = self._clock.time() * 1000
        committed = {
            tp: processed.offsets.get(tp, beginning) for tp, (beginning, _end) in log_offsets.items()
        }
        rates = self._rates(now_s, committed)
        by_topic: dict[str, list[PartitionLag]] = {topic: [] for topic in self._topics}
        for (topic, partition), (beginning, end) in sorted(log_offsets.items()):
            position = committed[(topic, partition)]
            end = max(end, position)  # what was processed exists, whatever the broker says
            behind = lag_of(end, position)
            oldest = self.reader.timestamp_at(topic, partition, position) if behind else None
            if behind and oldest is None:  # unreadable now: the last processed time bounds it
                oldest = processed.times_ms.get((topic, partition))
            by_topic[topic].append(PartitionLag(
                topic=topic, partition=partition, beginning_offset=beginning, end_offset=end,
                processed_offset=position, lag_messages=behind,
                lag_seconds=lag_seconds_of(behind, now_ms, oldest),
                last_processed_ms=processed.times_ms.get((topic, partition)),
                rate_per_s=rates.get((topic, partition)),
            ))
        return LagReport(self.group, int(now_ms), [TopicLag(t, parts) for t, parts in by_topic.items()])

    def _rates(self, now_s: float, committed: dict[Partition, int]) -> dict[Partition, float]:
        """Processed messages per second per partition, over about the last `rate_window_s`."""
        history = self._history
        history.append((now_s, committed))
        while len(history) > 2 and now_s - history[1][0] >= self._rate_window_s:
            history.popleft()
        then, before = history[0]
        elapsed = now_s - then
        if elapsed < 0.5:
            return {}
        return {tp: round(max(0, offset - before.get(tp, offset)) / elapsed, 3)
                for tp, offset in committed.items()}
