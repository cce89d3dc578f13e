"""Paced event producer for `benchmarks.serve_bench`: the ingest load, in its own process.

    python -m benchmarks.serve_ingest PLAN.json RESULT.json

Produces events to the events topic at a fixed rate (a slice every 5 ms, librdkafka batching with
`linger.ms=5`, `acks=all`), for a fixed time or until SIGTERM, then writes what it achieved: events
acknowledged, failed, and the rate over the time it ran. Being its own process keeps its CPU out of
the orchestrator and the load generator, and visible.

The events are those of `benchmarks.flow_bench` (the same type mix and power laws over users and
tracks), built before the clock starts by `make_events`, which the warm-up history uses too.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from benchmarks.workload import DEVICES, EVENT_TYPES, SOURCES, TYPE_MIX, ZIPF_EXPONENT, power_law_ranks

SLICE_S = 0.005


def make_events(n_events: int, users: Sequence[str], track_ids: Sequence[str], seed: int, run_id: str,
                ts0_ms: int, per_user_floor: int = 0) -> list[tuple[bytes, bytes]]:
    """`n_events` events as (key, JSON value): users and tracks from power laws by rank (tracks given
    most popular first), the type mix of `benchmarks.flow_bench`, event times 1 ms apart from
    `ts0_ms`, unique ids. With `per_user_floor`, every user first gets that many events (so each has
    a profile), in shuffled order, and the power law draws the rest."""
    rng = np.random.default_rng(seed)
    floor = np.repeat(np.arange(len(users)), per_user_floor)
    drawn = power_law_ranks(rng, max(0, n_events - len(floor)), len(users), ZIPF_EXPONENT)
    user_rank = np.concatenate([floor, drawn]).astype(np.int64)
    rng.shuffle(user_rank)
    n = len(user_rank)
    track_rank = power_law_ranks(rng, n, len(track_ids), ZIPF_EXPONENT)
    kinds = rng.choice(len(EVENT_TYPES), size=n, p=TYPE_MIX)
    progress = rng.random(n)
    durations = rng.integers(120_000, 360_000, size=n)
    source = rng.integers(0, len(SOURCES), size=n)
    device = rng.integers(0, len(DEVICES), size=n)
    events = []
    for i in range(n):
        user = users[user_rank[i]]
        kind = EVENT_TYPES[kinds[i]]
        duration = int(durations[i])
        event: dict[str, object] = {
            "event_id": f"{run_id}-{i}", "user_id": user, "track_id": track_ids[track_rank[i]],
            "type": kind, "ts": ts0_ms + i,
            "context": {"source": SOURCES[source[i]], "device": DEVICES[device[i]]},
        }
        if kind == "complete":
            event["position_ms"], event["duration_ms"] = duration, duration
        elif kind == "play":
            event["position_ms"], event["duration_ms"] = int(duration * (0.3 + 0.6 * progress[i])), duration
        elif kind == "skip":
            event["position_ms"], event["duration_ms"] = int(duration * progress[i] ** 2), duration
        # A copy of exactly its size: orjson hands back bytes with kilobytes of spare capacity.
        events.append((user.encode(), memoryview(orjson.dumps(event)).tobytes()))
    return events


class _Stop:
    requested = False


def run(plan: dict[str, Any]) -> dict[str, Any]:
    from confluent_kafka import Producer

    rate, duration = float(plan["rate"]), float(plan["duration_s"])
    events = make_events(int(rate * duration), plan["users"], plan["track_ids"], int(plan["seed"]),
                         plan["run_id"], int(plan["ts0_ms"]))
    producer = Producer({"bootstrap.servers": plan["bootstrap"], "acks": "all", "linger.ms": 5,
                         "queue.buffering.max.messages": 500_000})
    acked, failed = [0], [0]

    def on_delivery(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1
        else:
            failed[0] += 1

    stop = _Stop()
    signal.signal(signal.SIGTERM, lambda *_: setattr(stop, "requested", True))
    topic = plan["topic"]
    ready = plan.get("ready_file")
    if ready:
        open(ready, "wb").close()  # events built: the clock starts now
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    sent = 0
    behind_max = 0
    while sent < len(events) and not stop.requested:
        due = min(len(events), int((time.perf_counter() - t0) * rate))
        behind_max = max(behind_max, due - sent)
        while sent < due:
            key, value = events[sent]
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            except BufferError:  # the local queue is full: let librdkafka send, then retry
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(SLICE_S)
    span = time.perf_counter() - t0
    remaining = producer.flush(30)
    return {"pid": os.getpid(), "sent": sent, "acked": acked[0], "failed": failed[0], "unflushed": remaining,
            "seconds": span, "rate": acked[0] / span if span > 0 else 0.0, "target_rate": rate,
            "cpu_s": time.process_time() - cpu0, "max_behind": behind_max}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks.serve_ingest PLAN.json RESULT.json", file=sys.stderr)
        return 2
    with open(args[0], "rb") as handle:
        plan = orjson.loads(handle.read())
    result = run(plan)
    tmp = args[1] + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(orjson.dumps(result))
    os.replace(tmp, args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
