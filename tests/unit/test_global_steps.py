"""The global model's flow steps: flows/global_steps.py (replicas, merger) and flows/global_priors.py."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from flows.global_priors import GlobalPriorReader
from flows.global_steps import (
    GlobalMergerLogic,
    GlobalReplicaLogic,
    ReplicaRecord,
    event_period,
    key_by_partition,
)
from flows.progress import Position
from online_models.global_model import GLOBAL_PERIOD_MS, GlobalModel, merge_records, period_of
from schemas.events import Event
from schemas.keys import KeyLayout
from schemas.tracks import Track

CATALOG = read_spotify_csv(DEFAULT_SAMPLE)
P0 = 1_995_000  # a period number; its events lie in 2026
T0 = P0 * GLOBAL_PERIOD_MS

Item = tuple[Event, Track | None, Position]


def events(n: int, partition: int, seed: int, start: int = T0, gap_ms: int = 60_000) -> list[Item]:
    """A partition's events, `gap_ms` apart: likes of loud tracks, dislikes of quiet ones."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = rng.choice(CATALOG)
        ts = start + i * gap_ms
        kind = "like" if (t.energy or 0) > 0.6 else "dislike"
        event = Event(event_id=f"{partition}-{i}", user_id=f"u{rng.randrange(20)}", track_id=t.track_id,
                      type=kind, ts=ts)
        out.append((event, t, Position("events", partition, i, ts + 50)))
    return out


def run_replica(items: list[Item], batch: int = 7) -> tuple[GlobalReplicaLogic, list[ReplicaRecord]]:
    logic = GlobalReplicaLogic(None)
    out: list[ReplicaRecord] = []
    for i in range(0, len(items), batch):
        emitted, retain = logic.on_batch(items[i : i + batch])
        assert retain is False
        out.extend(emitted)
    return logic, out


def test_events_are_keyed_by_their_source_partition() -> None:
    item = events(1, partition=3, seed=0)[0]
    assert key_by_partition(("u7", item)) == ("p3", item)


def test_a_replica_emits_its_record_when_it_first_sees_a_later_period() -> None:
    items = events(60, partition=0, seed=1)  # one per minute: four 15-minute periods
    _, records = run_replica(items)
    assert [r.period for r in records] == [P0, P0 + 1, P0 + 2]
    assert [r.reached for r in records] == [P0 + 1, P0 + 2, P0 + 3]
    # Each record is the replica exactly as it stood after the last event of its period.
    reference = GlobalModel()
    for k, record in enumerate(records):
        for event, track, _ in items[15 * k : 15 * (k + 1)]:
            reference.learn_event(event, track)
        assert GlobalModel.from_record(record.record) == reference
    assert GlobalModel.from_record(records[-1].record).n_seen == 45


def test_a_gap_in_event_time_closes_the_last_active_period_once() -> None:
    items = events(4, partition=0, seed=2) + events(2, partition=0, seed=3, start=T0 + 10 * GLOBAL_PERIOD_MS)
    _, records = run_replica(items, batch=2)
    assert [(r.period, r.reached) for r in records] == [(P0, P0 + 10)]


def test_an_event_stamped_after_its_broker_time_counts_in_the_broker_period() -> None:
    event, _, position = events(1, partition=0, seed=4)[0]
    late_stamp = event.model_copy(update={"ts": event.ts + 5 * GLOBAL_PERIOD_MS})
    assert event_period(late_stamp, position) == period_of(position.broker_ts_ms)


def test_a_resumed_replica_continues_bit_for_bit() -> None:
    items = events(50, partition=1, seed=5)
    whole, expected = run_replica(items)
    first = GlobalReplicaLogic(None)
    out = list(first.on_batch(items[:23])[0])
    resumed = GlobalReplicaLogic(first.snapshot())
    out += list(resumed.on_batch(items[23:])[0])
    assert out == expected
    assert resumed.snapshot() == whole.snapshot()


def record(replica_seed: int, period: int, n: int = 20) -> ReplicaRecord:
    model = GlobalModel()
    for event, track, _ in events(n, partition=replica_seed, seed=replica_seed * 100 + period):
        model.learn_event(event, track)
    return ReplicaRecord(period, period + 1, model.to_record())


def test_the_merger_waits_for_every_known_replica_then_publishes_the_merge() -> None:
    merger = GlobalMergerLogic(None)
    a, b = record(1, P0), record(2, P0)
    out, retain = merger.on_batch([("p0", a), ("p1", ReplicaRecord(P0 - 1, P0, b.record))])
    assert retain is False
    # p1 is still in period P0: only P0 − 1 is complete (both replicas passed it).
    assert [pub.period for pub in out] == [P0 - 1]
    assert out[0].records == {"p1": b.record}
    out, _ = merger.on_batch([("p1", record(2, P0))])
    assert [pub.period for pub in out] == [P0]
    assert set(out[0].records) == {"p0", "p1"}
    assert out[0].weights == merge_records(out[0].records).to_bytes()
    assert len(out[0].weights) == 312
    assert merger.on_batch([("p1", record(2, P0))])[0] == []  # a replayed record: already published


