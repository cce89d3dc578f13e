"""Recommendation quality on real playlists, through the real stack: `encore bench quality`.

    .venv/bin/python -m benchmarks.quality [--playlists N] [--seed S] [--data PATH] [--k K]
        [--min-tracks M] [--steps 1,3,5,10]

Each playlist of the TidyTuesday "Spotify Songs" table (`playlist_id`) stands for one listener's
taste. The catalog is every track of the table (`read_spotify_csv`). See docs/quality.md.

1. **Split.** Playlists with at least `--min-tracks` distinct tracks; `--playlists` of them drawn
   with `--seed`. Each playlist's tracks are shuffled with the seed: the first half (floor) is the
   *replayed* half, the rest the *held-out* half.
2. **Stack.** A Tansu broker and a redis-server on free loopback ports (`encore.local`), a fresh
   namespace and its topics, the catalog produced (`encore.catalog_loader.load_catalog`), one flow process
   (`python -m encore.cli flow`) and one API process (`python -m encore.cli serve`), exactly as
   production starts them.
3. **Continuation.** Every listener's replayed half is produced as one event per track (`like` or
   `complete`, seeded coin), all listeners at once (one producer, keyed by user, so the flow works
   on every partition in parallel). When every profile has reached its expected `profile_version`
   (= its number of events: every event id is unique), `GET /v1/users/{id}/recommendations` is
   read. The API already leaves out the listener's 30 most recent tracks; the benchmark asks for
   `k + len(played)` (at most 100) and drops every played track client-side, so no replayed track
   can count as a hit or take a slot. Scored against the held-out half: HR@k, NDCG@k, R-precision.
4. **Adaptation.** Listener i, right after step 3, switches to playlist B (another listener's
   playlist of another `playlist_genre`, seeded): B's replayed tracks are produced one by one; after
   1, 3, 5 and 10 of them the recommendations are read again (all listeners in parallel, each read
   once its profile version is reached). Measured: share of the top k that is B's held-out half, and
   share whose `genres` contain B's genre (a track's `genres` are every playlist genre it was found
   under, then subgenres; `B's genre in track.genres`, not only `genres[0]`).
5. **Baselines**, offline in Python, on the same splits and the same exclusions: global popularity
   (`track_popularity`), genre popularity (the most popular tracks of the majority playlist genre of
   what the listener played), item-kNN (cosine over co-occurrence in the replayed halves of all
   listeners, fitted once = an hourly refit; a candidate scores the sum of its similarities to
   everything the listener played; ties and tracks without a neighbour fall back to popularity), and
   for adaptation the same listener's Encore ranking read before the switch.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import math
import os
import platform
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import orjson
import redis
import scipy.sparse as sp
from confluent_kafka import Producer

from benchmarks.baselines import ALS, EASE, rank_items
from benchmarks.common import BenchError, command_line, stop_on_sigterm, tear_down
from benchmarks.flow_bench import profile_version
from encore.catalog_csv import read_playlists as read_catalog_playlists
from encore.catalog_csv import read_spotify_csv
from encore.catalog_loader import load_catalog
from encore.local import ManagedProcess, create_topics, free_port, start_broker, start_redis
from encore.settings import Settings
from encore.simulate import ListenerSimulation
from ranking.config import RankingConfig
from schemas.keys import KeyLayout
from schemas.topics import Topics
from schemas.tracks import Track
from schemas.values import RankerState, decode_ranker

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "spotify-songs-tidytuesday" / "spotify_songs.csv"
DEFAULT_PLAYLISTS = 120
DEFAULT_SEED = 7
DEFAULT_MIN_TRACKS = 20
DEFAULT_STEPS = (1, 3, 5, 10)
MAX_API_K = 100  # the API's largest k
TS0_MS = 1_795_100_000_000  # 2026-11-19: event time of the first event (fixed: reruns are identical)
PARTITIONS = 4
WAIT_TIMEOUT_S = 300.0


# --------------------------------------------------------------------------------------------------
# Data and splits


@dataclass
class Playlist:
    playlist_id: str
    genre: str
    tracks: list[str]  # distinct, in file order


@dataclass
class Listener:
    user_id: str
    playlist: Playlist
    replay: list[str]  # the replayed half, in replay order
    held_out: list[str]
    types: list[str]  # event type per replayed track
    switch_to: int | None = None  # index of listener B (adaptation)


def read_playlists(path: Path) -> list[Playlist]:
    tracks: dict[str, dict[str, None]] = defaultdict(dict)
    genre: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            pid, tid = (row.get("playlist_id") or "").strip(), (row.get("track_id") or "").strip()
            if pid and tid:
                tracks[pid][tid] = None
                genre.setdefault(pid, (row.get("playlist_genre") or "").strip().lower())
    return [Playlist(pid, genre[pid], list(t)) for pid, t in tracks.items()]


def make_listeners(playlists: Sequence[Playlist], catalog: set[str], n: int, seed: int,
                   min_tracks: int, steps: Sequence[int], run_id: str) -> list[Listener]:
    rng = np.random.default_rng(seed)
    eligible = []
    for p in playlists:
        known = [t for t in p.tracks if t in catalog]
        if len(known) >= min_tracks:
            eligible.append(Playlist(p.playlist_id, p.genre, known))
    eligible.sort(key=lambda p: p.playlist_id)
    if not eligible:
        raise BenchError(f"no playlist has at least {min_tracks} tracks")
    chosen = [eligible[i] for i in sorted(rng.choice(len(eligible), size=min(n, len(eligible)),
                                                     replace=False))]
    listeners = []
    for i, p in enumerate(chosen):
        order = list(p.tracks)
        rng.shuffle(order)
        half = len(order) // 2
        types = ["like" if x < 0.5 else "complete" for x in rng.random(half)]
        listeners.append(Listener(f"q{run_id}-{i:04d}", p, order[:half], order[half:], types))
    # Adaptation: B is another listener's playlist, of another genre, with enough replayed tracks.
    need = max(steps) if steps else 0
    for i, a in enumerate(listeners):
        options = [j for j, b in enumerate(listeners)
                   if j != i and b.playlist.genre != a.playlist.genre and len(b.replay) >= need]
        if options:
            a.switch_to = int(options[rng.integers(len(options))])
    return listeners


# --------------------------------------------------------------------------------------------------
# Metrics


def dcg(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return sum(1.0 / math.log2(r + 2) for r, t in enumerate(ranked[:k]) if t in relevant)


def ndcg(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg(ranked, relevant, k) / ideal if ideal else 0.0


def hit(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return float(any(t in relevant for t in ranked[:k]))


def r_precision(ranked: Sequence[str], relevant: set[str]) -> float:
    r = len(relevant)
    return sum(1 for t in ranked[:r] if t in relevant) / r if r else 0.0


def share(ranked: Sequence[str], wanted: set[str], k: int) -> float:
    return sum(1 for t in ranked[:k] if t in wanted) / k


# --------------------------------------------------------------------------------------------------
# Baselines (offline)


class Baselines:
    def __init__(self, tracks: Sequence[Track], listeners: Sequence[Listener]) -> None:
        self.tracks = {t.track_id: t for t in tracks}
        # Popularity order, ties by track_id: deterministic.
        self.by_popularity = sorted(self.tracks, key=lambda t: (-(self.tracks[t].popularity or 0.0), t))
        self.pop_rank = {t: r for r, t in enumerate(self.by_popularity)}
        self.genres = sorted({lst.playlist.genre for lst in listeners})
        self.genre_lists = {g: [t for t in self.by_popularity if g in self.tracks[t].genres]
                            for g in self.genres}
        # item-kNN: co-occurrence in the replayed halves, cosine.
        self.count: Counter[str] = Counter()
        self.neighbours: dict[str, Counter[str]] = defaultdict(Counter)
        for lst in listeners:
            items = sorted(set(lst.replay))
            self.count.update(items)
            for a in items:
                row = self.neighbours[a]
                for b in items:
                    if a != b:
                        row[b] += 1

        # EASE and ALS (benchmarks/baselines.py): fit on the replayed halves (the nightly refit's
        # best case), scored from a listener's history; grids tuned on the evaluated listeners.
        self.items = sorted({t for lst in listeners for t in lst.replay})
        self.item_of = {t: i for i, t in enumerate(self.items)}
        rows = [[self.item_of[t] for t in set(lst.replay)] for lst in listeners]
        self.matrix = sp.csr_matrix((np.ones(sum(map(len, rows)), np.float32),
                                     (np.repeat(np.arange(len(rows)), [len(r) for r in rows]),
                                      np.concatenate([np.array(r, np.int64) for r in rows]))),
                                    shape=(len(rows), len(self.items)))
        self._models: dict[tuple, EASE | ALS] = {}

    def model(self, name: str, params: tuple) -> EASE | ALS:
        key = (name, *params)
        if key not in self._models:
            self._models[key] = (EASE(lam=params[0]) if name == "EASE"
                                 else ALS(factors=params[0], alpha=params[1], regularization=params[2]))
            self._models[key].fit(self.matrix)
        return self._models[key]

    def factorised(self, name: str, params: tuple, played: Sequence[str], n: int) -> list[str]:
        """EASE or ALS: the n best tracks for a history (fold-in), played ones left out."""
        history = np.zeros((1, len(self.items)), np.float32)
        known = [self.item_of[t] for t in set(played) if t in self.item_of]
        history[0, known] = 1.0
        scores = self.model(name, params).score(sp.csr_matrix(history))
        order = rank_items(np.asarray(scores, np.float64), np.array(known, np.int64), n)
        seen = set(played)
        ranked = [self.items[i] for i in order if self.items[i] not in seen][:n]
        return ranked + self.popularity(seen | set(ranked), n - len(ranked))

    def popularity(self, played: set[str], n: int) -> list[str]:
        return _top(self.by_popularity, played, n)

    def majority_genre(self, played: Sequence[str]) -> str | None:
        votes: Counter[str] = Counter()
        for t in played:
            for g in self.tracks[t].genres:
                if g in self.genre_lists:
                    votes[g] += 1
        return min(votes, key=lambda g: (-votes[g], g)) if votes else None

    def genre_popularity(self, played: Sequence[str], n: int) -> list[str]:
        genre = self.majority_genre(played)
        ranked = _top(self.genre_lists.get(genre, []), set(played), n) if genre else []
        return ranked + [t for t in self.popularity(set(played) | set(ranked), n - len(ranked))]

    def majority_subgenre(self, played: Sequence[str]) -> str | None:
        votes: Counter[str] = Counter()
        for t in played:
            votes.update(g for g in self.tracks[t].genres if g not in self.genre_lists)
        return min(votes, key=lambda g: (-votes[g], g)) if votes else None

    def subgenre_popularity(self, played: Sequence[str], n: int) -> list[str]:
        """The most popular tracks of the majority *playlist subgenre* label of what was played: how
        far the catalog's playlist-derived labels alone go (see docs/quality.md, "labels")."""
        label = self.majority_subgenre(played)
        seen = set(played)
        ranked = []
        if label is not None:
            ranked = _top([t for t in self.by_popularity if label in self.tracks[t].genres], seen, n)
        return ranked + self.popularity(seen | set(ranked), n - len(ranked))

    def item_knn(self, played: Sequence[str], n: int) -> list[str]:
        scores: dict[str, float] = defaultdict(float)
        for a in set(played):
            na = self.count.get(a, 0)
            for b, c in self.neighbours.get(a, {}).items():
                scores[b] += c / math.sqrt(na * self.count[b])
        seen = set(played)
        ranked = sorted((t for t in scores if t not in seen), key=lambda t: (-scores[t], self.pop_rank[t]))
        ranked = ranked[:n]
        return ranked + self.popularity(seen | set(ranked), n - len(ranked))


