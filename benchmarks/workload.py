"""The synthetic listening workload the benchmarks share: Zipf-popular tracks, a fixed type mix,
sources and devices; produced to Kafka as fast as the broker acknowledges."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson
from confluent_kafka import Producer

from benchmarks.common import BenchError

TS0_MS = 1_795_000_000_000  # 2026-11-18, event time of the first benchmark event
EVENT_TYPES = ("play", "complete", "skip", "like", "dislike")


TYPE_MIX = (0.35, 0.30, 0.25, 0.07, 0.03)


ZIPF_EXPONENT = 1.1


SOURCES = ("home", "search", "playlist", "radio", "artist_page")


DEVICES = ("ios", "android", "web", "desktop", "speaker")


@dataclass
class Workload:
    users: list[str]  # user id by rank (0 = hottest)
    events: list[tuple[bytes, bytes]]  # (key, JSON value), in produce order
    expected: np.ndarray  # events per user, by rank
    type_counts: dict[str, int]


def power_law_ranks(rng: np.random.Generator, size: int, n: int, a: float) -> np.ndarray:
    """`size` draws of a rank in [0, n) with P(rank k) proportional to (k + 1) ** -a."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -a
    return rng.choice(n, size=size, p=weights / weights.sum())


def make_workload(n_events: int, n_users: int, tracks: Sequence, seed: int, run_id: str) -> Workload:
    rng = np.random.default_rng(seed)
    # Tracks ranked by popularity (ties in random order): the popular ones get most plays.
    tiebreak = rng.random(len(tracks))
    order = sorted(range(len(tracks)), key=lambda i: (-(tracks[i].popularity or 0.0), tiebreak[i]))
    track_ids = [tracks[i].track_id for i in order]
    durations = rng.integers(120_000, 360_000, size=len(track_ids))

    users = [f"u{rank:06d}" for rank in range(n_users)]
    user_rank = power_law_ranks(rng, n_events, n_users, ZIPF_EXPONENT)
    track_rank = power_law_ranks(rng, n_events, len(track_ids), ZIPF_EXPONENT)
    kinds = rng.choice(len(EVENT_TYPES), size=n_events, p=TYPE_MIX)
    progress = rng.random(n_events)
    ts = TS0_MS + np.cumsum(rng.integers(1, 20, size=n_events))
    source = rng.integers(0, len(SOURCES), size=n_events)
    device = rng.integers(0, len(DEVICES), size=n_events)

    events = []
    for i in range(n_events):
        user = users[user_rank[i]]
        kind = EVENT_TYPES[kinds[i]]
        duration = int(durations[track_rank[i]])
        event: dict[str, object] = {
            "event_id": f"{run_id}-{i}",
            "user_id": user,
            "track_id": track_ids[track_rank[i]],
            "type": kind,
            "ts": int(ts[i]),
            "session_id": f"{user}-s{int(ts[i]) // 3_600_000}",
            "context": {"source": SOURCES[source[i]], "device": DEVICES[device[i]]},
        }
        if kind == "complete":
            event["position_ms"], event["duration_ms"] = duration, duration
        elif kind == "play":
            event["position_ms"], event["duration_ms"] = int(duration * (0.3 + 0.6 * progress[i])), duration
        elif kind == "skip":  # most skips come early
            event["position_ms"], event["duration_ms"] = int(duration * progress[i] ** 2), duration
        events.append((user.encode(), orjson.dumps(event)))
    expected = np.bincount(user_rank, minlength=n_users)
    type_counts = {t: int(c) for t, c in zip(EVENT_TYPES, np.bincount(kinds, minlength=5), strict=True)}
    return Workload(users, events, expected, type_counts)


@dataclass
class ProduceReport:
    acked: int = 0
    failed: int = 0
    last_per_partition: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # p -> (offset, key)
    seconds: float = 0.0


def produce_all(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> ProduceReport:
    report = ProduceReport()
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
        "queue.buffering.max.messages": 200_000, "batch.num.messages": 10_000,
    })

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            report.failed += 1
            return
        report.acked += 1
        partition, offset = msg.partition(), msg.offset()  # type: ignore[attr-defined]
        held = report.last_per_partition.get(partition)
        if held is None or offset > held[0]:
            report.last_per_partition[partition] = (offset, msg.key())  # type: ignore[attr-defined]

    started = time.perf_counter()
    for i, (key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    report.seconds = time.perf_counter() - started
    if remaining or report.failed:
        raise BenchError(f"{report.failed} events failed and {remaining} were not acknowledged")
    return report