def test_a_lagging_replica_does_not_hold_the_model_back() -> None:
    merger = GlobalMergerLogic(None)
    merger.on_batch([("p1", ReplicaRecord(P0 - 1, P0, record(2, P0 - 1).record))])  # p1 stays in P0
    ahead = ReplicaRecord(P0 + 1, P0 + 2, record(1, P0 + 1).record)
    out, _ = merger.on_batch([("p0", record(1, P0)), ("p0", ahead)])
    # p0 reached P0 + 2: P0 is published without waiting for p1, with p1's newest record before it.
    assert [pub.period for pub in out] == [P0]
    assert out[0].records == {"p0": record(1, P0).record, "p1": record(2, P0 - 1).record}
    # p1 catches up: its newer records count in the next period published, nothing is lost.
    caught_up = ReplicaRecord(P0 + 1, P0 + 2, record(2, P0 + 1).record)
    out, _ = merger.on_batch([("p1", record(2, P0)), ("p1", caught_up)])
    assert [pub.period for pub in out] == [P0 + 1]
    assert out[0].records == {"p0": ahead.record, "p1": caught_up.record}


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 4))
def test_the_merger_publishes_the_same_bytes_in_any_record_order(rnd, batch) -> None:
    records = [(f"p{k}", ReplicaRecord(P0 + j, P0 + j + 1, record(k, P0 + j).record))
               for k in range(3) for j in range(3)]
    # Every replica is known (it closed a first period) before the interleaving starts.
    known = [(f"p{k}", ReplicaRecord(P0 - 1, P0, record(k, P0 - 1).record)) for k in range(3)]

    def publish(order: list[tuple[str, ReplicaRecord]]) -> dict[int, bytes]:
        merger = GlobalMergerLogic(None)
        merger.on_batch(known)
        published: dict[int, bytes] = {}
        for i in range(0, len(order), batch):
            for pub in merger.on_batch(order[i : i + batch])[0]:
                published[pub.period] = pub.weights
        return published

    # In a flow, one replica's records arrive in its period order; replicas interleave at random.
    queues = {f"p{k}": [r for r in records if r[0] == f"p{k}"] for k in range(3)}
    shuffled = []
    while any(queues.values()):
        replica = rnd.choice([k for k, q in queues.items() if q])
        shuffled.append(queues[replica].pop(0))
    in_order = publish(sorted(records, key=lambda r: (r[1].period, r[0])))
    assert set(in_order) == {P0, P0 + 1, P0 + 2}
    # A period whose every replica reported is the same bytes in any order (an earlier one may have
    # been published, by the lag rule, before a slow replica's record of it arrived).
    assert publish(shuffled)[P0 + 2] == in_order[P0 + 2]


def test_the_merger_resumes_from_its_snapshot() -> None:
    merger = GlobalMergerLogic(None)
    merger.on_batch([("p0", record(1, P0)), ("p1", ReplicaRecord(P0 - 1, P0, record(2, P0 - 1).record))])
    resumed = GlobalMergerLogic(merger.snapshot())
    step = [("p1", record(2, P0))]
    assert resumed.on_batch(step)[0] == merger.on_batch(step)[0]


def test_merger_keeps_only_what_later_periods_need() -> None:
    merger = GlobalMergerLogic(None)
    for j in range(10):
        merger.on_batch([("p0", ReplicaRecord(P0 + j, P0 + j + 1, record(1, P0 + j, n=2).record))])
    assert list(merger.state.history["p0"]) == [P0 + 9]


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])


class FakeStore:
    """The two reads `GlobalPriorReader` makes (GET latest, MGET models), over a dict; counts MGETs."""

    def __init__(self, keys: KeyLayout) -> None:
        self.keys: KeyLayout = keys
        self.data: dict[str, bytes] = {}
        self.mgets = 0

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def mget(self, keys: list[str]) -> list[bytes | None]:
        self.mgets += 1
        return [self.data.get(k) for k in keys]

    def publish(self, period: int, value: float) -> None:
        model = GlobalModel()
        model.set_weights([value] * len(model.weights))
        self.data[self.keys.global_model(period)] = model.to_bytes()
        self.data[self.keys.global_model_latest] = str(period).encode()


def test_the_prior_reader_gives_the_newest_published_model_two_periods_back() -> None:
    store = FakeStore(KeyLayout("t"))
    reader = GlobalPriorReader(store, store.keys, refresh_s=3600)  # type: ignore[arg-type]
    assert reader(T0) is None  # nothing published
    # Published since the last check: a prior period newer than the latest known re-checks at once.
    store.publish(P0 - 40, 1.0)  # sparse: nothing between P0 − 40 and P0 − 3
    store.publish(P0 - 3, 2.0)
    store.publish(P0 + 5, 3.0)
    period, model = reader(T0 + 60_000)  # prior period P0 − 2
    assert period == P0 - 3 and model.weights[0] == 2.0
    period, model = reader(T0 - 3 * GLOBAL_PERIOD_MS)  # prior period P0 − 5: looks further back
    assert period == P0 - 40 and model.weights[0] == 1.0
    assert reader(T0 - 50 * GLOBAL_PERIOD_MS) is None  # older than anything published
    assert reader(T0 + 100 * GLOBAL_PERIOD_MS)[0] == P0 + 5  # nothing newer than `latest`
    reads = store.mgets
    assert reader(T0 + 60_000)[0] == P0 - 3  # answered from the cache
    assert store.mgets == reads
