"""Recommendation quality on real listeners (Last.fm HetRec 2011), through the real stack:
`encore bench quality --scenario lastfm`.

    .venv/bin/python -m benchmarks.lastfm [--lastfm DIR] [--data CSV] [--seed S] [--eval-listeners N]
        [--listeners N] [--steps 1,3,5,10] [--offline-only] [--tune] [--no-progress]

See docs/quality.md, "Last.fm scenario". In short:

1. **Join.** Last.fm users' artist play counts (`user_artists.dat`, `artists.dat`; the path is a
   parameter, the data never enters the repository) are joined to the catalog (the TidyTuesday
   Spotify CSV) by normalised artist name (`normalise_artist`). A listener's *catalog artists* are
   the Last.fm artists that exist in the catalog (Last.fm ids of one normalised name are merged,
   their play counts summed). Listeners with at least `MIN_ARTISTS` catalog artists take part.
2. **Events.** Each listener's catalog artists become events, deterministic with the seed: ranked by
   play count, an artist in the listener's top fifth gets `complete` events of 3 of its catalog
   tracks, the top half 2, the rest 1 (fewer if the catalog has fewer), drawn without replacement
   with probability proportional to catalog popularity + 1; the listener's favourite artists (the
   top tenth by play count, at least one) also get a `like` of their first track, right after its
   `complete`. The (complete[, like]) units are shuffled; event times start at a fixed TS0 and grow
   by 200 s per event of the listener.
3. **Split.** `--eval-listeners` (150) listeners are drawn with the seed; a fifth (floor) of each one's
   catalog artists, drawn with the seed, is *held out*: never streamed. Every other listener streams
   all of their artists.
4. **Stack** (as `benchmarks.quality`): Tansu broker, redis-server, catalog, `encore flow`,
   `encore serve`. Every event is produced to Kafka; once every listener's profile has reached its
   expected `profile_version` the evaluated listeners read
   `GET /v1/users/{id}/recommendations?k=20&exclude=<every track they streamed>`.
5. **Offline baselines** (`benchmarks/baselines.py`) on the very same events, fitted on everything
   the stream saw (the best case of a nightly refit), tuned on a validation split of other listeners.
6. **Metrics** at 10 and 20: HR, NDCG, recall (relevance: the track's artist is held out, each
   held-out artist counted once), catalog coverage; and adaptation after a switch of taste.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
import tempfile
import time
import unicodedata
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import scipy.sparse as sp

from benchmarks import quality
from benchmarks.baselines import ALS, EASE, ItemKNN, Popularity, rank_items, spread_to_tracks
from benchmarks.common import command_line, stop_on_sigterm, tear_down
from benchmarks.flow_bench import BenchError
from encore.catalog_csv import read_spotify_csv
from encore.local import ManagedProcess
from schemas.tracks import Track

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LASTFM = REPO_ROOT.parent / "shared" / "data" / "lastfm-hetrec2011-2k"
DEFAULT_CATALOG = REPO_ROOT.parent / "shared" / "data" / "spotify-songs-tidytuesday" / "spotify_songs.csv"
DEFAULT_SEED = 7
DEFAULT_EVAL = 150
DEFAULT_STEPS = (1, 3, 5, 10)
MIN_ARTISTS = 5
HOLD_OUT = 5  # a fifth
KS = (10, 20)
DEPTH = 20
EVENT_WEIGHT = {"complete": 1.0, "like": 1.0}
"""What one event adds to a baseline's user x item matrix (the stream's positives)."""


# --------------------------------------------------------------------------------------------------
# Data: the join


_NON_WORD = re.compile(r"[\W_]+")


def normalise_artist(name: str) -> str:
    """The join key of an artist name: accents and case folded, `&` read as `and`, punctuation and
    spacing collapsed, a leading "the" dropped.

    >>> [normalise_artist(n) for n in ("The Beatles", "Beyoncé", "Simon & Garfunkel", "AC/DC", "  Ke$ha")]
    ['beatles', 'beyonce', 'simon and garfunkel', 'ac dc', 'ke ha']
    >>> normalise_artist("The The"), normalise_artist("Sigur Rós") == normalise_artist("sigur ros")
    ('the', True)
    """
    s = unicodedata.normalize("NFKD", name).casefold()
    s = "".join(c for c in s if not unicodedata.combining(c)).replace("&", " and ")
    s = _NON_WORD.sub(" ", s).strip()
    if s.startswith("the ") and len(s) > 4:
        s = s[4:]
    return s


def read_lastfm(directory: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """({artist id: name}, {user id: {artist id: play count}}) from HetRec's two .dat files."""
    names: dict[str, str] = {}
    with (directory / "artists.dat").open(encoding="utf-8", errors="replace", newline="") as handle:
        next(handle)
        for line in handle:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) >= 2:
                names[parts[0]] = parts[1]
    plays: dict[str, dict[str, float]] = {}
    with (directory / "user_artists.dat").open(encoding="utf-8", newline="") as handle:
        next(handle)
        for line in handle:
            parts = line.split()
            if len(parts) == 3:
                plays.setdefault(parts[0], {})[parts[1]] = float(parts[2])
    return names, plays


@dataclass
class Catalog:
    """The catalog's tracks with artist and genre indexes (artist = normalised name)."""

    tracks: list[Track]
    artist_keys: list[str]
    artist_of: np.ndarray  # track -> artist
    artist_tracks: list[np.ndarray]  # artist -> tracks, catalog order
    popularity: np.ndarray  # track -> catalog popularity (0 when missing)
    genre0: list[str]  # track -> first genre ("" when none)
    artist_index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, tracks: Sequence[Track]) -> Catalog:
        keys: dict[str, int] = {}
        artist_of = np.zeros(len(tracks), dtype=np.int64)
        for i, t in enumerate(tracks):
            artist_of[i] = keys.setdefault(normalise_artist(t.artist), len(keys))
        order = np.argsort(artist_of, kind="stable")
        bounds = np.searchsorted(artist_of[order], np.arange(len(keys) + 1))
        artist_tracks = [order[bounds[a]:bounds[a + 1]] for a in range(len(keys))]
        return cls(list(tracks), list(keys), artist_of, artist_tracks,
                   np.array([t.popularity or 0.0 for t in tracks]),
                   [t.genres[0] if t.genres else "" for t in tracks], keys)

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)

    @property
    def n_artists(self) -> int:
        return len(self.artist_keys)

    def track_to_artist(self) -> sp.csr_matrix:
        """tracks x artists indicator."""
        n = self.n_tracks
        return sp.csr_matrix((np.ones(n, dtype=np.float32), (np.arange(n), self.artist_of)),
                             shape=(n, self.n_artists))


