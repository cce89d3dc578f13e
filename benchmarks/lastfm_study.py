"""Design study for the flow's collaborative memory, offline, on the Last.fm scenario's split.

    .venv/bin/python -m benchmarks.lastfm_study [--lastfm DIR] [--data CSV] [--seed S] [--quick]

What could a *streaming* item-item memory achieve, and with which bounds? Everything here is pure
numpy / Python on the same events and split as `benchmarks.lastfm` (see docs/quality.md, "Last.fm
scenario", "Design study"):

(a) **Exact** item-item cosine `c(i, j) / sqrt(n(i) n(j))` over listeners' whole positive histories,
    at artist and at track level (c = listeners with both, n = listeners of each).
(b) **Incremental**: the stream is replayed in event-time order (every listener's first event, then
    every listener's second, ...); each listener keeps a bounded long-term positive history (the last
    `H` distinct items, FIFO); a positive on an item not in the history adds 1 to c(i, j) and c(j, i)
    for every j in it and 1 to n(i); every `BATCH` events (the flow's batch) each touched row is
    trimmed to its `M` largest raw counts (ties: lower item index evicted first, as Redis's
    `ZREMRANGEBYRANK` does with equal scores and member order). At read time the cosine is
    `c(i, j) / sqrt(n(i) n(j))` from the bounded row and the in-memory listener counts.
    Also "exact, top M": the exact rows truncated to their M largest counts (what bounding costs
    without the streaming order).
(c) **Scoring** from the whole positive history: `s_A(b) = sum_a w(a) sim_A(a, b)` over the listener's
    artists, `s_T(t) = sum_i w(i) sim_T(i, t)` over their tracks (w: binary, event sum or log1p of
    it), each divided by its maximum over the listener's candidates; a track scores
    `s_A(artist(t)) + beta s_T(t) + gamma pop(t)` (pop = log1p(stream listeners) / log1p(max)) and the
    list takes one track per artist first (round robin by the artists' best tracks). The mix weights
    are tuned on the validation split (other listeners), then read once on the evaluated listeners.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks.baselines import binarize, spread_to_tracks
from benchmarks.lastfm import (
    DEFAULT_CATALOG,
    DEFAULT_EVAL,
    DEFAULT_LASTFM,
    DEFAULT_SEED,
    EVENT_WEIGHT,
    TUNED_DEFAULTS,
    Catalog,
    Offline,
    Recommend,
    Split,
    adaptation_metrics,
    evaluation_split,
    fit_one,
    history_matrix,
    join,
    make_scenario,
    read_lastfm,
    summarise,
    switch_histories,
    validation_split,
)
from encore.catalog_csv import read_spotify_csv

BATCH = 1000


# --------------------------------------------------------------------------------------------------
# (a) and (b): similarity rows


def exact_counts(X: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """(co-listener counts without the diagonal, listener counts) of a user x item matrix."""
    B = binarize(X)
    C = (B.T @ B).tocsr()
    C.setdiag(0.0)
    C.eliminate_zeros()
    return C, np.asarray(B.sum(axis=0)).ravel().astype(np.float64)


def top_m_rows(C: sp.csr_matrix, m: int | None) -> sp.csr_matrix:
    """Each row's m largest counts (ties: the higher item index kept, like the streaming trim)."""
    if m is None:
        return C
    C = C.tocsr()
    indptr, indices, data = [0], [], []
    for r in range(C.shape[0]):
        lo, hi = C.indptr[r], C.indptr[r + 1]
        cols, vals = C.indices[lo:hi], C.data[lo:hi]
        if len(vals) > m:
            keep = np.lexsort((-cols, -vals))[:m]
            cols, vals = cols[keep], vals[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(cols))
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=C.shape)


def cosine(C: sp.csr_matrix, n: np.ndarray) -> sp.csr_matrix:
    """c(i, j) / sqrt(n(i) n(j)) on the stored entries of C."""
    coo = C.tocoo()
    vals = coo.data / np.sqrt(np.maximum(n[coo.row], 1.0) * np.maximum(n[coo.col], 1.0))
    return sp.csr_matrix((vals, (coo.row, coo.col)), shape=C.shape)


