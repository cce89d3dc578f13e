"""The track-keyed step of the flow: flows/track_state.py (item statistics + co-listening row)."""

from __future__ import annotations

import pickle
import random

import pytest

from flows.track_sinks import rates_value
from flows.track_state import (
    PAIR_DECAY,
    TrackSignal,
    TrackSignals,
    TrackStateLogic,
    TrackWrite,
    top_neighbours,
)
from online_models.co_listening import CoListeningStore, ListeningWindow, PairIncrement
from online_models.item_stats import ItemStats
from schemas.events import Event
from schemas.keys import NEIGHBOURS_KEPT
from schemas.tracks import Track

T0 = 1_795_248_000_000
HOUR = 3_600_000


def events(n: int, tracks: int, users: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    out, ts = [], T0
    for i in range(n):
        ts += rng.randrange(1_000, 120_000)
        kind = rng.choices(["play", "complete", "like", "skip", "dislike"], [3, 3, 1, 2, 1])[0]
        out.append(Event(event_id=f"e{i}", user_id=f"u{rng.randrange(users)}",
                         track_id=f"t{min(int(rng.paretovariate(0.7)), tracks) - 1:03d}", type=kind, ts=ts))
    return out


def genres_of(track_id: str) -> Track:
    return Track(track_id=track_id, genres=["rock" if int(track_id[1:]) % 2 else "jazz", "indie"])


def user_batches(stream: list[Event], batch: int) -> list[list[tuple[str, TrackSignal]]]:
    """What the per-user step emits: per user and batch of `batch` events, signals summed per track."""
    windows: dict[str, ListeningWindow] = {}
    out = []
    for at in range(0, len(stream), batch):
        by_user: dict[str, TrackSignals] = {}
        for event in stream[at : at + batch]:
            signals = by_user.setdefault(event.user_id, TrackSignals())
            pairs = windows.setdefault(event.user_id, ListeningWindow()).learn_one(event)
            if pairs:
                signals.add_pairs(pairs)
            signals.add_event(event, genres_of(event.track_id))
        out.extend(s.keyed() for s in by_user.values())
    return out


def route(emitted: list[list[tuple[str, TrackSignal]]], per_batch: int
          ) -> list[dict[str, list[TrackSignal]]]:
    """Group user outputs into track-step batches: `per_batch` user outputs at a time, by track."""
    out = []
    for at in range(0, len(emitted), per_batch):
        grouped: dict[str, list[TrackSignal]] = {}
        for keyed in emitted[at : at + per_batch]:
            for track_id, signal in keyed:
                grouped.setdefault(track_id, []).append(signal)
        out.append(grouped)
    return out


def run_tracks(batches: list[dict[str, list[TrackSignal]]], crash_every: int = 0
               ) -> tuple[dict[str, TrackStateLogic], dict[str, TrackWrite], dict[str, list]]:
    """Drive one logic per track like Bytewax does; optionally resume every logic from its snapshot."""
    logics: dict[str, TrackStateLogic] = {}
    last: dict[str, TrackWrite] = {}
    rows: dict[str, list] = {}
    for n, grouped in enumerate(batches, 1):
        for track_id, values in grouped.items():
            logic = logics.setdefault(track_id, TrackStateLogic(None))
            (write,), discard = logic.on_batch(values)
            assert discard is False
            last[track_id] = write
            if write.neighbours is not None:
                rows[track_id] = write.neighbours
        if crash_every and n % crash_every == 0:
            logics = {t: TrackStateLogic(logic.snapshot()) for t, logic in logics.items()}
    return logics, last, rows


def reference(stream: list[Event]) -> tuple[dict[str, ItemStats], CoListeningStore]:
    stats: dict[str, ItemStats] = {}
    store = CoListeningStore()
    windows: dict[str, ListeningWindow] = {}
    for event in stream:
        stats.setdefault(event.track_id, ItemStats()).learn_one(event)
        store.learn_many(windows.setdefault(event.user_id, ListeningWindow()).learn_one(event))
    return stats, store


def test_each_write_is_the_tracks_full_state_equal_to_learning_event_by_event() -> None:
    stream = events(3_000, tracks=80, users=12, seed=1)
    _, last, _ = run_tracks(route(user_batches(stream, 50), per_batch=7))
    stats, _ = reference(stream)
    assert last.keys() == stats.keys()
    for track_id, expected in stats.items():
        write = last[track_id]
        got = ItemStats.from_fields(write.fields)
        assert got.sums.keys() == expected.sums.keys()
        for counter, eras in expected.sums.items():
            assert got.sums[counter].keys() == eras.keys()
            for era, value in eras.items():
                assert got.sums[counter][era] == pytest.approx(value, rel=1e-12)
        at = max(e.ts for e in stream if e.track_id == track_id)
        assert write.at_ms == at
        assert write.trending == pytest.approx(expected.trending(at), rel=1e-9, abs=1e-12)
        assert write.like_rate == pytest.approx(expected.like_rate(at), rel=1e-12)
        assert write.skip_rate == pytest.approx(expected.skip_rate(at), rel=1e-12)
        assert write.listens == pytest.approx(expected.listens(at), rel=1e-12)
        assert write.genres == tuple(genres_of(track_id).genres)
        assert rates_value(write).count(",") == 2


def test_the_row_written_is_the_top_n_of_the_co_listening_store() -> None:
    stream = events(6_000, tracks=150, users=10, seed=2)
    _, _, rows = run_tracks(route(user_batches(stream, 40), per_batch=5))
    _, store = reference(stream)
    assert rows.keys() == store.rows.keys()
    full = [t for t in rows if len(store.rows[t]) > NEIGHBOURS_KEPT]
    assert full, "the stream should give some track more neighbours than are kept"
    for track_id, written in rows.items():
        expected = store.neighbours(track_id, NEIGHBOURS_KEPT)
        assert len(written) == min(NEIGHBOURS_KEPT, len(store.rows[track_id]))
        counts = dict(expected)
        # Summed per batch rather than one by one: equal up to float rounding, so compare the
        # counts, and the order wherever it is not a near-tie.
        assert {n for n, _ in written} == {n for n, _ in expected} or _near_tie_at_cut(store, track_id)
        for neighbour, count in written:
            if neighbour in counts:
                assert count == pytest.approx(counts[neighbour], rel=1e-12)
        assert [c for _, c in written] == sorted((c for _, c in written), reverse=True)


def _near_tie_at_cut(store: CoListeningStore, track_id: str) -> bool:
    ranked = store.neighbours(track_id, NEIGHBOURS_KEPT + 1)
    return len(ranked) > NEIGHBOURS_KEPT and ranked[-1][1] == pytest.approx(ranked[-2][1], rel=1e-9)


def test_resuming_every_track_from_its_snapshot_gives_the_same_state() -> None:
    stream = events(2_000, tracks=60, users=8, seed=3)
    batches = route(user_batches(stream, 30), per_batch=4)
    straight, last, rows = run_tracks(batches)
    resumed, last_resumed, rows_resumed = run_tracks(batches, crash_every=3)
    assert {t: logic.snapshot() for t, logic in straight.items()} == {
        t: logic.snapshot() for t, logic in resumed.items()}
    assert last == last_resumed and rows == rows_resumed


def test_an_unchanged_row_is_not_rewritten_and_a_pairs_only_track_has_no_stats() -> None:
    window, signals = ListeningWindow(), TrackSignals()
    for i, track_id in enumerate(["a", "b"]):
        event = Event(event_id=f"e{i}", user_id="u", track_id=track_id, type="complete", ts=T0 + i * HOUR)
        signals.add_pairs(window.learn_one(event))
        if track_id == "b":
            signals.add_event(event, None)  # "a"'s own event went into an earlier batch
    keyed = dict(signals.keyed())
    a = TrackStateLogic(None)
    (write,), _ = a.on_batch([keyed["a"]])
    assert write.fields == {} and write.at_ms == -1
    assert [n for n, _ in write.neighbours] == ["b"]

    skip = TrackSignals()
    skip.add_event(Event(event_id="s", user_id="v", track_id="a", type="skip", ts=T0 + 2 * HOUR), None)
    (write,), _ = a.on_batch([skip.keyed()[0][1]])
    assert write.neighbours is None  # the row did not change: its last write holds
    assert write.at_ms == T0 + 2 * HOUR
    assert [name.split("@")[0] for name in write.fields] == ["skips"]  # a skip adds no heat
    assert pickle.loads(pickle.dumps(a.state)).row.neighbours("a") == a.state.row.neighbours("a")


def test_top_neighbours_equals_the_stores_ranking_bit_for_bit_also_across_eras() -> None:
    rng = random.Random(4)
    store = CoListeningStore()
    era_ms = store.decay.era_ms
    for _ in range(3_000):
        a, b = sorted(rng.sample([f"t{i:03d}" for i in range(120)], 2))
        # Mostly one era; some pairs an era earlier, so rows mix eras (as after an era rollover).
        ts = T0 + rng.randrange(0, 30 * 24 * HOUR) - (era_ms if rng.random() < 0.2 else 0)
        store.learn_one(PairIncrement(a, b, rng.choice([1.0, 1.0, 0.5]), ts))
    mixed = [t for t, row in store.rows.items() if len({e for eras in row.values() for e in eras}) > 1]
    assert mixed
    for track_id in store.rows:
        for k in (0, 1, 7, NEIGHBOURS_KEPT, 1_000):
            assert top_neighbours(store, track_id, k)[0] == store.neighbours(track_id, k)
    assert top_neighbours(store, "unknown", 5) == ([], -1)


@pytest.mark.parametrize("seed", range(6))
def test_every_row_written_equals_the_stores_neighbours_at_that_point(seed: int) -> None:
    """The incremental top N against the store fed the same adds in the same order: through era
    boundaries, rows cut back to capacity, hot and cold neighbours, and resumes from snapshots."""
    rng = random.Random(seed)
    era_ms = PAIR_DECAY.era_ms
    store = CoListeningStore()
    logic = TrackStateLogic(None)
    neighbours = [f"n{i:04d}" for i in range(rng.choice([60, 700]))]  # 700: rows get cut
    # Odd seeds start 20 days before an era boundary and cross it; even ones stay in one era.
    ts = (T0 // era_ms + 1) * era_ms - (20 * 24 * HOUR if seed % 2 else 200 * 24 * HOUR)
    written = 0
    for batch in range(150):
        values = []
        for _ in range(rng.randrange(1, 4)):
            signal = TrackSignal("t")
            for _ in range(rng.randrange(0, 30)):
                ts += rng.randrange(0, HOUR)
                hot = rng.random() < 0.7
                n = (neighbours[min(int(rng.paretovariate(0.6)), len(neighbours)) - 1] if hot
                     else rng.choice(neighbours))
                era, scaled = PAIR_DECAY.scaled(rng.choice([1.0, 0.5]), ts)
                eras = signal.pairs.setdefault(n, {})
                eras[era] = eras.get(era, 0.0) + scaled
                signal.pairs_ms = ts
            values.append(signal)
        (write,), _ = logic.on_batch(values)
        for signal in values:
            for n, eras in signal.pairs.items():
                for era, scaled in eras.items():
                    store.add("t", n, era, scaled, signal.pairs_ms)
        if any(v.pairs for v in values):
            assert write.neighbours == store.neighbours("t", NEIGHBOURS_KEPT), batch
            written += 1
        else:
            assert write.neighbours is None
        if batch % 37 == 36:
            logic = TrackStateLogic(logic.snapshot())
    assert written > 100
    assert len({e for eras in store.rows["t"].values() for e in eras}) == 1 + seed % 2


def test_a_batch_of_pairs_alone_keeps_the_stats_and_says_so() -> None:
    logic = TrackStateLogic(None)
    signals = TrackSignals()
    signals.add_event(Event(event_id="e1", user_id="u", track_id="t1", type="like", ts=T0), genres_of("t001"))
    (first,), _ = logic.on_batch([signals.by_track["t1"]])
    assert first.stats_changed
    pairs = TrackSignals()
    pairs.add_pairs([PairIncrement("t1", "t2", 1.0, T0 + HOUR)])
    (second,), _ = logic.on_batch([pairs.by_track["t1"]])
    # The stats, trending and rates of the last write, unchanged; only the row is new.
    assert not second.stats_changed and second.neighbours == [("t2", 1.0)]
    assert (second.fields, second.trending, second.like_rate, second.at_ms) == (
        first.fields, first.trending, first.like_rate, first.at_ms)
    resumed = TrackStateLogic(logic.snapshot())
    (third,), _ = resumed.on_batch([pairs.by_track["t1"]])
    assert third.stats_changed  # after a resume the stats are written again


def test_the_sink_writes_stats_when_any_write_of_its_batch_changed_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flows.track_sinks as track_sinks
    from schemas.keys import KeyLayout

    hashes: list[str] = []

    class Pipe:
        def __getattr__(self, name: str):
            return lambda *a, **k: hashes.append(a[0]) if name == "hset" else None

    monkeypatch.setattr(track_sinks, "pipelined", lambda _client, fill, _what: fill(Pipe()))
    monkeypatch.setattr(track_sinks, "connect", lambda _url: None)
    sink = track_sinks._TrackStatsPartition("redis://unused", KeyLayout("t"))
    changed = TrackWrite({"likes@0": 1.0}, ("rock",), T0, 1.0, 1.0, 0.0, 1.0, None)
    same = TrackWrite({"likes@0": 1.0}, ("rock",), T0, 1.0, 1.0, 0.0, 1.0, [("t2", 1.0)], stats_changed=False)
    stats_key = KeyLayout("t").track_stats("t1")
    sink.write_batch([("t1", changed), ("t1", same)])
    assert stats_key in hashes
    hashes.clear()
    sink.write_batch([("t1", same)])
    assert stats_key not in hashes