def join(names: dict[str, str], plays: dict[str, dict[str, float]], catalog: Catalog,
         min_artists: int = MIN_ARTISTS) -> dict[str, dict[int, float]]:
    """{Last.fm user: {catalog artist: play count}} for users with at least `min_artists` catalog
    artists (Last.fm artists of one normalised name merged, their counts summed)."""
    key_of = {aid: catalog.artist_index.get(normalise_artist(name)) for aid, name in names.items()}
    out: dict[str, dict[int, float]] = {}
    for user, artists in plays.items():
        merged: dict[int, float] = {}
        for aid, weight in artists.items():
            a = key_of.get(aid)
            if a is not None and weight > 0:
                merged[a] = merged.get(a, 0.0) + weight
        if len(merged) >= min_artists:
            out[user] = merged
    return out


# --------------------------------------------------------------------------------------------------
# Listeners, events, split


@dataclass
class Listener:
    lastfm_id: str
    user_id: str
    artists: dict[int, float]  # catalog artist -> play count (all, held out included)
    held_out: list[int] = field(default_factory=list)  # artists never streamed (evaluated only)
    events: list[tuple[int, str]] = field(default_factory=list)  # (track, type), stream order
    genre: str = ""  # majority first genre of the streamed completes
    switch_to: int | None = None  # index (into the scenario's listeners) of the new taste's listener

    @property
    def evaluated(self) -> bool:
        return bool(self.held_out)

    def streamed_artists(self, catalog: Catalog) -> set[int]:
        return {int(catalog.artist_of[t]) for t, _ in self.events}


@dataclass
class Scenario:
    catalog: Catalog
    listeners: list[Listener]
    evaluated: list[int]  # indices into listeners
    seed: int
    joined: int  # listeners with >= MIN_ARTISTS catalog artists

    @property
    def n_events(self) -> int:
        return sum(len(lst.events) for lst in self.listeners)


def _listener_rng(seed: int, lastfm_id: str) -> np.random.Generator:
    key = int(lastfm_id) if lastfm_id.isdigit() else zlib.crc32(lastfm_id.encode())
    return np.random.default_rng([seed, key])


def tracks_per_artist(rank: int, n: int) -> int:
    """Completes of an artist at 0-based play-count rank `rank` of a listener's n artists: 3 in the
    top fifth, 2 in the top half, else 1.

    >>> [tracks_per_artist(r, 10) for r in range(10)]
    [3, 3, 2, 2, 2, 1, 1, 1, 1, 1]
    """
    return 1 + int(rank < n / 2) + int(rank < n / 5)


def listener_events(artists: dict[int, float], held_out: Iterable[int], catalog: Catalog,
                    rng: np.random.Generator) -> list[tuple[int, str]]:
    """The stream of one listener (see the module doc, step 2): held-out artists produce nothing."""
    order = sorted(artists, key=lambda a: (-artists[a], a))
    n = len(order)
    favourites = set(order[:max(1, round(n / 10))])
    skip = set(held_out)
    units: list[list[tuple[int, str]]] = []
    for rank, a in enumerate(order):
        if a in skip:
            continue
        tracks = catalog.artist_tracks[a]
        m = min(len(tracks), tracks_per_artist(rank, n))
        p = catalog.popularity[tracks] + 1.0
        chosen = rng.choice(tracks, size=m, replace=False, p=p / p.sum())
        for j, t in enumerate(chosen):
            unit = [(int(t), "complete")]
            if j == 0 and a in favourites:
                unit.append((int(t), "like"))
            units.append(unit)
    return [e for i in rng.permutation(len(units)) for e in units[i]]


def majority_genre(events: Sequence[tuple[int, str]], catalog: Catalog) -> str:
    votes = Counter(catalog.genre0[t] for t, kind in events if kind == "complete" and catalog.genre0[t])
    return min(votes, key=lambda g: (-votes[g], g)) if votes else ""


def make_scenario(joined: dict[str, dict[int, float]], catalog: Catalog, seed: int = DEFAULT_SEED,
                  n_eval: int = DEFAULT_EVAL, run_id: str = "x", max_listeners: int | None = None,
                  steps: Sequence[int] = DEFAULT_STEPS) -> Scenario:
    """Listeners (evaluated ones first), their held-out artists, events and taste switches."""
    rng = np.random.default_rng(seed)
    ids = sorted(joined, key=lambda u: (int(u) if u.isdigit() else math.inf, u))
    n_eval = min(n_eval, len(ids))
    eval_ids = [ids[i] for i in sorted(rng.choice(len(ids), size=n_eval, replace=False))]
    chosen = set(eval_ids)
    others = [u for u in ids if u not in chosen]
    if max_listeners is not None and max_listeners - n_eval < len(others):
        keep = max(0, max_listeners - n_eval)
        others = [others[i] for i in sorted(rng.choice(len(others), size=keep, replace=False))]
    listeners = []
    for lastfm_id in [*eval_ids, *others]:
        artists = joined[lastfm_id]
        lrng = _listener_rng(seed, lastfm_id)
        held: list[int] = []
        if lastfm_id in chosen:
            ordered = sorted(artists)
            held = sorted(int(a) for a in lrng.choice(ordered, size=len(ordered) // HOLD_OUT, replace=False))
        events = listener_events(artists, held, catalog, lrng)
        listeners.append(Listener(lastfm_id, f"lfm{run_id}-{lastfm_id}", artists, held, events,
                                  majority_genre(events, catalog)))
    evaluated = list(range(n_eval))
    need = max(steps, default=0)
    for i in evaluated:
        a = listeners[i]
        options = [j for j in evaluated if j != i and listeners[j].genre != a.genre
                   and len(listeners[j].events) >= need]
        if options:
            a.switch_to = int(options[rng.integers(len(options))])
    return Scenario(catalog, listeners, evaluated, seed, len(ids))


# --------------------------------------------------------------------------------------------------
# Matrices


def history_matrix(histories: Sequence[Sequence[tuple[int, str]]], n_tracks: int) -> sp.csr_matrix:
    """One row per history: summed EVENT_WEIGHT per track."""
    rows, cols, vals = [], [], []
    for r, events in enumerate(histories):
        for t, kind in events:
            w = EVENT_WEIGHT.get(kind, 0.0)
            if w:
                rows.append(r)
                cols.append(t)
                vals.append(w)
    return sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(histories), n_tracks))