@dataclass
class StreamStats:
    entries: int  # stored (i, j) counts after the last trim
    max_row: int
    peak_entries: int  # largest total just before a trim
    increments: int
    seconds: float


def stream_counts(histories: Sequence[Sequence[tuple[int, str]]], item_of: np.ndarray, n_items: int,
                  history_cap: int | None, row_cap: int | None,
                  batch: int = BATCH) -> tuple[sp.csr_matrix, np.ndarray, StreamStats]:
    """(b): the bounded incremental memory after the whole stream (see the module doc)."""
    t0 = time.perf_counter()
    rows: list[dict[int, int]] = [{} for _ in range(n_items)]
    n = np.zeros(n_items, dtype=np.float64)
    longest = max((len(h) for h in histories), default=0)
    hist: list[list[int]] = [[] for _ in histories]
    member: list[set[int]] = [set() for _ in histories]
    touched: set[int] = set()
    increments = 0
    seen = 0
    peak = 0

    def trim() -> None:
        nonlocal peak
        peak = max(peak, sum(len(r) for r in rows)) if row_cap is not None else peak
        if row_cap is None:
            return
        for i in touched:
            row = rows[i]
            if len(row) > row_cap:
                drop = sorted(row.items(), key=lambda kv: (kv[1], kv[0]))[: len(row) - row_cap]
                for j, _ in drop:
                    del row[j]
        touched.clear()

    for pos in range(longest):  # event-time order: every listener's pos-th event
        for u, events in enumerate(histories):
            if pos >= len(events):
                continue
            t, kind = events[pos]
            if EVENT_WEIGHT.get(kind, 0.0) <= 0:
                continue
            i = int(item_of[t])
            seen += 1
            if i not in member[u]:
                row_i = rows[i]
                for j in hist[u]:
                    row_i[j] = row_i.get(j, 0) + 1
                    row_j = rows[j]
                    row_j[i] = row_j.get(i, 0) + 1
                    touched.add(j)
                increments += 2 * len(hist[u])
                touched.add(i)
                n[i] += 1
                hist[u].append(i)
                member[u].add(i)
                if history_cap is not None and len(hist[u]) > history_cap:
                    member[u].discard(hist[u].pop(0))
            if seen % batch == 0:
                trim()
    trim()
    r_idx, c_idx, vals = [], [], []
    for i, row in enumerate(rows):
        if row:
            r_idx.extend([i] * len(row))
            c_idx.extend(row.keys())
            vals.extend(row.values())
    C = sp.csr_matrix((np.array(vals, dtype=np.float64), (r_idx, c_idx)), shape=(n_items, n_items))
    stats = StreamStats(C.nnz, max((len(r) for r in rows), default=0), max(peak, C.nnz), increments,
                        time.perf_counter() - t0)
    return C, n, stats


# --------------------------------------------------------------------------------------------------
# (c): scoring


def weights(H: sp.csr_matrix, how: str) -> sp.csr_matrix:
    W = sp.csr_matrix(H, dtype=np.float64, copy=True)
    if how == "binary":
        W.data[:] = 1.0
    elif how == "log":
        W.data = np.log1p(W.data)
    return W


def _normalise_rows(S: np.ndarray) -> np.ndarray:
    top = S.max(axis=1, keepdims=True)
    return S / np.where(top > 0, top, 1.0)