def _top(ordered: Sequence[str], exclude: set[str], n: int) -> list[str]:
    out = []
    for t in ordered:
        if len(out) >= n:
            break
        if t not in exclude:
            out.append(t)
    return out


# --------------------------------------------------------------------------------------------------
# The stack


@dataclass
class Stack:
    settings: Settings
    keys: KeyLayout
    topics: Topics
    client: redis.Redis
    api: str
    flow: ManagedProcess
    serve: ManagedProcess
    processes: list[ManagedProcess] = field(default_factory=list)
    params: dict[str, float] = field(default_factory=dict)
    """Extra query parameters of every recommendations read (e.g. `diversity`)."""


class Progress:
    """One line on stderr: `[#####.....]  50% label`."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = max(1, total), 0, enabled
        self.t0 = time.perf_counter()
        self.last = ""

    def show(self, label: str, done: int | None = None) -> None:
        if done is not None:
            self.done = done
        if not self.enabled:
            return
        f = min(1.0, self.done / self.total)
        line = (f"\r[{'#' * round(f * 30)}{'.' * (30 - round(f * 30))}] {f:4.0%} "
                f"{time.perf_counter() - self.t0:5.0f}s {label}")
        if line != self.last:
            sys.stderr.write(line.ljust(100)[:120])
            sys.stderr.flush()
            self.last = line

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def check_alive(*processes: ManagedProcess) -> None:
    for p in processes:
        if not p.alive():
            raise BenchError(f"{p.name} exited ({p.process.returncode if p.process else '?'}):\n{p.tail(40)}")


def start_stack(workdir: Path, data: Path, run_id: str, processes: list[ManagedProcess],
                say: callable, explore: float | None = None) -> Stack:  # type: ignore[valid-type]
    broker, bootstrap = start_broker(workdir / "logs")
    processes.append(broker)
    redis_server, redis_url = start_redis(workdir / "redis")
    processes.append(redis_server)
    client = redis.Redis.from_url(redis_url)
    namespace = f"quality{run_id}"
    port = free_port()
    settings = Settings.from_env({}).with_(
        kafka_bootstrap=bootstrap, redis_url=redis_url, namespace=namespace, partitions=PARTITIONS,
        data_dir=workdir / namespace, api_port=port, api_url=f"http://127.0.0.1:{port}", log_level="WARNING")
    if explore is not None:  # the exploration slots' share (ranking/explore.py)
        settings = settings.with_(ranking_overrides=orjson.dumps({"explore_share": explore}).decode())
    topics, keys = Topics(namespace), KeyLayout(namespace)
    create_topics(bootstrap, topics.all(), PARTITIONS)
    t0 = time.perf_counter()
    loaded = load_catalog(bootstrap, namespace, data)
    flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"], workdir / "logs" / "flow.log",
                          # Its own port for Bytewax's API: a second stack on the machine (another
                          # benchmark, a test run) would otherwise make the flow fail to bind 3030.
                          env={**settings.to_env(), "BYTEWAX_DATAFLOW_API_PORT": str(free_port())}).start()
    processes.append(flow)
    deadline = time.monotonic() + 180
    while client.hlen(keys.catalog_tracks) < loaded:
        check_alive(flow)
        if time.monotonic() > deadline:
            raise BenchError(f"the catalog did not reach {loaded} tracks in Redis:\n{flow.tail(20)}")
        time.sleep(0.1)
    say(f"catalog: {loaded:,} tracks in Redis in {time.perf_counter() - t0:.1f}s")
    serve = ManagedProcess("serve", [sys.executable, "-m", "encore.cli", "serve", "--port", str(port)],
                           workdir / "logs" / "serve.log", env=settings.to_env()).start()
    processes.append(serve)
    api = f"http://127.0.0.1:{port}"
    wait_serving(api, "the API", serve, flow)
    return Stack(settings, keys, topics, client, api, flow, serve, processes)


def wait_serving(api: str, label: str, serve: ManagedProcess, *others: ManagedProcess) -> None:
    """Until `api` answers a recommendation read (its catalog is loaded); at most 120 s."""
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=10) as http:
        while True:
            check_alive(serve, *others)
            with contextlib.suppress(httpx.HTTPError):
                r = http.get(f"{api}/v1/users/quality-probe/recommendations", params={"k": 1})
                if r.status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"{label} did not serve the catalog in 120s:\n{serve.tail(20)}")
            time.sleep(0.2)


SETTLE_S = 3.0
"""Seconds to wait after the last profile reaches its version before a quality read: the rows that
the flow's track- and artist-keyed steps write trail the profile writes by up to a few batches, and
on a loaded machine a read right away saw some rows missing (continuation HR@10 0.45 instead of
0.66 in one run). Freshness is measured elsewhere (`encore bench ingest`); this measures quality."""


def start_variant_api(stack: Stack, name: str, overrides: Mapping[str, object], log_dir: Path) -> Stack:
    """Another API on the same Redis whose ranking config has `overrides` (`ENCORE_RANKING_CONFIG`): the
    stack as that API serves it. For ablations in one run (`--variants`); stopped with the stack."""
    port = free_port()
    base = orjson.loads(stack.settings.ranking_overrides or "{}")
    settings = stack.settings.with_(api_port=port, api_url=f"http://127.0.0.1:{port}",
                                    ranking_overrides=orjson.dumps({**base, **overrides}).decode())
    command = [sys.executable, "-m", "encore.cli", "serve", "--port", str(port)]
    log = log_dir / f"serve-{name}.log"
    serve = ManagedProcess(f"serve-{name}", command, log, env=settings.to_env()).start()
    stack.processes.append(serve)
    api = f"http://127.0.0.1:{port}"
    wait_serving(api, f"the API of variant {name}", serve)
    return dataclasses.replace(stack, api=api, serve=serve)


def load_variants(path: Path | None) -> dict[str, dict[str, object]]:
    """`--variants`: a JSON object {name: ranking overrides}, each checked as `RankingConfig` would."""
    if path is None:
        return {}
    variants = orjson.loads(path.read_bytes())
    for overrides in variants.values():
        RankingConfig.with_overrides(overrides)
    return variants


def event(run_id: str, user_id: str, seq: int, track_id: str, kind: str) -> bytes:
    value: dict[str, object] = {"event_id": f"{user_id}-{seq}", "user_id": user_id, "track_id": track_id,
                                "type": kind, "ts": TS0_MS + seq * 200_000,
                                "session_id": f"{user_id}-s", "context": {"source": "playlist"}}
    if kind == "complete":
        value["position_ms"] = value["duration_ms"] = 200_000
    return orjson.dumps(value)


def produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
    """All messages at once (keyed by user: every partition, so the flow applies them in parallel)."""
    failed = [0]

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failed[0] += 1

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60) or failed[0]:
        raise BenchError(f"{failed[0]} events were not acknowledged by the broker")


def wait_versions(stack: Stack, expected: dict[str, int], progress: Progress, label: str,
                  base_done: int, events: int) -> None:
    """Until every user's profile_version has reached its expected value (`events` new in all)."""
    pending = dict(expected)
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while pending:
        users = list(pending)
        raws = stack.client.mget([stack.keys.profile(u) for u in users])
        for user, raw in zip(users, raws, strict=True):
            if profile_version(raw) >= pending[user]:
                del pending[user]
        progress.show(f"{label}: {len(expected) - len(pending)}/{len(expected)} profiles",
                      base_done + round(events * (1 - len(pending) / max(1, len(expected)))))
        if not pending:
            break
        check_alive(stack.flow)
        if time.monotonic() > deadline:
            raise BenchError(f"{len(pending)} profiles not at their version after {WAIT_TIMEOUT_S:.0f}s:\n"
                             f"{stack.flow.tail(20)}")
        time.sleep(0.05)


