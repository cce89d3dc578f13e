"""Dedupe over an event-time horizon (flows/dedupe.py): exact ids in expiring buckets, bounded."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.dedupe import DAY_MS, HOUR_MS, DedupeConfig, EventDedupe, Verdict, event_id_hash

T0 = 1_795_000_000_000


def test_a_repeat_days_later_and_thousands_of_events_on_is_a_duplicate() -> None:
    dedupe = EventDedupe()
    assert dedupe.seen("first", T0) is Verdict.NEW
    for i in range(5_000):  # far beyond any count window
        assert dedupe.seen(f"e{i}", T0 + i * 60_000) is Verdict.NEW
    assert dedupe.seen("first", T0) is Verdict.DUPLICATE
    assert dedupe.seen("e17", T0 + 17 * 60_000) is Verdict.DUPLICATE
    assert len(dedupe) == 5_001


def test_an_event_older_than_the_horizon_before_the_newest_is_too_late_even_if_new() -> None:
    dedupe = EventDedupe(DedupeConfig(horizon_ms=7 * DAY_MS))
    dedupe.seen("a", T0)
    dedupe.seen("b", T0 + 7 * DAY_MS)
    assert dedupe.cutoff_ms() == T0
    assert dedupe.seen("a", T0) is Verdict.DUPLICATE, "exactly at the horizon: still remembered"
    assert dedupe.seen("c", T0 - 1) is Verdict.TOO_LATE
    assert dedupe.seen("a-copy", T0 + 1) is Verdict.NEW
    # Too late is not remembered: it was not accepted.
    assert dedupe.check(event_id_hash("c"), T0 + DAY_MS) is Verdict.NEW


def test_buckets_expire_relative_to_the_newest_event_and_memory_stays_bounded() -> None:
    config = DedupeConfig(horizon_ms=7 * DAY_MS, buckets=7)
    dedupe = EventDedupe(config)
    per_day = 300
    for day in range(60):
        for i in range(per_day):
            assert dedupe.seen(f"d{day}-{i}", T0 + day * DAY_MS + i * 60_000) is Verdict.NEW
        # Never more than the horizon's days plus the bucket being filled and one partly expired.
        assert len(dedupe) <= (7 + 2) * per_day
    assert len(dedupe) >= 7 * per_day
    assert dedupe.memory_bytes() < 9 * per_day * 70


def test_a_full_memory_drops_its_oldest_bucket_and_raises_the_floor() -> None:
    config = DedupeConfig(horizon_ms=7 * DAY_MS, buckets=7, max_ids=100)
    dedupe = EventDedupe(config)
    for i in range(60):
        dedupe.seen(f"a{i}", T0 + i)  # day 0
    for i in range(60):
        dedupe.seen(f"b{i}", T0 + DAY_MS + i)  # day 1: 120 ids > 100, day 0 goes
    assert len(dedupe) == 60
    assert dedupe.floor_ms == (T0 // DAY_MS + 1) * DAY_MS
    assert dedupe.seen("a0", T0) is Verdict.TOO_LATE, "never applied twice: refused instead"
    assert dedupe.seen("b0", T0 + DAY_MS) is Verdict.DUPLICATE
    # The newest bucket alone at the cap: nothing older to let go, so new events are refused.
    for i in range(60, 100):
        dedupe.seen(f"b{i}", T0 + DAY_MS + i)
    assert dedupe.seen("b-more", T0 + DAY_MS + 200) is Verdict.FULL
    assert dedupe.seen("c0", T0 + 2 * DAY_MS) is Verdict.NEW, "a newer bucket lets the oldest go"
    assert len(dedupe) <= 100


def test_the_state_round_trips_exactly_and_continues_alike() -> None:
    rng = random.Random(4)
    a = EventDedupe()
    ids = [f"x{i}" for i in range(3_000)]
    for i, event_id in enumerate(ids):
        a.seen(event_id, T0 + i * 300_000 - rng.randrange(0, 3 * HOUR_MS))
    b = EventDedupe.from_bytes(a.to_bytes())
    assert b == a and len(b) == len(a) and b.newest_ms == a.newest_ms
    probes = [(rng.choice([*ids, "new1", "new2"]), T0 + rng.randrange(0, 3_000) * 300_000)
              for _ in range(500)]
    assert [a.seen(e, t) for e, t in probes] == [b.seen(e, t) for e, t in probes]
    assert a.to_bytes() == b.to_bytes()


def test_a_changed_horizon_keeps_every_id_at_least_as_long() -> None:
    old = EventDedupe(DedupeConfig(horizon_ms=7 * DAY_MS, buckets=7))
    for i in range(48):
        old.seen(f"h{i}", T0 + i * HOUR_MS)
    new = EventDedupe.from_bytes(old.to_bytes(), DedupeConfig(horizon_ms=2 * DAY_MS, buckets=8))
    assert len(new) == 48
    assert all(new.seen(f"h{i}", T0 + i * HOUR_MS) is Verdict.DUPLICATE for i in range(48))


def test_old_snapshot_ids_seed_the_dedupe() -> None:
    hashes = [event_id_hash(f"old{i}") for i in range(24)]
    dedupe = EventDedupe.from_hashes(hashes, T0)
    assert dedupe.seen("old3", T0 + HOUR_MS) is Verdict.DUPLICATE and len(dedupe) == 24


def test_event_id_hash_is_stable_64_bit() -> None:
    import hashlib

    assert 0 <= event_id_hash("e1") < 2**64
    assert event_id_hash("e1") == int.from_bytes(hashlib.blake2b(b"e1", digest_size=8).digest(), "little")


def test_a_bad_config_is_refused() -> None:
    with pytest.raises(ValueError):
        DedupeConfig(horizon_ms=0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30 * 24)), min_size=1, max_size=120),
       st.integers(1, 10), st.sampled_from([6 * HOUR_MS, DAY_MS, 3 * DAY_MS]))
def test_against_an_exact_reference_no_false_duplicate_and_no_repeat_within_the_horizon(
    events: list[tuple[int, int]], buckets: int, horizon_ms: int
) -> None:
    """Reference: every accepted (id, time) kept forever. The dedupe must answer TOO_LATE exactly
    when the time is before the cutoff, DUPLICATE only for an id accepted before, and never NEW for
    an id accepted before whose original time is not before the cutoff."""
    dedupe = EventDedupe(DedupeConfig(horizon_ms=horizon_ms, buckets=buckets))
    accepted: dict[str, int] = {}
    newest = None
    for n, hour in events:
        event_id, ts = f"id{n}", T0 + hour * HOUR_MS
        cutoff = newest - horizon_ms if newest is not None else None
        verdict = dedupe.seen(event_id, ts)
        if cutoff is not None and ts < cutoff:
            assert verdict is Verdict.TOO_LATE
            continue
        if verdict is Verdict.DUPLICATE:
            assert event_id in accepted, "a false duplicate"
            continue
        assert verdict is Verdict.NEW
        if event_id in accepted and cutoff is not None:
            assert accepted[event_id] < cutoff, "a repeat within the horizon was accepted again"
        accepted[event_id] = ts
        newest = ts if newest is None else max(newest, ts)