def mixed(off: Offline, sim_artist: sp.csr_matrix | None, sim_track: sp.csr_matrix | None,
          beta: float = 0.0, gamma: float = 0.0, weighting: str = "events") -> Recommend:
    """(c): `s_A(artist(t)) + beta s_T(t) + gamma pop(t)`, one track per artist first."""
    cat = off.catalog
    pop = np.log1p(off.track_listeners) / np.log1p(max(off.track_listeners.max(), 1.0))
    tie = off.track_tie / max(off.track_tie.max(), 1.0)

    def recommend(H: sp.csr_matrix, _users: np.ndarray | None, drop: bool, n: int) -> list[np.ndarray]:
        score = np.zeros((H.shape[0], cat.n_tracks))
        if sim_artist is not None:
            sa = _normalise_rows(np.asarray((weights(off.artist_rows(H), weighting) @ sim_artist).todense()))
            score += sa[:, cat.artist_of]
        if sim_track is not None and (beta or sim_artist is None):
            st = _normalise_rows(np.asarray((weights(H, weighting) @ sim_track).todense()))
            score += (beta if sim_artist is not None else 1.0) * st
        if gamma:
            score += gamma * pop
        score += 1e-6 * tie
        out = []
        for r in range(H.shape[0]):
            s = score[r]
            played = H.indices[H.indptr[r]:H.indptr[r + 1]]
            s[played] = -np.inf
            if drop:
                for a in np.unique(cat.artist_of[played]):
                    s[cat.artist_tracks[a]] = -np.inf
            top = np.argpartition(-s, 2000)[:2000]
            top = top[np.argsort(-s[top], kind="stable")]
            top = top[np.isfinite(s[top])]
            artists: dict[int, list[int]] = {}
            for t in top:
                artists.setdefault(int(cat.artist_of[t]), []).append(int(t))
            order = np.array(list(artists), dtype=np.int64)
            per = [np.zeros(0, dtype=np.int64)] * cat.n_artists
            for a, ts in artists.items():
                per[a] = np.array(ts)
            out.append(spread_to_tracks(order, per, set(), n))
        return out

    return recommend


# --------------------------------------------------------------------------------------------------
# The study


@dataclass
class Row:
    variant: str
    metrics: dict[bool, dict[str, float]]
    entries: int | None = None
    note: str = ""


def evaluate_both(split: Split, recommend: Recommend) -> dict[bool, dict[str, float]]:
    return {d: split.evaluate(recommend, d) for d in (False, True)}


@dataclass(frozen=True)
class Scoring:
    """How a listener's history is turned into scores (c): history weights, each history item's row
    divided by its largest similarity (`row_max`), history items weighted by n(i)^-idf, and the
    track-level and popularity terms of the mix."""

    weighting: str = "binary"
    row_max: bool = False
    idf: float = 0.0
    beta: float = 0.0
    gamma: float = 0.0

    def label(self) -> str:
        parts = [f"w={self.weighting}"]
        if self.row_max:
            parts.append("row/max")
        if self.idf:
            parts.append(f"n(i)^-{self.idf}")
        if self.beta:
            parts.append(f"+{self.beta} tracks")
        if self.gamma:
            parts.append(f"+{self.gamma} pop")
        return ", ".join(parts)


def prepare(S: sp.csr_matrix, n: np.ndarray, scoring: Scoring) -> sp.csr_matrix:
    """Row scaling of a similarity matrix: 1 / max of the row (row_max) and n(i)^-idf."""
    scale = np.maximum(n, 1.0) ** (-scoring.idf)
    if scoring.row_max:
        top = np.asarray(S.max(axis=1).todense()).ravel()
        scale = scale / np.where(top > 0, top, 1.0)
    return (sp.diags(scale) @ S).tocsr()


def recommender(off: Offline, artist: tuple[sp.csr_matrix, np.ndarray] | None,
                track: tuple[sp.csr_matrix, np.ndarray] | None, scoring: Scoring) -> Recommend:
    sa = prepare(*artist, scoring) if artist is not None else None
    st = prepare(*track, scoring) if track is not None and (scoring.beta or artist is None) else None
    return mixed(off, sa, st, scoring.beta, scoring.gamma, scoring.weighting)


def tune_scoring(val: Split, artist: tuple[sp.csr_matrix, np.ndarray],
                 track: tuple[sp.csr_matrix, np.ndarray], drop: bool,
                 metric: str = "ndcg@20") -> tuple[Scoring, Scoring, float, float]:
    """Two stages on the validation split: the artist scorer (weights, row/max, idf), then the mix with
    tracks and popularity. Returns (stage-1 best, stage-2 best, their validation metric)."""
    def value(sc: Scoring) -> float:
        m = val.evaluate(recommender(val.train, artist, track, sc), drop)
        return m[metric] + 1e-3 * m["hr@20"]

    stage1 = [Scoring(w, rm, idf) for w in ("binary", "events") for rm in (False, True)
              for idf in (0.0, 0.25, 0.5)]
    v1, best1 = max((value(sc), sc) for sc in stage1)
    stage2 = [Scoring(best1.weighting, best1.row_max, best1.idf, b, g)
              for b in (0.0, 0.1, 0.25, 0.5) for g in (0.0, 0.05, 0.1, 0.2)]
    v2, best2 = max((value(sc), sc) for sc in stage2)
    return best1, best2, v1, v2


