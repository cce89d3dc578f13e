"""Measure the numbers quoted in docs/models.md: state sizes, µs per update, enrichment MAE, drift delay.

Run from the repository root: `.venv/bin/python docs/models_measure.py [--catalog CSV]`. The
timings depend on the machine; the sizes, MAEs and delays do not (everything is deterministic).
"""

from __future__ import annotations

import argparse
import pickle
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from river import drift as river_drift
from river import linear_model, optim

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from online_models.co_listening import CoListeningStore, ListeningWindow, PairIncrement
from online_models.context_features import encode_dict, encode_sparse
from online_models.drift import DriftDetector
from online_models.enrichment import AudioFeatureRegressor
from online_models.global_model import GlobalModel, merge, merge_deltas
from online_models.item_stats import ItemStats
from online_models.user_model import USER_MODEL_CONFIG, UserModel, engagement_label
from schemas.events import Event
from schemas.tracks import AUDIO_FEATURES, Track
from tests.unit.test_drift import run as drift_run

T0 = 1_795_248_000_000
FULL_CATALOG = Path(__file__).resolve().parents[2] / "shared/data/spotify-songs-tidytuesday/spotify_songs.csv"


def per_call_us(fn: Callable[[], object], items: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / items * 1e6


def events(tracks: list[Track], n: int, seed: int = 0) -> list[tuple[Event, Track]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = rng.choice(tracks)
        type_ = rng.choice(["like", "complete", "skip", "dislike", "play"])
        out.append((Event(event_id=f"e{i}", user_id=f"u{i % 50}", track_id=t.track_id, type=type_,
                          ts=T0 + i * 60_000, position_ms=20_000, duration_ms=200_000,
                          context={"device": "phone", "mood": rng.choice(["chill", "happy"])}), t))
    return out


def memory_per_object(make: Callable[[], object], n: int = 300) -> float:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = [make() for _ in range(n)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / n
    del kept
    return size


def section_user_model(tracks: list[Track]) -> None:
    stream = events(tracks, 3000)
    model = UserModel()
    learn_event = per_call_us(lambda: [model.learn_event(e, t) for e, t in stream], len(stream))
    encoded = [(encode_sparse(e, t), engagement_label(e)) for e, t in stream]
    encoded = [(x, label) for x, label in encoded if label]
    learn_one = per_call_us(lambda: [model.learn_one(x, *label) for x, label in encoded], len(encoded))
    encode = per_call_us(lambda: [encode_sparse(e, t) for e, t in stream], len(stream))
    dicts = [(encode_dict(e, t), label) for (e, t), label in
             ((p, engagement_label(p[0])) for p in stream) if label]
    river = linear_model.LogisticRegression(optimizer=optim.SGD(USER_MODEL_CONFIG.lr),
                                            intercept_lr=USER_MODEL_CONFIG.intercept_lr)
    river_learn = per_call_us(lambda: [river.learn_one(x, y, w=w) for x, (y, w) in dicts], len(dicts))

    def river_model() -> linear_model.LogisticRegression:
        m = linear_model.LogisticRegression(optimizer=optim.SGD(0.5))
        for x, (y, w) in dicts[:50]:
            m.learn_one(x, y, w=w)
        return m

    def our_model() -> UserModel:
        m = UserModel()
        for x, label in encoded[:50]:
            m.learn_one(x, *label)
        return m

    print("## user model")
    print(f"profile bytes (float32 weights + intercept): {len(model.to_bytes())}")
    print(f"learn_event (encode + learn): {learn_event:.1f} µs; learn_one on encoded: {learn_one:.1f} µs; "
          f"encode_sparse: {encode:.1f} µs")
    print(f"River LogisticRegression.learn_one on the same dict: {river_learn:.1f} µs")
    print(f"in memory per user: ours {memory_per_object(our_model):.0f} B, River "
          f"{memory_per_object(river_model):.0f} B; pickled: ours {len(pickle.dumps(model))} B, "
          f"River {len(pickle.dumps(river))} B")

    replicas = []
    for k in range(8):
        g = GlobalModel()
        for e, t in stream[k::8]:
            g.learn_event(e, t)
        replicas.append(g)
    global_learn = per_call_us(lambda: [replicas[0].learn_event(e, t) for e, t in stream], len(stream))
    merge_us = per_call_us(lambda: merge(replicas), 1)
    deltas_us = per_call_us(lambda: merge_deltas(GlobalModel(), replicas), 1)
    print(f"global learn_event: {global_learn:.1f} µs; merge of 8 replicas: {merge_us:.0f} µs "
          f"(deltas {deltas_us:.0f} µs); replica record {len(replicas[0].to_record())} B")


def section_item_stats(tracks: list[Track]) -> None:
    stream = [e for e, _ in events(tracks, 5000)]
    stats = ItemStats()
    learn = per_call_us(lambda: [stats.learn_one(e) for e in stream], len(stream))
    fields = stats.to_fields()
    field_bytes = sum(len(k) + 8 for k in fields)
    print("## item stats")
    print(f"learn_one: {learn:.1f} µs; state: {len(fields)} hash fields (~{field_bytes} B: names + doubles)")


def section_co_listening(tracks: list[Track]) -> None:
    window = ListeningWindow()
    stream = [(e, t) for e, t in events(tracks, 5000) if e.type in ("like", "complete")]
    for e, _ in stream[:20]:
        window.learn_one(e)
    pairs: list[PairIncrement] = []
    learn = per_call_us(lambda: [pairs.extend(ListeningWindow().learn_one(e)) for e, _ in stream],
                        len(stream), repeat=1)
    full = ListeningWindow()
    full_pairs: list[PairIncrement] = []
    for i, (e, _) in enumerate(stream[:400]):
        full_pairs.extend(full.learn_one(e.model_copy(update={"ts": T0 + i * 60_000, "user_id": "u"})))
    window_learn = per_call_us(
        lambda: [ListeningWindow(entries=list(full.entries)).learn_one(
            e.model_copy(update={"ts": T0 + 400 * 60_000})) for e, _ in stream[:500]], 500)
    store = CoListeningStore()
    store_learn = per_call_us(lambda: store.learn_many(full_pairs), len(full_pairs))
    print("## co-listening")
    print(f"window of {len(full.entries)} positives: {len(full.to_bytes())} B; learn_one on a full window "
          f"(~{len(full.entries)} pairs out): {window_learn:.1f} µs (empty window {learn:.1f} µs)")
    print(f"store learn_one (one pair, both directions): {store_learn:.1f} µs")


def section_drift() -> None:
    detector = DriftDetector()
    xs = [random.Random(1).random() for _ in range(10_000)]
    update = per_call_us(lambda: [detector.update(x, 0) for x in xs], len(xs))
    adwin = river_drift.ADWIN(clock=1)
    adwin_update = per_call_us(lambda: [adwin.update(x) for x in xs], len(xs), repeat=1)
    print("## drift")
    print(f"state: {len(detector.to_bytes())} B; update: {update:.2f} µs. River ADWIN(clock=1): "
          f"{len(pickle.dumps(adwin))} B pickled, {adwin_update:.2f} µs per update")
    seeds = range(60)
    for name, make, boost in [
        ("Page-Hinkley (ours)", DriftDetector, True),
        ("Page-Hinkley, no boost", DriftDetector, False),
        ("ADWIN delta=0.002 clock=1", lambda: river_drift.ADWIN(clock=1), False),
        ("ADWIN delta=0.002 clock=32", river_drift.ADWIN, False),
    ]:
        results = [drift_run(seed, make(), boost=boost) for seed in seeds]
        delays = [d for d, _, _ in results if d is not None]
        false_alarms = sum(f for _, f, _ in results)
        after = statistics.mean(s for _, _, s in results)
        median = statistics.median(delays) if delays else float("nan")
        mean = statistics.mean(delays) if delays else float("nan")
        print(f"{name}: detected {len(delays)}/{len(results)}, delay median {median} mean {mean:.1f} "
              f"learned events; false alarms {false_alarms} in {len(results) * 200} steady events; "
              f"mean surprise in the 60 events after the switch {after:.3f}")


def section_enrichment(path: Path) -> None:
    tracks = read_spotify_csv(path)
    rng = random.Random(0)
    rng.shuffle(tracks)
    cut = int(0.8 * len(tracks))
    train, test = tracks[:cut], tracks[cut:]
    model = AudioFeatureRegressor()
    start = time.perf_counter()
    for t in train:
        model.learn_one(t)
    learn = (time.perf_counter() - start) / len(train) * 1e6
    bare = [t.model_copy(update=dict.fromkeys(AUDIO_FEATURES)) for t in test]
    start = time.perf_counter()
    predicted = np.array([list(model.predict_one(t).values()) for t in bare])
    predict = (time.perf_counter() - start) / len(test) * 1e6
    truth = np.array([[getattr(t, f) for f in AUDIO_FEATURES] for t in test])
    mean = np.array([[getattr(t, f) for f in AUDIO_FEATURES] for t in train]).mean(axis=0)
    mae, base = np.abs(predicted - truth).mean(axis=0), np.abs(mean - truth).mean(axis=0)
    print(f"## enrichment: {path.name}, {len(train)} train / {len(test)} test tracks, one pass")
    print(f"learn_one {learn:.0f} µs, predict_one {predict:.0f} µs")
    print("| feature | model MAE | training-mean MAE | ratio |")
    print("|---|---|---|---|")
    for name, m, b in zip(AUDIO_FEATURES, mae, base, strict=True):
        print(f"| {name} | {m:.4f} | {b:.4f} | {m / b:.3f} |")
    print(f"| mean ratio | | | {(mae / base).mean():.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, default=FULL_CATALOG if FULL_CATALOG.exists() else None)
    args = parser.parse_args()
    sample = read_spotify_csv(DEFAULT_SAMPLE)
    section_user_model(sample)
    section_item_stats(sample)
    section_co_listening(sample)
    section_drift()
    section_enrichment(DEFAULT_SAMPLE)
    if args.catalog is not None and args.catalog.exists():
        section_enrichment(args.catalog)


if __name__ == "__main__":
    main()
