"""CPU per event of the real dataflow, in process, with a real Redis and no broker.

    .venv/bin/python -m benchmarks.flow_cpu [--events N] [--duplicates F] [--dump PATH] [--profile PATH]

`benchmarks.flow_bench` measures the flow end to end as production runs it, where librdkafka's
polling, the broker and the pollers share the machine and a figure moves with wall time. This
measures what the dataflow itself costs: `flows.dataflow.build_flow`, unchanged, run by Bytewax's
`run_main` in this process, its Kafka sources replaced by partitions that hand out prebuilt
`KafkaSourceMessage`s (the same objects, batch size and partitioning as `KafkaSource`) and its
dead-letter sink by one that keeps the messages. A first run applies the catalog (the shipped
sample, through the flow's own catalog path); the measured run then drains `flow_bench`'s workload
(same generator and seed), optionally with a share of redelivered duplicates and bad messages.
Printed: the process's CPU (all threads: the dataflow, its Redis clients) per event, and Redis's;
with `--steps`, each step's share (its Python entry points timed with `os.times`).

`--dump` writes every Redis key's value afterwards (sorted; no wall-clock keys), so two trees'
outcomes can be compared byte for byte: run each with `PYTHONPATH=<tree>`. `--profile` writes a
cProfile of the measured run.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import random
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from benchmarks.workload import TS0_MS, make_workload

NAMESPACE = "flowcpu"
PARTITIONS = 4
WALL_KEYS = ("heartbeat", "freshness", "last_write", "updated_at", "lag")
"""Substrings of key names whose values follow the wall clock, left out of `--dump`."""


class _ListPartition(StatefulSourcePartition[Any, int]):
    def __init__(self, messages: list[KafkaSourceMessage], batch_size: int, resume: int | None) -> None:
        self._messages, self._batch_size, self._at = messages, batch_size, resume or 0

    def next_batch(self) -> list[KafkaSourceMessage]:
        if self._at >= len(self._messages):
            raise StopIteration
        batch = self._messages[self._at:self._at + self._batch_size]
        self._at += len(batch)
        return batch

    def snapshot(self) -> int:
        return self._at


class ListSource(FixedPartitionedSource[Any, int]):
    """Kafka partitions as lists of messages: `KafkaSource`'s items without a broker."""

    def __init__(self, partitions: dict[int, list[KafkaSourceMessage]], batch_size: int) -> None:
        self._partitions, self._batch_size = partitions, batch_size

    def list_parts(self) -> list[str]:
        return [str(p) for p in self._partitions]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _ListPartition:
        return _ListPartition(self._partitions[int(for_part)], self._batch_size, resume_state)


class _KeepPartition(StatelessSinkPartition[Any]):
    def __init__(self, kept: list[Any]) -> None:
        self._kept = kept

    def write_batch(self, items: list[Any]) -> None:
        self._kept.extend(items)


class KeepSink(DynamicSink[Any]):
    def __init__(self) -> None:
        self.kept: list[Any] = []

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _KeepPartition:
        return _KeepPartition(self.kept)


def partitioned(topic: str, messages: Iterable[tuple[bytes, bytes]],
                time_scale: float = 1.0) -> dict[int, list[KafkaSourceMessage]]:
    """Messages by partition (a stable hash of the key, as a keyed producer does), with offsets and
    broker timestamps a little after the events' times."""
    parts: dict[int, list[KafkaSourceMessage]] = {p: [] for p in range(PARTITIONS)}
    for i, (key, value) in enumerate(messages):
        p = zlib.crc32(key) % PARTITIONS
        broker_ts = TS0_MS + int(20 * i * time_scale) + 5_000
        parts[p].append(KafkaSourceMessage(key=key, value=value, topic=topic, offset=len(parts[p]),
                                           partition=p, timestamp=(1, broker_ts)))
    return parts


def stretched(events: list[tuple[bytes, bytes]], time_scale: float) -> list[tuple[bytes, bytes]]:
    """The events with their times `time_scale` times as far apart (eras, periods and the dedupe
    horizon come into play)."""
    out = []
    for key, value in events:
        event = orjson.loads(value)
        event["ts"] = TS0_MS + int((event["ts"] - TS0_MS) * time_scale)
        out.append((key, orjson.dumps(event)))
    return out


