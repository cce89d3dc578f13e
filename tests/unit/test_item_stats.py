"""Per-track statistics: online_models/item_stats.py."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.item_stats import (
    COUNTERS,
    RATE_PRIORS,
    ItemStats,
    ItemStatsTable,
    coalesce,
    contributions,
    top_trending,
    top_trending_by_genre,
)
from schemas.events import Event

T0 = 1_795_248_000_000
HOUR = 3_600_000
DAY = 24 * HOUR


def ev(i: int, type_: str, ts: int, track_id: str = "t", **fields) -> Event:
    return Event(event_id=f"e{i}", user_id=f"u{i % 13}", track_id=track_id, type=type_, ts=ts, **fields)


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["play", "skip", "like", "dislike", "complete"]),
        st.integers(0, 400 * DAY),  # long enough to cross the 6-hour counter's 16-day eras
        st.sampled_from(["a", "b", "c"]),
        st.one_of(st.none(), st.integers(0, 200_000)),
    ),
    min_size=1,
    max_size=80,
)


def build(items) -> list[Event]:
    return [
        ev(i, type_, T0 + offset, track, position_ms=pos, duration_ms=200_000 if pos is not None else None)
        for i, (type_, offset, track, pos) in enumerate(items)
    ]


def assert_same(a: ItemStatsTable, b: ItemStatsTable, at: int) -> None:
    assert sorted(a) == sorted(b)
    for track_id in a:
        sa, sb = a[track_id].summary(at), b[track_id].summary(at)
        for name in sa:
            assert sa[name] == pytest.approx(sb[name], rel=1e-9, abs=1e-12), (track_id, name)


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.randoms(), st.integers(0, 80))
def test_order_and_worker_split_do_not_change_the_statistics(items, rnd, cut) -> None:
    """Commutative: shuffled, split across two workers and merged, the sums are the same."""
    events = build(items)
    at = max(e.ts for e in events)
    in_order = ItemStatsTable()
    for e in events:
        in_order.learn_one(e)

    shuffled = events[:]
    rnd.shuffle(shuffled)
    worker_a, worker_b = ItemStatsTable(), ItemStatsTable()
    for e in shuffled[:cut]:
        worker_a.learn_one(e)
    for e in shuffled[cut:]:
        worker_b.learn_one(e)
    summed = ItemStatsTable()
    summed.merge(worker_b)
    summed.merge(worker_a)
    assert_same(in_order, summed, at)
    assert_same(in_order, summed, at + 3 * DAY)

    # The same through coalesced batch increments and the Redis-hash form.
    batched = ItemStatsTable()
    for track_id in in_order:
        totals = coalesce(c for e in shuffled if e.track_id == track_id for c in contributions(e))
        stats = batched.setdefault(track_id, ItemStats())
        for (name, era), value in totals.items():
            stats.add(name, era, value)
    assert_same(in_order, batched, at)
    restored = ItemStatsTable({t: ItemStats.from_fields(s.to_fields()) for t, s in in_order.items()})
    assert_same(in_order, restored, at)


@settings(max_examples=100, deadline=None)
@given(events_strategy)
def test_counts_are_the_direct_decayed_sums(items) -> None:
    events = [e for e in build(items) if e.track_id == "a"] or build(items)[:1]
    track_id = events[0].track_id
    stats = ItemStats()
    for e in events:
        if e.track_id == track_id:
            stats.learn_one(e)
    at = max(e.ts for e in events)
    half_life = COUNTERS["likes"].half_life_ms
    expected = math.fsum(2.0 ** (-(at - e.ts) / half_life) for e in events
                         if e.type == "like" and e.track_id == track_id)
    # Likes older than one 448-day era behind would be dropped (< 2^-64); none are here.
    assert stats.value("likes", at) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_week_halves_the_counts() -> None:
    stats = ItemStats()
    stats.learn_one(ev(1, "like", T0))
    assert stats.value("likes", T0) == pytest.approx(1.0)
    assert stats.value("likes", T0 + 7 * DAY) == pytest.approx(0.5)
    assert stats.value("heat_short", T0 + 6 * HOUR) == pytest.approx(0.5)
    assert stats.value("plays", T0) == 0.0


def test_rates_start_at_the_priors_and_follow_the_data() -> None:
    empty = ItemStats()
    assert empty.like_rate(T0) == pytest.approx(RATE_PRIORS.like_rate)
    assert empty.skip_rate(T0) == pytest.approx(RATE_PRIORS.skip_rate)
    stats = ItemStats()
    for i in range(200):
        stats.learn_one(ev(i, "complete" if i % 4 else "skip", T0 + i * 1000))
        if i % 2:
            stats.learn_one(ev(1000 + i, "like", T0 + i * 1000))
    at = T0 + 200_000
    assert stats.skip_rate(at) == pytest.approx(0.25, abs=0.02)
    assert stats.like_rate(at) == pytest.approx(0.5, abs=0.03)
    # Five pseudo-listens: one skip out of one listen does not make a 100 % skip rate.
    one = ItemStats()
    one.learn_one(ev(1, "skip", T0))
    assert one.skip_rate(T0) == pytest.approx((1 + 5 * 0.3) / (1 + 5))


def test_a_play_then_an_outcome_counts_one_listen() -> None:
    stats = ItemStats()
    stats.learn_one(ev(1, "play", T0))
    stats.learn_one(ev(2, "complete", T0 + 1))
    assert stats.listens(T0 + 1) == pytest.approx(1.0, abs=1e-6)


def test_trending_is_zero_for_a_steady_hit_positive_rising_negative_fading() -> None:
    steady, rising, fading = ItemStats(), ItemStats(), ItemStats()
    end = T0 + 60 * DAY
    for minute in range(0, 60 * 24 * 60, 10):  # 60 days, a like every 10 minutes
        steady.learn_one(ev(minute, "like", T0 + minute * 60_000))
        if minute < 50 * 24 * 60:
            fading.learn_one(ev(minute, "like", T0 + minute * 60_000))
    for minute in range(0, 6 * 60, 2):  # the last six hours, a like every 2 minutes
        rising.learn_one(ev(minute, "like", end - minute * 60_000))
    assert steady.velocity(end) == pytest.approx(6.0, rel=0.05)  # six likes an hour
    assert abs(steady.trending(end)) < 0.1
    assert rising.trending(end) > 10
    assert fading.trending(end) < -0.5


def test_top_trending_overall_and_per_genre() -> None:
    table = ItemStatsTable()
    now = T0 + 30 * DAY
    for i in range(10):
        table.learn_one(ev(i, "like", now - i * 60_000, track_id="hot"))
    for i in range(4):
        table.learn_one(ev(100 + i, "like", now - i * 60_000, track_id="warm"))
        table.learn_one(ev(200 + i, "like", now - i * 60_000, track_id="warm2"))
    table.learn_one(ev(300, "like", T0, track_id="old"))
    table.learn_one(ev(301, "skip", now, track_id="skipped"))
    top = top_trending(table, now, k=3)
    assert [t for t, _ in top] == ["hot", "warm", "warm2"]  # ties by track id
    assert top[0][1] > top[1][1] == top[2][1] > 0
    assert all(t not in ("old", "skipped") for t, _ in top_trending(table, now, k=10))
    genres = {"hot": ["pop"], "warm": ["rock", "pop"], "warm2": ["rock"], "old": ["rock"]}
    by_genre = top_trending_by_genre(table, genres, now, k=1)
    assert {g: [t for t, _ in items] for g, items in by_genre.items()} == {"pop": ["hot"], "rock": ["warm"]}
    assert top_trending_by_genre(table, genres.get, now, k=1) == by_genre
    assert top_trending(table, now, k=0) == []


def test_fields_ignore_unknown_and_accept_bytes() -> None:
    stats = ItemStats()
    stats.learn_one(ev(1, "like", T0))
    fields = {k.encode(): str(v).encode() for k, v in stats.to_fields().items()}
    fields[b"other"] = b"1"
    fields[b"likes@x"] = b"1"
    assert ItemStats.from_fields(fields) == stats