# --------------------------------------------------------------------------------------------------
# Metrics


def list_metrics(ranked: Sequence[int], artist_of: np.ndarray, held_out: set[int],
                 k: int) -> dict[str, float]:
    """HR, NDCG and recall at k of one ranked track list; relevance: the track's artist is held out,
    each held-out artist counted once (a second track of it is not relevant).

    >>> artist_of = np.array([0, 0, 1, 2, 3])
    >>> m = list_metrics([0, 1, 2, 4], artist_of, {0, 3}, k=3)
    >>> m["hr"], round(m["ndcg"], 4), m["recall"]
    (1.0, 0.6131, 0.5)
    """
    found: set[int] = set()
    dcg = 0.0
    for r, t in enumerate(ranked[:k]):
        a = int(artist_of[t])
        if a in held_out and a not in found:
            found.add(a)
            dcg += 1.0 / math.log2(r + 2)
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(held_out))))
    return {"hr": float(bool(found)), "ndcg": dcg / ideal if ideal else 0.0,
            "recall": len(found) / min(k, len(held_out)) if held_out else 0.0}


def summarise(lists: dict[int, Sequence[int]], scenario: Scenario, ks: Sequence[int] = KS,
              keep: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Means over the evaluated listeners of HR/NDCG/recall at each k, and catalog coverage at each k;
    `keep` receives the per-listener values (`listener_values`)."""
    cat = scenario.catalog
    ranked = [lists[i] for i in scenario.evaluated]
    held = [set(scenario.listeners[i].held_out) for i in scenario.evaluated]
    per = listener_values(ranked, cat.artist_of, held, ks)
    if keep is not None:
        keep.update(per)
    out: dict[str, float] = {name: float(values.mean()) for name, values in per.items()}
    for k in ks:
        out[f"coverage@{k}"] = len({int(t) for lst in ranked for t in lst[:k]}) / cat.n_tracks
    return out


def listener_values(lists: Sequence[Sequence[int]], artist_of: np.ndarray, held_outs: Sequence[set[int]],
                    ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """`{"hr@k": values, ...}`: HR, NDCG and recall at each k of every listener's list, in order."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        per = [list_metrics(lst, artist_of, held, k) for lst, held in zip(lists, held_outs, strict=True)]
        for name in ("hr", "ndcg", "recall"):
            out[f"{name}@{k}"] = np.array([p[name] for p in per])
    return out


def paired_interval(a: np.ndarray, b: np.ndarray, seed: int = 0, rounds: int = 10_000,
                    level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a − b over the same listeners and its paired bootstrap interval (listeners resampled
    with replacement, `rounds` times).

    >>> paired_interval(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0]))[0]
    0.25
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(rounds, len(diff)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)


# --------------------------------------------------------------------------------------------------
# Offline methods on the stream's events


Recommend = Callable[[sp.csr_matrix, np.ndarray | None, bool, int], list[np.ndarray]]
"""(history rows at track level, their training rows or None, drop streamed artists, n) -> lists."""


class Offline:
    """Track and artist matrices of a set of histories, and the ranking helpers every method shares."""

    def __init__(self, catalog: Catalog, X_track: sp.csr_matrix) -> None:
        self.catalog = catalog
        self.T2A = catalog.track_to_artist()
        self.X_track = X_track
        self.X_artist = (X_track @ self.T2A).tocsr()
        self.track_listeners = np.asarray((X_track > 0).sum(axis=0)).ravel().astype(np.float64)
        self.artist_listeners = np.asarray((self.X_artist > 0).sum(axis=0)).ravel().astype(np.float64)
        # An artist's tracks, most streamed first (then catalog popularity, then catalog order).
        self.artist_best: list[np.ndarray] = []
        for tracks in catalog.artist_tracks:
            order = np.lexsort((tracks, -catalog.popularity[tracks], -self.track_listeners[tracks]))
            self.artist_best.append(tracks[order])
        self.track_tie = self.track_listeners + catalog.popularity / 1000.0

    def artist_rows(self, H: sp.csr_matrix) -> sp.csr_matrix:
        return (H @ self.T2A).tocsr()

    def _exclusions(self, H: sp.csr_matrix, r: int, drop_artists: bool) -> tuple[np.ndarray, np.ndarray]:
        played = H.indices[H.indptr[r]:H.indptr[r + 1]]
        artists = np.unique(self.catalog.artist_of[played])
        return played, artists if drop_artists else np.zeros(0, dtype=np.int64)

    def rank_tracks(self, scores: np.ndarray, H: sp.csr_matrix, drop_artists: bool,
                    n: int) -> list[np.ndarray]:
        out = []
        scores = np.atleast_2d(scores)
        for r in range(H.shape[0]):
            played, artists = self._exclusions(H, r, drop_artists)
            exclude = np.concatenate([played, *(self.catalog.artist_tracks[a] for a in artists)]) \
                if len(artists) else played
            out.append(rank_items(scores[r], exclude, n, self.track_tie))
        return out

    def rank_artists(self, scores: np.ndarray, H: sp.csr_matrix, drop_artists: bool,
                     n: int) -> list[np.ndarray]:
        out = []
        scores = np.atleast_2d(scores)
        for r in range(H.shape[0]):
            played, artists = self._exclusions(H, r, drop_artists)
            order = rank_items(scores[r], artists, max(4 * n, 64), self.artist_listeners)
            lst = spread_to_tracks(order, self.artist_best, set(played.tolist()), n)
            if len(lst) < n:  # short list (tiny catalog): every remaining artist by popularity
                order = rank_items(scores[r], artists, self.catalog.n_artists, self.artist_listeners)
                lst = spread_to_tracks(order, self.artist_best, set(played.tolist()), n)
            out.append(lst)
        return out