def read_recommendations(stack: Stack, asks: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    """{user: (k, expected version)} -> {user: track ids}; refuses an answer older than the version."""
    def one(item: tuple[str, tuple[int, int]]) -> tuple[str, list[str]]:
        user, (k, version) = item
        with httpx.Client(timeout=30) as http:
            r = http.get(f"{stack.api}/v1/users/{user}/recommendations", params={"k": k, **stack.params})
        if r.status_code != 200:
            raise BenchError(f"GET recommendations for {user}: {r.status_code} {r.text[:200]}")
        body = r.json()
        if body["profile_version"] < version:
            raise BenchError(f"{user}: profile_version {body['profile_version']} < {version}")
        return user, [item["track_id"] for item in body["items"]]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, asks.items()))


# --------------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Results:
    continuation: dict[str, dict[str, list[float]]]  # method -> metric -> per-listener values
    adaptation: dict[int, dict[str, dict[str, list[float]]]]  # step -> method -> metric -> values
    listeners: int
    adapting: int
    catalog: int
    eligible: int
    seconds: float
    stack_seconds: float
    coverage: int = 0
    """Distinct tracks in Encore's continuation top k over all listeners."""
    beyond: dict[str, float] = field(default_factory=dict)
    """Encore's top k: share of less known tracks (popularity rank in the catalog's lower half) and of
    tracks with no genre of the listener's replayed half (what exploration buys)."""
    ranker: RankerState | None = None
    """The learned ranker after the live-outcomes phase (progressive AUC and log loss)."""
    outcomes: dict[str, int] = field(default_factory=dict)