def run(lastfm: Path, catalog_csv: Path, seed: int, n_eval: int, quick: bool,
        say: Callable[[str], None]) -> list[Row]:
    catalog = Catalog.of(read_spotify_csv(catalog_csv))
    names, plays = read_lastfm(lastfm)
    scenario = make_scenario(join(names, plays, catalog), catalog, seed, n_eval, "study")
    ev, val = evaluation_split(scenario), validation_split(scenario, DEFAULT_EVAL, seed)
    say(f"{len(scenario.listeners):,} listeners, {len(ev.rows)} evaluated, {len(val.rows)} for validation, "
        f"{scenario.n_events:,} events")
    rows: list[Row] = []
    t_cat = np.arange(catalog.n_tracks)

    def exact(split: Split, level: str, m: int | None = None) -> tuple[sp.csr_matrix, np.ndarray, int]:
        C, n = exact_counts(split.train.X_artist if level == "artist" else split.train.X_track)
        C = top_m_rows(C, m)
        return cosine(C, n), n, C.nnz

    def streamed(split: Split, level: str, h: int | None,
                 m: int | None) -> tuple[sp.csr_matrix, np.ndarray, int, StreamStats]:
        item_of, n_items = (catalog.artist_of, catalog.n_artists) if level == "artist" \
            else (t_cat, catalog.n_tracks)
        C, n, stats = stream_counts(split.histories, item_of, n_items, h, m)
        return cosine(C, n), n, C.nnz, stats

    def add(row: Row) -> None:
        rows.append(row)
        say(_line(row))

    # Reference: the tuned offline baselines of benchmarks.lastfm (TUNED_DEFAULTS, per rule).
    for name in ("EASE, artists", "item-kNN, artists", "ALS, artists"):
        params = (TUNED_DEFAULTS[False][name], TUNED_DEFAULTS[True][name])
        metrics = {d: ev.evaluate(fit_one(name, ev.train, params[d]), d) for d in (False, True)}
        add(Row(f"reference: {name} (tuned per rule)", metrics, note=f"A {params[0]}, B {params[1]}"))

    # (a) exact cosine, plain scoring (binary history, sum of similarities).
    sa_ev, na_ev, nnz_a = exact(ev, "artist")
    st_ev, nt_ev, nnz_t = exact(ev, "track")
    sa_val, na_val, _ = exact(val, "artist")
    st_val, nt_val, _ = exact(val, "track")
    plain = Scoring()
    add(Row("(a) exact cosine, artists, plain sum", evaluate_both(ev, recommender(
        ev.train, (sa_ev, na_ev), None, plain)), nnz_a))
    add(Row("(a) exact cosine, tracks, plain sum", evaluate_both(ev, recommender(
        ev.train, None, (st_ev, nt_ev), plain)), nnz_t))

    # (c) scoring, tuned on validation per rule, on the exact memories.
    chosen: dict[bool, tuple[Scoring, Scoring]] = {}
    for d in (False, True):
        b1, b2, v1, v2 = tune_scoring(val, (sa_val, na_val), (st_val, nt_val), d)
        chosen[d] = (b1, b2)
        rule = "B" if d else "A"
        add(Row(f"(c) exact artists, {b1.label()} [tuned for {rule}]",
                evaluate_both(ev, recommender(ev.train, (sa_ev, na_ev), (st_ev, nt_ev), b1)), nnz_a,
                note=f"validation {rule} NDCG@20 {v1:.3f}"))
        add(Row(f"(c) exact artists + tracks, {b2.label()} [tuned for {rule}]",
                evaluate_both(ev, recommender(ev.train, (sa_ev, na_ev), (st_ev, nt_ev), b2)),
                nnz_a + (nnz_t if b2.beta else 0), note=f"validation {rule} NDCG@20 {v2:.3f}"))

    def both(recommend_for: Callable[[bool], Recommend]) -> dict[bool, dict[str, float]]:
        return {d: ev.evaluate(recommend_for(d), d) for d in (False, True)}

    # (b) bounds: exact rows cut to M, and the streaming memory, each scored with the rule's stage-1
    # scorer (artists) or the same scorer on tracks alone.
    caps_h = (64, 256) if not quick else (64,)
    caps_m = (50, 100, 200, 400) if not quick else (50, 200)
    for level in ("artist", "track"):
        def scorer(sim: sp.csr_matrix, n: np.ndarray, level: str = level) -> Callable[[bool], Recommend]:
            if level == "artist":
                return lambda d: recommender(ev.train, (sim, n), None, chosen[d][0])
            return lambda d: recommender(ev.train, None, (sim, n), chosen[d][0])
        for m in caps_m:
            sim, n, nnz = exact(ev, level, m)
            add(Row(f"(b) {level}s, exact rows cut to top M={m}", both(scorer(sim, n)), nnz))
        for h in (*((16,) if level == "track" else ()), *caps_h):
            for m in (*caps_m, None):
                sim, n, nnz, stats = streamed(ev, level, h, m)
                add(Row(f"(b) {level}s, streaming H={h}, M={m or 'inf'}", both(scorer(sim, n)), nnz,
                        note=f"peak {stats.peak_entries:,}, max row {stats.max_row}, "
                             f"{stats.increments:,} increments, {stats.seconds:.0f}s"))

    # (c) the whole design on streaming memories: bounded artist and track rows, the tuned mix.
    for h, ma, mt in ((256, 100, 100), (256, 200, 100), (256, 200, 200), (64, 100, 50), (256, 400, 400)):
        sa, na, nnz_as, _ = streamed(ev, "artist", h, ma)
        st, nt, nnz_ts, _ = streamed(ev, "track", h, mt)
        add(Row(f"(c) streaming H={h}: artists M={ma} + tracks M={mt}, stage-2 mix of the rule",
                both(lambda d, sa=sa, na=na, st=st, nt=nt: recommender(ev.train, (sa, na), (st, nt),
                                                                      chosen[d][1])),
                nnz_as + nnz_ts,
                note=f"artist rows {nnz_as:,}, track rows {nnz_ts:,} (used only with beta > 0)"))
    for d in (False, True):
        say(f"chosen for rule {'B' if d else 'A'}: stage 1 {chosen[d][0]}, stage 2 {chosen[d][1]}")

    # (d) recency: history weights decayed by the events since (half-life in events), on the exact
    # artist memory with rule A's stage-1 scorer; continuation, then adaptation after a taste switch.
    sc_a = chosen[False][0]
    if sc_a.weighting != "events":
        sc_a = Scoring("events", sc_a.row_max, sc_a.idf)
    for half_life in (None, 100.0, 40.0, 20.0, 10.0, 5.0):
        def rec(d: bool, hl: float | None = half_life) -> Recommend:
            base = recommender(ev.train, (sa_ev, na_ev), None, sc_a if not d else
                               Scoring("events", chosen[d][0].row_max, chosen[d][0].idf))

            def recommend(_H: sp.csr_matrix, users: np.ndarray | None, drop: bool,
                          n: int) -> list[np.ndarray]:
                rows_ = [scenario.listeners[int(u)].events for u in users]  # type: ignore[union-attr]
                return base(recency_matrix(rows_, catalog.n_tracks, hl), users, drop, n)
            return recommend
        metrics = {d: ev.evaluate(rec(d), d) for d in (False, True)}
        shares = []
        base_a = recommender(ev.train, (sa_ev, na_ev), None, sc_a)
        for step in (1, 3, 5, 10):
            who, histories = switch_histories(scenario, step)
            lists = base_a(recency_matrix(histories, catalog.n_tracks, half_life), None, False, 10)
            per = [adaptation_metrics(lst, scenario.listeners[scenario.listeners[i].switch_to],  # type: ignore[index]
                                      catalog) for lst, i in zip(lists, who, strict=True)]
            shares.append(float(np.mean([p["b_genre0"] for p in per])))
        add(Row(f"(d) exact artists, {sc_a.label()}, recency half-life {half_life or 'inf'} events", metrics,
                nnz_a, note="adaptation, first genre = new: " + " / ".join(f"{x:.2f}" for x in shares)))

    # (e) a session term: the last `last` positives weigh `lam` times more (on top of the decayed
    # long-term weights); same memory and scorer as (d).
    base_a = recommender(ev.train, (sa_ev, na_ev), None, sc_a)
    base_b = recommender(ev.train, (sa_ev, na_ev), None,
                         Scoring("events", chosen[True][0].row_max, chosen[True][0].idf))
    for last, lam, half_life in ((3, 3.0, None), (3, 10.0, None), (3, 3.0, 20.0), (3, 10.0, 20.0),
                                 (5, 10.0, 20.0)):
        hist = [scenario.listeners[i].events for i in scenario.evaluated]
        H = session_matrix(hist, catalog.n_tracks, last, lam, half_life)
        metrics = {}
        for d, base in ((False, base_a), (True, base_b)):
            lists = base(H, None, d, 20)
            metrics[d] = summarise(dict(zip(scenario.evaluated, lists, strict=True)), scenario)
        shares = []
        for step in (1, 3, 5, 10):
            who, histories = switch_histories(scenario, step)
            lists = base_a(session_matrix(histories, catalog.n_tracks, last, lam, half_life), None, False, 10)
            per = [adaptation_metrics(lst, scenario.listeners[scenario.listeners[i].switch_to],  # type: ignore[index]
                                      catalog) for lst, i in zip(lists, who, strict=True)]
            shares.append(float(np.mean([p["b_genre0"] for p in per])))
        add(Row(f"(e) as (d), half-life {half_life or 'inf'}, last {last} positives x{lam:g}", metrics, nnz_a,
                note="adaptation, first genre = new: " + " / ".join(f"{x:.2f}" for x in shares)))
    return rows