def with_noise(events: list[tuple[bytes, bytes]], duplicates: float, seed: int) -> list[tuple[bytes, bytes]]:
    """Each event redelivered with probability `duplicates` a little later in its partition, and one
    bad message (not JSON, or an invalid event) per 500 events."""
    rng = random.Random(seed)
    out = list(events)
    for i, item in enumerate(events):
        if rng.random() < duplicates:
            out.insert(min(len(out), i + rng.randint(1, 400)), item)
    for j in range(0, len(out), 500):
        key = out[j][0]
        out.insert(j, (key, b"{not json" if j % 1000 == 0 else b'{"event_id": "x", "type": "play"}'))
    return out


def run(flow_messages: dict[str, dict[int, list[KafkaSourceMessage]]], redis_url: str,
        batch_size: int, profile: Path | None) -> tuple[float, float, int]:
    """The flow over those messages until every partition is drained; (CPU s, wall s, dead letters)."""
    from bytewax.testing import run_main

    import flows.dataflow as dataflow
    from flows.config import FlowConfig

    sinks: list[KeepSink] = []

    def source(_brokers: Any, topics: Sequence[str], **_kw: Any) -> ListSource:
        return ListSource(flow_messages.get(topics[0], {0: []}), batch_size)

    def sink(*_args: Any, **_kw: Any) -> KeepSink:
        sinks.append(KeepSink())
        return sinks[-1]

    dataflow.KafkaSource, dataflow.KafkaSink = source, sink  # type: ignore[assignment,misc]
    config = FlowConfig(brokers=["unused:9092"], redis_url=redis_url, namespace=NAMESPACE,
                        batch_size=batch_size)
    flow = dataflow.build_flow(config)
    profiler = cProfile.Profile() if profile else None
    times0, wall0 = _cpu(), time.perf_counter()
    if profiler:
        profiler.enable()
    run_main(flow)
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    return _cpu() - times0, time.perf_counter() - wall0, sum(len(s.kept) for s in sinks)


STEP_METHODS = (
    ("flows.user_state", "UserProfileLogic", "on_batch", "update_profile"),
    ("flows.user_state", "UserProfileLogic", "snapshot", "update_profile (snapshots)"),
    ("flows.track_state", "TrackStateLogic", "on_batch", "update_track_stats"),
    ("flows.track_state", "TrackStateLogic", "snapshot", "update_track_stats (snapshots)"),
    ("flows.artist_state", "ArtistMemoryLogic", "on_batch", "update_artist_memory"),
    ("flows.ranker_step", "RankerLogic", "on_batch", "learn_ranker"),
    ("flows.grouping", "Flattened", "on_batch", "learn_global"),
    ("flows.global_steps", "GlobalMergerLogic", "on_batch", "merge_global"),
    ("flows.experiment_state", "ExperimentLogic", "on_batch", "count_experiments"),
    ("flows.track_lookup", "TrackLookup", "attach", "attach_track"),
    ("flows.track_sinks", "_TrackStatsPartition", "write_batch", "write_track_stats"),
    ("flows.redis_sinks", "_ProfilePartition", "write_batch", "write_profiles"),
    ("flows.redis_io", "_PipelinePartition", "write_batch",
     "write_artist_memory, write_ranker, write_experiments"),
)
STEP_FUNCTIONS = (
    ("decode_event_batch", "decode_events"), ("refused_of", "invalid_messages"),
    ("is_replica_events", "split_replica_events"), ("track_signals_of", "track_signals"),
    ("artist_signals_of", "artist_signals"), ("ranker_examples_of", "ranker_examples"),
    ("experiment_signals_of", "experiment_signals"), ("_refused", "refused_events"),
)
"""What `--steps` times (by the names `flows.dataflow` gives the steps): the logics' and sinks'
methods, and the functions `build_flow` hands to Bytewax."""