GRIDS: dict[str, list[tuple]] = {
    "EASE": [(10.0,), (50.0,), (200.0,), (500.0,), (1000.0,), (3000.0,)],
    "ALS": [(16, 10.0, 0.05), (32, 10.0, 0.05), (32, 20.0, 0.1), (64, 10.0, 0.05), (64, 20.0, 0.01),
            (128, 5.0, 0.1)],
}
"""EASE λ; ALS (factors, alpha, regularisation). The value with the best continuation NDCG@k on the
evaluated listeners themselves is reported (it favours the baselines, on purpose)."""


def run(data: Path, playlists: int = DEFAULT_PLAYLISTS, seed: int = DEFAULT_SEED, k: int = 10,
        min_tracks: int = DEFAULT_MIN_TRACKS, steps: Sequence[int] = DEFAULT_STEPS,
        progress: bool = True, say: callable = print,  # type: ignore[valid-type]
        diversity: float | None = None, explore: float | None = None,
        outcome_seconds: float = 0.0, variants: Mapping[str, Mapping[str, object]] | None = None) -> Results:
    """The whole benchmark: start the stack, replay, read, score; stops everything it started."""
    t_start = time.perf_counter()
    steps = sorted(set(steps))
    run_id = uuid.uuid4().hex[:8]
    tracks = read_spotify_csv(data)
    catalog_ids = {t.track_id for t in tracks}
    all_playlists = read_playlists(data)
    listeners = make_listeners(all_playlists, catalog_ids, playlists, seed, min_tracks, steps, run_id)
    eligible = sum(1 for p in all_playlists if sum(t in catalog_ids for t in p.tracks) >= min_tracks)
    baselines = Baselines(tracks, listeners)
    say(f"{len(tracks):,} tracks, {len(all_playlists)} playlists, {eligible} with >= {min_tracks} tracks; "
        f"{len(listeners)} listeners (seed {seed}), "
        f"{sum(lst.switch_to is not None for lst in listeners)} switching playlists")

    n_events = sum(len(lst.replay) for lst in listeners) + sum(
        max(steps) for lst in listeners if lst.switch_to is not None)
    bar = Progress(n_events + len(listeners) * (1 + len(steps)), enabled=progress)
    workdir = Path(tempfile.mkdtemp(prefix="encore-quality-"))
    processes: list[ManagedProcess] = []
    ok = False
    try:
        stack = start_stack(workdir, data, run_id, processes, say, explore)
        if diversity is not None:
            stack.params["diversity"] = diversity
        # Ablations in one run: an API per variant on the same Redis, each read where Encore is.
        alts = {name: start_variant_api(stack, name, overrides, workdir / "logs")
                for name, overrides in (variants or {}).items()}
        stack_s = time.perf_counter() - t_start
        bootstrap = stack.settings.require_kafka()
        played: dict[str, list[str]] = {lst.user_id: list(lst.replay) for lst in listeners}
        version = {lst.user_id: len(lst.replay) for lst in listeners}

        # Continuation: every listener's replayed half, all at once.
        produce(bootstrap, stack.topics.events,
                [(lst.user_id.encode(), event(run_id, lst.user_id, s, t, kind))
                 for lst in listeners for s, (t, kind) in enumerate(zip(lst.replay, lst.types, strict=True))])
        done = 0
        wait_versions(stack, version, bar, "continuation", done, sum(version.values()))
        done += sum(version.values())
        time.sleep(SETTLE_S)  # the track- and artist-keyed steps (rows, item stats) trail the profiles

        def ask(lst: Listener, depth: int) -> tuple[int, int]:
            return min(MAX_API_K, depth + len(played[lst.user_id])), version[lst.user_id]

        # Deep enough for R-precision, and for the pre-switch list once B's tracks are dropped from it.
        encore_lists = read_recommendations(
            stack, {lst.user_id: ask(lst, max(k, len(lst.held_out)) + max(steps, default=0))
                    for lst in listeners})
        done += len(listeners)
        bar.show("continuation: read", done)
        alt_lists = {name: read_recommendations(
            alt, {lst.user_id: ask(lst, max(k, len(lst.held_out))) for lst in listeners})
            for name, alt in alts.items()}

        # Rows in the order the methods are ranked below (Encore, the baselines, then the variants).
        cont: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        covered: set[str] = set()
        beyond: dict[str, list[float]] = defaultdict(list)
        before: dict[str, list[str]] = {}
        tuned: dict[str, tuple] = {}
        for name, grid in GRIDS.items():
            def ndcg_of(params: tuple, name: str = name) -> float:
                return float(np.mean([ndcg(baselines.factorised(name, params, lst.replay, k),
                                           set(lst.held_out), k) for lst in listeners]))
            tuned[name] = max(grid, key=ndcg_of)
        say(f"tuned on the evaluated listeners: EASE λ {tuned['EASE'][0]:g}; ALS factors {tuned['ALS'][0]}, "
            f"alpha {tuned['ALS'][1]:g}, regularisation {tuned['ALS'][2]:g}")
        for lst in listeners:
            seen = set(played[lst.user_id])
            depth = max(k, len(lst.held_out))
            ranked = {
                "Encore": [t for t in encore_lists[lst.user_id] if t not in seen][:depth],
                "global popularity": baselines.popularity(seen, depth),
                "genre popularity": baselines.genre_popularity(lst.replay, depth),
                "subgenre popularity": baselines.subgenre_popularity(lst.replay, depth),
                "item-kNN (hourly refit)": baselines.item_knn(lst.replay, depth),
                "EASE (nightly refit)": baselines.factorised("EASE", tuned["EASE"], lst.replay, depth),
                "ALS (nightly refit)": baselines.factorised("ALS", tuned["ALS"], lst.replay, depth),
                **{f"Encore [{name}]": [t for t in got[lst.user_id] if t not in seen][:depth]
                   for name, got in alt_lists.items()},
            }
            before[lst.user_id] = [t for t in encore_lists[lst.user_id] if t not in seen]
            covered.update(ranked["Encore"][:k])
            liked_genres = {g for t in lst.replay for g in baselines.tracks[t].genres}
            top = ranked["Encore"][:k]
            beyond["long tail"].append(sum(baselines.pop_rank[t] >= len(tracks) // 2 for t in top) / k)
            new = sum(not set(baselines.tracks[t].genres) & liked_genres for t in top)
            beyond["new genres"].append(new / k)
            held = set(lst.held_out)
            for method, r in ranked.items():
                cont[method]["hr"].append(hit(r, held, k))
                cont[method]["ndcg"].append(ndcg(r, held, k))
                cont[method]["rprec"].append(r_precision(r, held))
                cont[method]["recall"].append(len(set(r[:k]) & held) / len(held))

        # Adaptation: listener i switches to listener B's playlist.
        adapting = [lst for lst in listeners if lst.switch_to is not None]
        adapt: dict[int, dict[str, dict[str, list[float]]]] = {}
        sent = 0
        for step in steps:
            messages = []
            for lst in adapting:
                b = listeners[lst.switch_to]  # type: ignore[index]
                for s in range(sent, step):
                    seq = len(lst.replay) + s
                    messages.append((lst.user_id.encode(), event(run_id, lst.user_id, seq, b.replay[s], "like"
                                                                 if b.types[s] == "like" else "complete")))
                    played[lst.user_id].append(b.replay[s])
                    version[lst.user_id] += 1
            produce(bootstrap, stack.topics.events, messages)
            expected = {lst.user_id: version[lst.user_id] for lst in adapting}
            wait_versions(stack, expected, bar, f"adaptation, {step} event(s) of B", done, len(messages))
            done += len(messages)
            lists = read_recommendations(stack, {lst.user_id: ask(lst, k) for lst in adapting})
            alt_lists = {name: read_recommendations(alt, {lst.user_id: ask(lst, k) for lst in adapting})
                         for name, alt in alts.items()}
            done += len(adapting)
            bar.show(f"adaptation, {step} event(s) of B: read", done)
            sent = step
            per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            for lst in adapting:
                b = listeners[lst.switch_to]  # type: ignore[index]
                history = played[lst.user_id]
                seen = set(history)
                ranked = {
                    "Encore": [t for t in lists[lst.user_id] if t not in seen][:k],
                    "Encore before the switch": [t for t in before[lst.user_id] if t not in seen][:k],
                    "global popularity": baselines.popularity(seen, k),
                    "genre popularity": baselines.genre_popularity(history, k),
                    "item-kNN (hourly refit)": baselines.item_knn(history, k),
                    "EASE (nightly refit)": baselines.factorised("EASE", tuned["EASE"], history, k),
                    "ALS (nightly refit)": baselines.factorised("ALS", tuned["ALS"], history, k),
                    **{f"Encore [{name}]": [t for t in got[lst.user_id] if t not in seen][:k]
                       for name, got in alt_lists.items()},
                }
                b_held = set(b.held_out)
                for method, r in ranked.items():
                    per[method]["b_tracks"].append(share(r, b_held, k))
                    per[method]["b_genre"].append(
                        sum(1 for t in r[:k] if b.playlist.genre in baselines.tracks[t].genres) / k)
                    per[method]["b_genre0"].append(
                        sum(1 for t in r[:k] if baselines.tracks[t].genres[:1] == [b.playlist.genre]) / k)
            adapt[step] = per
        # Live outcomes: simulated listeners (tastes from real playlists) play, skip, like and
        # dislike through the API; the flow's learned ranker learns each outcome after scoring it.
        ranker, outcomes = live_outcomes(stack, tracks, data, outcome_seconds)
        bar.close()
        ok = True
        return Results(cont, adapt, len(listeners), len(adapting), len(tracks), eligible,
                       time.perf_counter() - t_start, stack_s, len(covered),
                       {name: mean(values) for name, values in beyond.items()}, ranker, outcomes)
    finally:
        tear_down(processes, workdir, finished=ok)


OUTCOME_RATE = 300.0
"""Events per second of the live-outcomes phase."""


def live_outcomes(stack: Stack, tracks: Sequence[Track], data: Path,
                  seconds: float) -> tuple[RankerState | None, dict[str, int]]:
    """Simulated listeners through the API for `seconds`; the ranker as the flow then publishes it."""
    if seconds <= 0:
        return None, {}
    simulation = ListenerSimulation(tracks, 200, seed=11, user_prefix="outcome-",
                                    playlists=read_catalog_playlists(data))
    def applied() -> int:
        return int(stack.client.hget(stack.keys.ops_counters, "events_applied") or 0)

    before = applied()
    report = simulation.run(stack.api, OUTCOME_RATE, seconds)
    expected = before + report.sent
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:  # until the flow has learned what the API acknowledged
        state = decode_ranker(stack.client.get(stack.keys.ranker))
        if state is not None and applied() >= expected:
            break
        time.sleep(0.5)
    time.sleep(2.0)  # the ranker's write follows the profiles' by a batch
    return decode_ranker(stack.client.get(stack.keys.ranker)) or state, report.outcomes


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def report(results: Results, args: argparse.Namespace, command: str) -> str:
    k = args.k
    lines = [
        "=" * 92,
        f"Encore quality benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: {command}",
        f"  data        {args.data} ({results.catalog:,} tracks in the catalog)",
        f"  listeners   {results.listeners} playlists (of {results.eligible} with >= {args.min_tracks} "
        f"distinct tracks), seed {args.seed}; {results.adapting} switch playlists",
        f"  machine     {platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}",
        f"  runtime     {results.seconds:.0f} s (stack start + catalog {results.stack_seconds:.0f} s)",
        f"  API reads   diversity = {'the API default' if args.diversity is None else args.diversity}",
        f"  explore     share = {'the default' if args.explore is None else args.explore}",
        "",
        f"Playlist continuation (replayed half -> held-out half), mean over {results.listeners} listeners",
        f"  {'method':<28}{'HR@' + str(k):>10}{'NDCG@' + str(k):>10}{'R-prec':>10}{'Recall@' + str(k):>11}",
    ]
    for method, m in results.continuation.items():
        lines.append(f"  {method:<28}{mean(m['hr']):>10.3f}{mean(m['ndcg']):>10.3f}{mean(m['rprec']):>10.3f}"
                     f"{mean(m['recall']):>11.3f}")
    lines.append(f"  catalog coverage: Encore's top {k} holds {results.coverage:,} distinct "
                 f"tracks ({results.coverage / max(1, results.catalog):.1%} of the catalog); of its slots "
                 f"{results.beyond.get('long tail', 0):.1%} less known (lower half by popularity), "
                 f"{results.beyond.get('new genres', 0):.1%} in genres the listener did not play")
    lines += ["", f"Adaptation (listener of playlist A switches to B of another genre), "
              f"mean over {results.adapting} listeners, after n events of B"]
    methods = next(iter(results.adaptation.values())).keys() if results.adaptation else []
    for metric, title in (("b_tracks", f"share of the top {k} in B's held-out half"),
                          ("b_genre", f"share of the top {k} whose genres contain B's genre"),
                          ("b_genre0", f"share of the top {k} whose first genre (genres[0]) is B's genre")):
        lines += ["", f"  {title}",
                  f"  {'method':<28}" + "".join(f"{f'n={s}':>9}" for s in results.adaptation)]
        for method in methods:
            cells = "".join(f"{mean(per[method][metric]):>9.3f}" for per in results.adaptation.values())
            lines.append(f"  {method:<28}{cells}")
    lines += ["", "  (Encore's top k excludes every played track client-side; so do the baselines.)"]
    if results.ranker is not None and results.ranker.metrics:
        auc, loss = results.ranker.metrics.get("auc", {}), results.ranker.metrics.get("log_loss", {})
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(results.outcomes.items()))
        lines += ["", f"Learned ranker, progressive validation (each outcome scored before it is learned), "
                  f"{results.ranker.examples:,} examples from every phase; live phase: {outcomes}",
                  f"  {'model':<28}{'AUC':>10}{'log loss':>10}",
                  f"  {'learned (River LR)':<28}{auc.get('learned', float('nan')):>10.3f}"
                  f"{loss.get('learned', float('nan')):>10.3f}",
                  f"  {'hand-weighted prior':<28}{auc.get('prior', float('nan')):>10.3f}"
                  f"{loss.get('prior', float('nan')):>10.3f}",
                  "  weights: " + ", ".join(f"{f} {w:+.2f}" for f, w in
                                            zip(results.ranker.features, results.ranker.weights,
                                                strict=True))]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="encore bench quality", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outcome-seconds", type=float, default=30.0,
                        help="seconds of simulated live outcomes (plays, skips, likes) after adaptation, "
                             "for the learned ranker's progressive AUC (0: none)")
    parser.add_argument("--playlists", type=int, default=DEFAULT_PLAYLISTS, help="listeners (playlists)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Spotify songs CSV")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--min-tracks", type=int, default=DEFAULT_MIN_TRACKS,
                        help="least distinct tracks of a playlist used")
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                        help="events of B after which adaptation is measured")
    parser.add_argument("--diversity", type=float, default=None,
                        help="the API's diversity parameter (0..1; default: the API's default)")
    parser.add_argument("--explore", type=float, default=None,
                        help="exploration slots' share (RankingConfig.explore_share; default: the config's)")
    parser.add_argument("--variants", type=Path, default=None,
                        help="ablations in one run: a JSON file {name: ranking overrides}; an API per "
                             "variant ranks on the same Redis and gets its rows (\"Encore [name]\")")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--scenario", choices=SCENARIOS, default="playlists",
                        help="playlists (this module), lastfm (benchmarks.lastfm: real listeners' held-out "
                             "artists; see its --help) or all (both; only --seed, --data, --no-progress)")
    args = parser.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(",") if s.strip()]
    if args.k < 1 or args.k > MAX_API_K // 2:
        parser.error(f"--k must be 1..{MAX_API_K // 2}")
    return args