def session_matrix(histories: Sequence[Sequence[tuple[int, str]]], n_tracks: int, last: int, lam: float,
                   half_life: float | None) -> sp.csr_matrix:
    """`recency_matrix` plus lam x the weights of each history's last `last` events."""
    H = recency_matrix(histories, n_tracks, half_life)
    recent = [list(events[-last:]) for events in histories]
    return (H + lam * history_matrix(recent, n_tracks)).tocsr()


def recency_matrix(histories: Sequence[Sequence[tuple[int, str]]], n_tracks: int,
                   half_life: float | None) -> sp.csr_matrix:
    """Like `history_matrix`, each event's weight multiplied by 0.5^(events after it / half_life)."""
    rows, cols, vals = [], [], []
    for r, events in enumerate(histories):
        last = len(events) - 1
        for pos, (t, kind) in enumerate(events):
            w = EVENT_WEIGHT.get(kind, 0.0)
            if w:
                rows.append(r)
                cols.append(t)
                vals.append(w * (0.5 ** ((last - pos) / half_life) if half_life else 1.0))
    return sp.csr_matrix((np.array(vals), (rows, cols)), shape=(len(histories), n_tracks))


def _line(row: Row) -> str:
    a, b = row.metrics.get(False, {}), row.metrics.get(True, {})
    cells = []
    for m in (a, b):
        keys = ("hr@10", "hr@20", "ndcg@20", "recall@20")
        cells.append(" ".join(f"{m.get(k, float('nan')):.3f}" for k in keys))
    mem = f"{row.entries:,}" if row.entries is not None else "-"
    return f"{row.variant:<70} A {cells[0]} | B {cells[1]} | {mem} {row.note}"


def report(rows: Sequence[Row]) -> str:
    head = (f"{'variant':<70} {'rule A: HR@10 HR@20 NDCG@20 R@20':<34}"
            f"| {'rule B: HR@10 HR@20 NDCG@20 R@20':<34}| entries")
    return "\n".join([head, *(_line(r) for r in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.lastfm_study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lastfm", type=Path, default=DEFAULT_LASTFM)
    parser.add_argument("--data", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--eval-listeners", type=int, default=DEFAULT_EVAL)
    parser.add_argument("--quick", action="store_true", help="fewer bounds")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = run(args.lastfm, args.data, args.seed, args.eval_listeners, args.quick,
               lambda s: print(s, flush=True))
    print()
    print(report(rows))
    print(f"\n{time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