def time_steps(cpu: dict[str, float]) -> None:
    """Wrap every step's Python entry point so that its CPU adds up in `cpu` (a few tenths of a µs
    per call of overhead; the rest of the flow's CPU is Bytewax and what it calls between steps)."""
    import functools
    import importlib

    import flows.dataflow as dataflow

    def timed(function: Any, label: str) -> Any:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            start = _cpu()
            try:
                return function(*args, **kwargs)
            finally:
                cpu[label] = cpu.get(label, 0.0) + _cpu() - start
        return call

    for module, cls, method, label in STEP_METHODS:
        owner = getattr(importlib.import_module(module), cls)
        setattr(owner, method, timed(getattr(owner, method), label))
    for name, label in STEP_FUNCTIONS:
        setattr(dataflow, name, timed(getattr(dataflow, name), label))


def _cpu() -> float:
    import os

    t = os.times()
    return t.user + t.system


def dump(client: Any, path: Path) -> str:
    """Every key's value (by type), sorted, to `path`; returns the file's SHA-256."""
    lines: list[bytes] = []
    for key in sorted(client.scan_iter(match=f"*{NAMESPACE}*", count=1000)):
        if any(w in key.decode(errors="replace") for w in WALL_KEYS):
            continue
        kind = client.type(key)
        if kind == b"string":
            value: Any = client.get(key)
        elif kind == b"hash":
            value = sorted(client.hgetall(key).items())
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = sorted(client.smembers(key))
        elif kind == b"stream":  # entry ids are wall-clock times: the fields only
            value = [fields for _id, fields in client.xrange(key)]
        else:
            value = kind
        lines.append(key + b" " + repr(value).encode())
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    import redis

    from encore.catalog_csv import iter_tracks_json, read_spotify_csv
    from encore.flow_main import tune_garbage_collector
    from encore.local import start_redis
    from encore.settings import Settings
    from schemas.topics import Topics

    parser = argparse.ArgumentParser(prog="python -m benchmarks.flow_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duplicates", type=float, default=0.0,
                        help="share of events redelivered (and one bad message per 500)")
    parser.add_argument("--batch-size", type=int, help="messages per partition poll (default: the settings')")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="event times this many times as far apart (e.g. 25000: about two months)")
    parser.add_argument("--steps", action="store_true", help="print the CPU of each step per event")
    parser.add_argument("--dump", type=Path, help="write every Redis value here afterwards")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured run here")
    args = parser.parse_args(argv)

    settings = Settings.from_env({})
    batch_size = args.batch_size or settings.flow_batch_size
    topics = Topics(NAMESPACE)
    tracks = read_spotify_csv(Path(__file__).parent.parent / "encore" / "data" / "spotify_sample.csv")
    workload = make_workload(args.events, args.users, tracks, args.seed, "cpu")
    events = workload.events
    if args.time_scale != 1.0:
        events = stretched(events, args.time_scale)
    if args.duplicates:
        events = with_noise(events, args.duplicates, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="encore-flowcpu-"))
    server, url = start_redis(workdir / "redis")
    try:
        client = redis.Redis.from_url(url)
        run({topics.tracks: partitioned(topics.tracks, iter_tracks_json(tracks))}, url, batch_size, None)
        messages = {topics.events: partitioned(topics.events, events, args.time_scale)}
        redis0 = _redis_cpu(client)
        steps: dict[str, float] = {}
        if args.steps:
            time_steps(steps)
        tune_garbage_collector()  # as `encore.flow_main` does before running
        cpu, wall, dead = run(messages, url, batch_size, args.profile)
        redis_s = _redis_cpu(client) - redis0
        print(f"events {len(events):,} ({args.events:,} distinct, {dead:,} dead letters); "
              f"flow CPU {cpu:.2f} s = {cpu / len(events) * 1e6:.1f} us/event; "
              f"wall {wall:.2f} s = {len(events) / wall:,.0f} events/s; redis CPU {redis_s:.2f} s")
        for label, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
            print(f"  {seconds / len(events) * 1e6:6.1f} us/event  {label}")
        if steps:
            print(f"  {(cpu - sum(steps.values())) / len(events) * 1e6:6.1f} us/event  the rest (Bytewax, "
                  "routing between steps, Redis reads)")
        if args.dump:
            print(f"dump {args.dump}: sha256 {dump(client, args.dump)}")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


if __name__ == "__main__":
    sys.exit(main())