SCENARIOS = ("playlists", "lastfm", "all")
SHARED_OPTIONS = ("--seed", "--data", "--no-progress")
"""The only options `--scenario all` takes: both scenarios read them the same way."""


def pop_scenario(argv: Sequence[str]) -> tuple[str, list[str]]:
    """(`--scenario` value, the other options); playlists when absent."""
    rest, scenario = list(argv), "playlists"
    for i, arg in enumerate(rest):
        if arg == "--scenario" or arg.startswith("--scenario="):
            value = arg.partition("=")[2] if "=" in arg else (rest[i + 1] if i + 1 < len(rest) else "")
            del rest[i:i + (1 if "=" in arg else 2)]
            if value not in SCENARIOS:
                raise ValueError(f"--scenario must be one of {', '.join(SCENARIOS)}, got {value!r}")
            scenario = value
            break
    return scenario, rest


def main(argv: Sequence[str] | None = None) -> int:
    """`--scenario playlists` (default), `lastfm` (benchmarks.lastfm) or `all` (both, one after the other)."""
    try:
        scenario, rest = pop_scenario(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"encore bench quality: {exc}", file=sys.stderr)
        return 2
    if scenario == "playlists":
        return main_playlists(rest)
    if scenario == "lastfm":
        return run_lastfm(rest)
    other = [a for a in rest if a.startswith("-") and a.split("=")[0] not in SHARED_OPTIONS]
    if other:
        print(f"encore bench quality --scenario all: only {', '.join(SHARED_OPTIONS)} apply to both "
              f"scenarios; run them one by one for {', '.join(other)}", file=sys.stderr)
        return 2
    return main_playlists(rest) or run_lastfm(rest)


def run_lastfm(argv: Sequence[str]) -> int:
    """The Last.fm scenario as its own module, in a child process (`benchmarks.lastfm` imports this
    module's stack harness, so importing it back here would make a cycle)."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "benchmarks.lastfm", *argv], check=False).returncode


def main_playlists(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    command = command_line("benchmarks.quality", argv)
    print(f"$ {command}", flush=True)
    if not args.data.exists():
        print(f"no such file: {args.data}", file=sys.stderr)
        return 2
    try:
        results = run(args.data, args.playlists, args.seed, args.k, args.min_tracks, args.steps,
                      progress=not args.no_progress, say=lambda s: print(s, flush=True),
                      diversity=args.diversity, explore=args.explore, outcome_seconds=args.outcome_seconds,
                      variants=load_variants(args.variants))
    except BenchError as exc:
        print(f"encore bench quality: {exc}", file=sys.stderr)
        return 1
    print(report(results, args, command), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