@dataclass
class OnStreamed:
    """A model fitted on the columns (items) that have at least one listener; scores of the others 0."""

    model: Popularity | ItemKNN | EASE | ALS
    cols: np.ndarray
    width: int

    @classmethod
    def fit(cls, model: Popularity | ItemKNN | EASE | ALS, X: sp.csr_matrix) -> OnStreamed:
        cols = np.flatnonzero(np.asarray((X > 0).sum(axis=0)).ravel())
        model.fit(X[:, cols].tocsr())
        return cls(model, cols, X.shape[1])

    def score(self, H: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        sub = H[:, self.cols].tocsr()
        s = self.model.score(sub, users) if isinstance(self.model, ALS) else self.model.score(sub)
        s = np.atleast_2d(s)
        out = np.zeros((H.shape[0], self.width))
        out[:, self.cols] = s
        return out


def method_table(off: Offline, params: dict[str, dict[str, object]]) -> dict[str, Recommend]:
    """The offline methods fitted on `off`'s matrices, with the given hyper-parameters by name."""
    methods: dict[str, Recommend] = {}
    pop_t = Popularity().fit(off.X_track)
    methods["track popularity"] = lambda H, u, d, n: off.rank_tracks(pop_t.score(H), H, d, n)
    pop_a = Popularity().fit(off.X_artist)
    methods["artist popularity"] = lambda H, u, d, n: off.rank_artists(
        pop_a.score(off.artist_rows(H)), H, d, n)
    for name in TUNED:
        methods[name] = fit_one(name, off, params.get(name, {}))
    return methods


TUNED = ("item-kNN, tracks", "item-kNN, artists", "EASE, artists", "EASE, tracks", "ALS, artists",
         "ALS, tracks")


def grids() -> dict[str, list[dict[str, object]]]:
    """The hyper-parameter grids searched (see docs/quality.md)."""
    knn = [{"alpha": a, "shrink": s, "neighbours": k, "weighted": w, "user_weight": g}
           for a in (0.1, 0.3, 0.5, 0.7, 0.9) for s in (0.0, 10.0, 50.0) for k in (None, 50, 200)
           for w in (False, True) for g in (0.0, 1.0)]
    return {
        "item-kNN, tracks": knn,
        "item-kNN, artists": knn,
        "EASE, artists": [{"lam": lam}
                          for lam in (5.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)],
        "EASE, tracks": [{"lam": lam} for lam in (20.0, 100.0, 500.0, 2000.0)],
        "ALS, artists": [{"factors": f, "regularization": r, "alpha": a, "log_values": lv}
                         for f in (16, 32, 64, 128) for r in (0.01, 0.1, 1.0) for a in (1.0, 5.0, 20.0, 50.0)
                         for lv in (False, True)],
        "ALS, tracks": [{"factors": f, "regularization": r, "alpha": a, "log_values": False}
                        for f in (32, 64, 128, 256) for r in (0.01, 0.1, 1.0)
                        for a in (5.0, 20.0, 50.0, 100.0)],
    }


def fit_one(name: str, off: Offline, p: dict[str, object]) -> Recommend:
    """One tuned method alone (for the grid search)."""
    model: ItemKNN | EASE | ALS
    if name.startswith("item-kNN"):
        model = ItemKNN(**p)  # type: ignore[arg-type]
    elif name.startswith("EASE"):
        model = EASE(**p)  # type: ignore[arg-type]
    else:
        model = ALS(**p)  # type: ignore[arg-type]
    if name.endswith("tracks"):
        fitted = OnStreamed.fit(model, off.X_track)
        return lambda H, u, d, n: off.rank_tracks(fitted.score(H, u), H, d, n)
    fitted = OnStreamed.fit(model, off.X_artist)
    return lambda H, u, d, n: off.rank_artists(fitted.score(off.artist_rows(H), u), H, d, n)


@dataclass
class Split:
    """Listeners scored against held-out artists, on a training matrix that never saw them."""

    train: Offline
    rows: np.ndarray  # training rows of the scored listeners
    held_out: list[set[int]]
    histories: list[list[tuple[int, str]]] = field(default_factory=list)  # every listener's training events

    def history(self) -> sp.csr_matrix:
        return self.train.X_track[self.rows]

    def evaluate(self, recommend: Recommend, drop_artists: bool, ks: Sequence[int] = KS,
                 keep: dict[str, np.ndarray] | None = None) -> dict[str, float]:
        """Means over the split's listeners (`summarise`'s metrics); `keep` receives the per-listener
        values."""
        lists = recommend(self.history(), self.rows, drop_artists, max(ks))
        artist_of = self.train.catalog.artist_of
        per = listener_values(lists, artist_of, self.held_out, ks)
        if keep is not None:
            keep.update(per)
        out: dict[str, float] = {name: float(values.mean()) for name, values in per.items()}
        for k in ks:
            out[f"coverage@{k}"] = len({int(t) for lst in lists for t in lst[:k]}) / artist_of.shape[0]
        return out


def evaluation_split(scenario: Scenario) -> Split:
    histories = [lst.events for lst in scenario.listeners]
    X = history_matrix(histories, scenario.catalog.n_tracks)
    return Split(Offline(scenario.catalog, X), np.array(scenario.evaluated),
                 [set(scenario.listeners[i].held_out) for i in scenario.evaluated], histories)


def validation_split(scenario: Scenario, n: int, seed: int) -> Split:
    """For tuning: `n` listeners that are not evaluated lose a fifth of their streamed artists (drawn
    with `seed`) from the training matrix; those artists are their held-out set."""
    rng = np.random.default_rng([seed, 1])
    pool = [i for i, lst in enumerate(scenario.listeners)
            if not lst.evaluated and len(lst.streamed_artists(scenario.catalog)) >= MIN_ARTISTS]
    chosen = sorted(int(i) for i in rng.choice(pool, size=min(n, len(pool)), replace=False))
    histories = [lst.events for lst in scenario.listeners]
    held: list[set[int]] = []
    cat = scenario.catalog
    for i in chosen:
        artists = sorted(scenario.listeners[i].streamed_artists(cat))
        out = {int(a) for a in rng.choice(artists, size=len(artists) // HOLD_OUT, replace=False)}
        held.append(out)
        histories[i] = [(t, kind) for t, kind in histories[i] if int(cat.artist_of[t]) not in out]
    return Split(Offline(cat, history_matrix(histories, cat.n_tracks)), np.array(chosen), held, histories)


def tune(val: Split, metric: str = "ndcg@20", say: Callable[[str], None] = print,
         methods: Sequence[str] = TUNED) -> tuple[dict[bool, dict[str, dict[str, object]]], dict[str, list]]:
    """Grid search on the validation split, for each exclusion rule (streamed artists kept / dropped):
    ({drop: {method: best params}}, {method: [(params, {drop: metrics})]})."""
    best: dict[bool, dict[str, dict[str, object]]] = {False: {}, True: {}}
    trials: dict[str, list] = {}
    for name in methods:
        grid = grids()[name]
        t0 = time.perf_counter()
        results = []
        for p in grid:
            recommend = fit_one(name, val.train, p)
            results.append((p, {d: val.evaluate(recommend, d) for d in (False, True)}))
        trials[name] = results
        for d in (False, True):
            top = max(results, key=lambda pr: (pr[1][d][metric], pr[1][d]["hr@20"]))
            best[d][name] = top[0]
            rule = "streamed artists dropped" if d else "all artists"
            say(f"  tuned {name} ({rule}): {len(grid)} settings, "
                f"{time.perf_counter() - t0:.0f}s; best {top[0]} ({metric} {top[1][d][metric]:.3f}, "
                f"HR@20 {top[1][d]['hr@20']:.3f})")
    return best, trials


# --------------------------------------------------------------------------------------------------
# Adaptation


def adaptation_metrics(ranked: Sequence[int], new: Listener, catalog: Catalog,
                       k: int = 10) -> dict[str, float]:
    """Shares of the top k: artist in the new taste's held-out set; first genre is the new taste's
    genre; genres contain it."""
    top = [int(t) for t in ranked[:k]]
    held = set(new.held_out)
    return {
        "b_artists": sum(int(catalog.artist_of[t]) in held for t in top) / k,
        "b_genre0": sum(catalog.genre0[t] == new.genre for t in top) / k,
        "b_genre": sum(new.genre in catalog.tracks[t].genres for t in top) / k,
    }


def switch_histories(scenario: Scenario, step: int) -> tuple[list[int], list[list[tuple[int, str]]]]:
    """(switching listeners, their histories after `step` events of the new taste)."""
    who = [i for i in scenario.evaluated if scenario.listeners[i].switch_to is not None]
    out = []
    for i in who:
        a = scenario.listeners[i]
        b = scenario.listeners[a.switch_to]  # type: ignore[index]
        out.append([*a.events, *b.events[:step]])
    return who, out


NEW_STREAM = "(new stream's own tracks)"
"""A reference row, not a method: the shares among the first n events of the new taste themselves.
A Last.fm listener plays several genres, so even their own latest tracks are not all in their
majority genre; a list that followed them exactly would score this."""


def new_stream_shares(scenario: Scenario, steps: Sequence[int]) -> dict[int, dict[str, float]]:
    """{step: shares}: `adaptation_metrics` of the new taste's first `step` tracks (per listener, as
    a list of that length), averaged over the switching listeners."""
    who = [i for i in scenario.evaluated if scenario.listeners[i].switch_to is not None]
    out: dict[int, dict[str, float]] = {}
    for step in steps:
        per = []
        for i in who:
            new = scenario.listeners[scenario.listeners[i].switch_to]  # type: ignore[index]
            tracks = list(dict.fromkeys(t for t, _ in new.events[:step]))
            per.append(adaptation_metrics(tracks, new, scenario.catalog, k=len(tracks)))
        if per:
            out[step] = {m: float(np.mean([p[m] for p in per])) for m in per[0]}
    return out


def offline_adaptation(scenario: Scenario, methods: dict[str, Recommend], off: Offline,
                       steps: Sequence[int], k: int = 10) -> dict[int, dict[str, dict[str, float]]]:
    """{step: {method: mean shares}}; histories folded in (no refit), played tracks excluded."""
    out: dict[int, dict[str, dict[str, float]]] = {}
    for step in steps:
        who, histories = switch_histories(scenario, step)
        H = history_matrix(histories, scenario.catalog.n_tracks)
        out[step] = {}
        for name, recommend in methods.items():
            lists = recommend(H, None, False, k)
            per = [adaptation_metrics(lst, scenario.listeners[scenario.listeners[i].switch_to],  # type: ignore[index]
                                      scenario.catalog, k)
                   for lst, i in zip(lists, who, strict=True)]
            out[step][name] = {m: float(np.mean([p[m] for p in per])) for m in per[0]} if per else {}
    return out


# --------------------------------------------------------------------------------------------------
# Encore through the stack


@dataclass
class StackResult:
    lists: dict[int, list[int]]  # evaluated listener -> API top DEPTH (streamed tracks excluded)
    deep: dict[int, list[int]]  # evaluated listener -> API top 100 (streamed tracks excluded)
    raw: dict[int, list[int]]  # evaluated listener -> API top DEPTH without `exclude`
    adaptation: dict[int, dict[int, list[int]]]  # step -> switching listener -> API top 10
    seconds: dict[str, float]
    variants: dict[str, tuple[dict[int, list[int]], dict[int, list[int]]]] = field(default_factory=dict)
    """--variants: name -> (lists, deep) read from an API ranking with that variant's overrides."""


def _read(stack: quality.Stack, asks: dict[int, tuple[str, int, list[str], int]],
          index: dict[str, int]) -> dict[int, list[int]]:
    """{listener: (user id, k, excluded track ids, expected version)} -> {listener: catalog indices}."""
    def one(item: tuple[int, tuple[str, int, list[str], int]]) -> tuple[int, list[int]]:
        i, (user, k, exclude, version) = item
        with httpx.Client(timeout=60) as http:
            r = http.get(f"{stack.api}/v1/users/{user}/recommendations", params={"k": k, "exclude": exclude})
        if r.status_code != 200:
            raise BenchError(f"GET recommendations for {user}: {r.status_code} {r.text[:200]}")
        body = r.json()
        if body["profile_version"] < version:
            raise BenchError(f"{user}: profile_version {body['profile_version']} < {version}")
        return i, [index[item["track_id"]] for item in body["items"] if item["track_id"] in index]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, asks.items()))


def run_stack(scenario: Scenario, catalog_csv: Path, run_id: str, steps: Sequence[int],
              progress: bool, say: Callable[[str], None],
              variants: dict[str, dict[str, object]] | None = None) -> StackResult:
    """Every listener's events through Kafka, the flow and the API; read the evaluated listeners."""
    t0 = time.perf_counter()
    cat = scenario.catalog
    ids = [t.track_id for t in cat.tracks]
    index = {tid: i for i, tid in enumerate(ids)}
    listeners = scenario.listeners
    switching = [i for i in scenario.evaluated if listeners[i].switch_to is not None]
    n_adapt = sum(max(steps, default=0) for _ in switching)
    bar = quality.Progress(scenario.n_events + n_adapt, enabled=progress)
    workdir = Path(tempfile.mkdtemp(prefix="encore-lastfm-"))
    processes: list[ManagedProcess] = []
    ok = False
    seconds: dict[str, float] = {}
    try:
        stack = quality.start_stack(workdir, catalog_csv, run_id, processes, say)
        seconds["stack start + catalog"] = time.perf_counter() - t0
        bootstrap = stack.settings.require_kafka()
        t1 = time.perf_counter()
        quality.produce(bootstrap, stack.topics.events, [
            (lst.user_id.encode(), quality.event(run_id, lst.user_id, s, ids[t], kind))
            for lst in listeners for s, (t, kind) in enumerate(lst.events)])
        version = {lst.user_id: len(lst.events) for lst in listeners}
        quality.wait_versions(stack, version, bar, "stream", 0, scenario.n_events)
        seconds["stream (produce + flow)"] = time.perf_counter() - t1
        say(f"\nstream: {scenario.n_events:,} events of {len(listeners):,} listeners applied in "
            f"{seconds['stream (produce + flow)']:.0f}s")
        time.sleep(quality.SETTLE_S)  # the track- and artist-keyed steps trail the profiles
        t2 = time.perf_counter()
        played = {i: [ids[t] for t in dict.fromkeys(t for t, _ in listeners[i].events)]
                  for i in scenario.evaluated}

        def asks(k: int, exclude: bool = True) -> dict[int, tuple[str, int, list[str], int]]:
            return {i: (listeners[i].user_id, k, played[i] if exclude else [], version[listeners[i].user_id])
                    for i in scenario.evaluated}

        lists = _read(stack, asks(DEPTH), index)
        deep = _read(stack, asks(quality.MAX_API_K), index)
        raw = _read(stack, asks(DEPTH, exclude=False), index)
        seconds["reads"] = time.perf_counter() - t2
        read_variants: dict[str, tuple[dict[int, list[int]], dict[int, list[int]]]] = {}
        for name, overrides in (variants or {}).items():
            t = time.perf_counter()
            alt = quality.start_variant_api(stack, name, overrides, workdir / "logs")
            read_variants[name] = (_read(alt, asks(DEPTH), index), _read(alt, asks(quality.MAX_API_K), index))
            alt.serve.stop()
            say(f"variant {name}: read in {time.perf_counter() - t:.0f}s")
        adaptation: dict[int, dict[int, list[int]]] = {}
        sent = 0
        done = scenario.n_events
        t3 = time.perf_counter()
        for step in sorted(set(steps)):
            messages = []
            for i in switching:
                a, b = listeners[i], listeners[listeners[i].switch_to]  # type: ignore[index]
                for s in range(sent, step):
                    t, kind = b.events[s]
                    messages.append((a.user_id.encode(), quality.event(run_id, a.user_id, len(a.events) + s,
                                                                       ids[t], kind)))
                    if ids[t] not in played[i]:
                        played[i].append(ids[t])
                    version[a.user_id] += 1
            quality.produce(bootstrap, stack.topics.events, messages)
            quality.wait_versions(stack, {listeners[i].user_id: version[listeners[i].user_id]
                                          for i in switching},
                                  bar, f"adaptation, {step} event(s)", done, len(messages))
            done += len(messages)
            adaptation[step] = _read(stack, {i: (listeners[i].user_id, 10, played[i],
                                                 version[listeners[i].user_id]) for i in switching}, index)
            sent = step
        seconds["adaptation"] = time.perf_counter() - t3
        bar.close()
        ok = True
        return StackResult(lists, deep, raw, adaptation, seconds, read_variants)
    finally:
        tear_down(processes, workdir, finished=ok)



# --------------------------------------------------------------------------------------------------
# The benchmark

BASELINES = ("track popularity", "artist popularity", *TUNED)
TUNED_DEFAULTS: dict[bool, dict[str, dict[str, object]]] = {
    False: {  # rule A: streamed tracks excluded
        "item-kNN, tracks": {"alpha": 0.7, "shrink": 0.0, "neighbours": None, "weighted": True},
        "item-kNN, artists": {"alpha": 0.1, "shrink": 50.0, "neighbours": None, "weighted": True,
                              "user_weight": 1.0},
        "EASE, artists": {"lam": 500.0},
        "EASE, tracks": {"lam": 100.0},
        "ALS, artists": {"factors": 16, "regularization": 1.0, "alpha": 20.0, "log_values": False},
        "ALS, tracks": {"factors": 32, "regularization": 0.01, "alpha": 20.0, "log_values": False},
    },
    True: {  # rule B: streamed artists excluded
        "item-kNN, tracks": {"alpha": 0.3, "shrink": 10.0, "neighbours": None, "weighted": False,
                             "user_weight": 1.0},
        "item-kNN, artists": {"alpha": 0.5, "shrink": 10.0, "neighbours": 200, "weighted": True,
                              "user_weight": 1.0},
        "EASE, artists": {"lam": 50.0},
        "EASE, tracks": {"lam": 20.0},
        "ALS, artists": {"factors": 32, "regularization": 0.1, "alpha": 5.0, "log_values": False},
        "ALS, tracks": {"factors": 64, "regularization": 0.01, "alpha": 20.0, "log_values": False},
    },
}
"""What `tune` chose on the default run (seed 7, validation split, NDCG@20), used unless --tune:
{drop streamed artists: {method: parameters}}. Values at a grid edge were checked one step further
(ALS artists A: 8 factors, regularization 3 and 10, alpha 50; EASE tracks B: lambda 5 and 10): no better.
item-kNN's `user_weight` (γ of the inverse user frequency) joined the grid in the fifth pass; its artists'
winner in rule A sits at the α and shrink edges: α 0.05, shrink 100 and γ 1.5 read within 0.001 NDCG@20 of
it or worse on the validation split, so the grid's winner stands (docs/quality.md, "Fifth pass")."""


@dataclass
class Results:
    continuation: dict[bool, dict[str, dict[str, float]]]  # drop streamed artists -> method -> metrics
    adaptation: dict[int, dict[str, dict[str, float]]]  # step -> method -> shares
    params: dict[bool, dict[str, dict[str, object]]]
    tuned: bool
    scenario: Scenario
    seconds: dict[str, float]
    encore_short: float = 0.0  # Encore's mean list length after dropping streamed artists (of 20)
    per_listener: dict[bool, dict[str, dict[str, np.ndarray]]] = field(
        default_factory=lambda: {False: {}, True: {}})
    """drop streamed artists -> method -> metric -> values per evaluated listener (`listener_values`)."""


Metrics = dict[str, float]


PerListener = dict[str, np.ndarray]
"""metric -> values per evaluated listener (`listener_values`)."""


def encore_results(scenario: Scenario, res: StackResult) -> tuple[
        dict[bool, dict[str, Metrics]], float, dict[int, dict[str, Metrics]], dict[bool, PerListener]]:
    """Continuation metrics of Encore (and its variants), its mean list length in rule B, adaptation
    shares, and Encore's per-listener values in each rule."""
    cat = scenario.catalog

    def drop_streamed(deep: dict[int, list[int]]) -> dict[int, list[int]]:
        drop: dict[int, list[int]] = {}
        for i in scenario.evaluated:
            known = scenario.listeners[i].streamed_artists(cat)
            drop[i] = [t for t in deep[i] if int(cat.artist_of[t]) not in known][:DEPTH]
        return drop

    drop = drop_streamed(res.deep)
    encore_per: dict[bool, PerListener] = {False: {}, True: {}}
    cont = {False: {"Encore": summarise(res.lists, scenario, keep=encore_per[False]),
                    "Encore, no exclude= (raw)": summarise(res.raw, scenario)},
            True: {"Encore": summarise(drop, scenario, keep=encore_per[True])}}
    for name, (lists, deep) in res.variants.items():
        cont[False][f"Encore [{name}]"] = summarise(lists, scenario)
        cont[True][f"Encore [{name}]"] = summarise(drop_streamed(deep), scenario)
    short = float(np.mean([len(v) for v in drop.values()]))
    adapt: dict[int, dict[str, dict[str, float]]] = {}
    for step, lists in res.adaptation.items():
        who, histories = switch_histories(scenario, step)
        per: dict[str, list[dict[str, float]]] = {"Encore": [], "Encore before the switch": []}
        for i, history in zip(who, histories, strict=True):
            new = scenario.listeners[scenario.listeners[i].switch_to]  # type: ignore[index]
            seen = {t for t, _ in history}
            per["Encore"].append(adaptation_metrics(lists[i], new, cat))
            per["Encore before the switch"].append(
                adaptation_metrics([t for t in res.deep[i] if t not in seen], new, cat))
        adapt[step] = {m: {x: float(np.mean([p[x] for p in v])) for x in v[0]} for m, v in per.items() if v}
    return cont, short, adapt, encore_per


def run(lastfm: Path, catalog_csv: Path, seed: int = DEFAULT_SEED, n_eval: int = DEFAULT_EVAL,
        max_listeners: int | None = None, steps: Sequence[int] = DEFAULT_STEPS, offline_only: bool = False,
        tune_params: bool = False, progress: bool = True, say: Callable[[str], None] = print,
        baselines: bool = True, variants: dict[str, dict[str, object]] | None = None) -> Results:
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    run_id = uuid.uuid4().hex[:8]
    catalog = Catalog.of(read_spotify_csv(catalog_csv))
    names, plays = read_lastfm(lastfm)
    joined = join(names, plays, catalog)
    scenario = make_scenario(joined, catalog, seed, n_eval, run_id, max_listeners, steps)
    seconds["data"] = time.perf_counter() - t0
    say(f"{catalog.n_tracks:,} catalog tracks, {catalog.n_artists:,} artists; {len(plays):,} Last.fm users, "
        f"{len(joined):,} with >= {MIN_ARTISTS} catalog artists; {len(scenario.listeners):,} listeners, "
        f"{len(scenario.evaluated)} evaluated (seed {seed}), {scenario.n_events:,} events")
    t1 = time.perf_counter()
    params = TUNED_DEFAULTS
    if tune_params:
        params, _ = tune(validation_split(scenario, n_eval, seed), say=say)
    seconds["tuning"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    ev = evaluation_split(scenario)
    continuation: dict[bool, dict[str, dict[str, float]]] = {False: {}, True: {}}
    adaptation: dict[int, dict[str, dict[str, float]]] = {step: {} for step in steps}
    per_listener: dict[bool, dict[str, dict[str, np.ndarray]]] = {False: {}, True: {}}
    if baselines:
        table = {d: method_table(ev.train, params[d]) for d in (False, True)}
        for d in (False, True):
            for name in BASELINES:
                keep: dict[str, np.ndarray] = {}
                continuation[d][name] = ev.evaluate(table[d][name], d, keep=keep)
                per_listener[d][name] = keep
        adaptation = offline_adaptation(scenario, table[False], ev.train, steps)
    seconds["baselines"] = time.perf_counter() - t2
    results = Results(continuation, adaptation, params, tune_params, scenario, seconds,
                      per_listener=per_listener)
    if not offline_only:
        res = run_stack(scenario, catalog_csv, run_id, steps, progress, say, variants)
        seconds.update(res.seconds)
        cont, results.encore_short, adapt, encore_per = encore_results(scenario, res)
        for d in (False, True):
            results.per_listener[d]["Encore"] = encore_per[d]
        for d in (False, True):
            results.continuation[d] = {**cont[d], **results.continuation[d]}
        for step in adaptation:
            adaptation[step] = {**adapt.get(step, {}), **adaptation[step]}
    for step, shares in new_stream_shares(scenario, steps).items():
        adaptation.setdefault(step, {})[NEW_STREAM] = shares
    seconds["total"] = time.perf_counter() - t0
    return results


def _fmt_params(p: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in p.items()) or "defaults"


GAP_METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")


def gap_lines(results: Results, drop_artists: bool) -> list[str]:
    """Encore against the best baseline of each metric, paired over the same listeners: is a gap
    larger than what the listeners drawn would move it?"""
    per = results.per_listener[drop_artists]
    encore = per.get("Encore")
    rivals = {name: values for name, values in per.items() if name != "Encore"}
    if not encore or not rivals:
        return []
    lines = ["  Encore − the best baseline of each metric, mean over the same listeners and its 95 % "
             "paired bootstrap interval:"]
    for metric in GAP_METRICS:
        best = max(rivals, key=lambda name: float(rivals[name][metric].mean()))
        mean, low, high = paired_interval(encore[metric], rivals[best][metric])
        lines.append(f"    {metric.upper():<8} {mean:+.3f} [{low:+.3f}, {high:+.3f}] against {best}")
    return lines


def report(results: Results, args: argparse.Namespace, command: str) -> str:
    sc = results.scenario
    cols = ("hr@10", "ndcg@10", "recall@10", "hr@20", "ndcg@20", "recall@20", "coverage@10", "coverage@20")
    lines = [
        "=" * 110,
        f"Encore quality benchmark, Last.fm scenario, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: {command}",
        f"  data        {args.lastfm} joined to {args.data} ({sc.catalog.n_tracks:,} tracks)",
        f"  listeners   {len(sc.listeners):,} (of {sc.joined:,} with >= {MIN_ARTISTS} catalog artists), "
        f"{len(sc.evaluated)} evaluated (seed {sc.seed}), "
        f"{np.mean([len(sc.listeners[i].held_out) for i in sc.evaluated]):.1f} held-out artists each; "
        f"{sc.n_events:,} events",
        f"  machine     {platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}",
        "  runtime     " + ", ".join(f"{k} {v:.0f}s" for k, v in results.seconds.items()),
        f"  tuning      {'in this run, ' if results.tuned else 'recorded (--tune to redo), '}on a validation "
        f"split of {DEFAULT_EVAL} other listeners, by NDCG@20",
    ]
    for d, title in ((False, "streamed tracks excluded (tracks of streamed artists may be recommended; "
                              "they are not hits)"),
                     (True, "streamed artists excluded (every method drops tracks of artists the listener "
                            "streamed)")):
        lines += ["", f"Held-out artists, {title}",
                  f"  {'method':<26}" + "".join(f"{c.upper().replace('COVERAGE', 'Cov'):>11}" for c in cols)]
        for method, m in results.continuation[d].items():
            lines.append(f"  {method:<26}" + "".join(f"{m[c]:>11.3f}" for c in cols))
        if d and "Encore" in results.continuation[d]:
            lines.append(f"  (Encore: its top 100, minus streamed artists; {results.encore_short:.1f} tracks "
                         f"left of {DEPTH} on average)")
        lines += gap_lines(results, d)
    lines += ["", "Hyper-parameters, " + ("tuned in this run on the validation split" if results.tuned
                                          else "as tuned on the validation split of seed 7 (TUNED_DEFAULTS)")]
    for d in (False, True):
        for name in TUNED:
            lines.append(f"  {name:<20}{'artists dropped' if d else 'tracks excluded':<18}"
                         f"{_fmt_params(results.params[d].get(name, {}))}")
    if results.adaptation:
        lines += ["", "Adaptation: an evaluated listener switches to another evaluated listener's stream "
                  "(other majority genre), after n events of it; top 10, streamed tracks excluded"]
        for metric, title in (("b_artists", "share of the top 10 whose artist is in the new listener's "
                                            "held-out artists"),
                              ("b_genre0", "share of the top 10 whose first genre is the new listener's "
                                           "majority genre"),
                              ("b_genre", "share of the top 10 whose genres contain it")):
            lines += ["", f"  {title}",
                      f"  {'method':<26}" + "".join(f"{f'n={s}':>9}" for s in results.adaptation)]
            methods = next(iter(results.adaptation.values())).keys()
            for method in methods:
                # The new stream's own artists are streamed, never held out: no figure.
                blank = method == NEW_STREAM and metric == "b_artists"
                cells = ("-" if blank else f"{p[method][metric]:.3f}" for p in results.adaptation.values())
                lines.append(f"  {method:<26}" + "".join(f"{cell:>9}" for cell in cells))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="encore bench quality --scenario lastfm",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lastfm", type=Path, default=DEFAULT_LASTFM,
                        help="directory of the HetRec 2011 Last.fm files (user_artists.dat, artists.dat)")
    parser.add_argument("--data", type=Path, default=DEFAULT_CATALOG, help="Spotify songs CSV (the catalog)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--eval-listeners", type=int, default=DEFAULT_EVAL,
                        help="listeners with held-out artists")
    parser.add_argument("--listeners", type=int, default=None,
                        help="at most this many listeners in all (default: every joined listener)")
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                        help="events of the new taste after which adaptation is measured")
    parser.add_argument("--offline-only", action="store_true", help="baselines only, no stack")
    parser.add_argument("--tune", action="store_true",
                        help="tune the baselines on a validation split first (about 5 min; default: the "
                             "hyper-parameters that tuning chose for seed 7, TUNED_DEFAULTS)")
    parser.add_argument("--encore-only", action="store_true",
                        help="skip the offline baselines (for ablation runs of Encore alone; the tables "
                             "then have Encore's rows only)")
    parser.add_argument("--variants", type=Path, default=None,
                        help="ablations in one run: a JSON file {name: ranking overrides}; after the "
                             "default API's reads, an API per variant ranks on the same Redis, and each "
                             "gets its rows (\"Encore [name]\")")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(",") if s.strip()]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    command = command_line("benchmarks.lastfm", argv)
    print(f"$ {command}", flush=True)
    for path in (args.lastfm / "user_artists.dat", args.lastfm / "artists.dat", args.data):
        if not path.exists():
            print(f"no such file: {path}", file=sys.stderr)
            return 2
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        results = run(args.lastfm, args.data, args.seed, args.eval_listeners, args.listeners, args.steps,
                      args.offline_only, args.tune, not args.no_progress,
                      say=lambda s: print(s, flush=True), baselines=not args.encore_only,
                      variants=quality.load_variants(args.variants))
    except BenchError as exc:
        print(f"encore bench quality: {exc}", file=sys.stderr)
        return 1
    print(report(results, args, command), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
