"""Do strong collaborative baselines beat the tuned item-kNN / EASE (artists) on the Last.fm scenario?

    .venv/bin/python -m benchmarks.lastfm_neighbours [--quick] [--out JSON]

Offline (no stack), about 4 minutes on one core; docs/quality.md, "Fifth pass", has its figures. They
were read against the references' TUNED_DEFAULTS of that time, before item-kNN's `user_weight` joined
its grid; the "item-kNN + 1/deg(u)" row below is what made it join, so a run today compares that row
with an item-kNN reference that already has it.

Methods (all at artist level, ranked with `Offline.rank_artists`, as "item-kNN, artists"):

- RP3beta (Paudel et al. 2016): W[i, j] = sum_u P_iu[i, u]^a P_ui[u, j]^a / N_j^beta
  = N_i^-a * sum_{u in i, j} deg(u)^-a / N_j^beta  (binary data), zero diagonal, rows cut to top-K.
- "RP3beta, w(u)=1": the same without the listener-degree factor (ablation: popularity exponents only),
  W[i, j] = N_i^-a * c(i, j) / N_j^beta.
- item-kNN + 1/deg(u)^gamma: ItemKNN's asymmetric cosine on the weighted co-occurrence
  C_w(i, j) = sum_u deg(u)^-gamma b_ui b_uj, denominators N_i^alpha N_j^(1-alpha) + shrink (unweighted N).
- user-kNN: cosine between listeners' artist sets, top-K neighbours (self excluded), sim^p,
  artists scored by the neighbours' summed votes.

Protocol = `benchmarks.lastfm.tune`: each method's grid on the validation split (NDCG@20, then HR@20),
each rule separately; read once on the evaluated listeners; compared with "item-kNN, artists" and
"EASE, artists" at TUNED_DEFAULTS, paired bootstrap (`paired_interval`) of new - best-of-two per metric.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp

from benchmarks.baselines import _top_per_row, binarize
from benchmarks.lastfm import (
    DEFAULT_CATALOG,
    DEFAULT_EVAL,
    DEFAULT_LASTFM,
    DEFAULT_SEED,
    TUNED_DEFAULTS,
    Catalog,
    Offline,
    Recommend,
    Split,
    evaluation_split,
    fit_one,
    join,
    make_scenario,
    paired_interval,
    read_lastfm,
    tune,
    validation_split,
)
from encore.catalog_csv import read_spotify_csv

METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")
REFS = ("item-kNN, artists", "EASE, artists")


# --------------------------------------------------------------------------------------------------
# Models (fitted on the streamed columns of the artist matrix; see OnStreamed in benchmarks.lastfm)


def _streamed(X: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
    cols = np.flatnonzero(np.asarray((X > 0).sum(axis=0)).ravel())
    return cols, binarize(X[:, cols].tocsr())


def rp3beta_matrix(B: sp.csr_matrix, alpha: float, beta: float, k: int | None,
                   user_weight: bool = True) -> sp.csr_matrix:
    """Row-stochastic walk item -> user -> item, values ^alpha, column j / N_j^beta, top-k per row."""
    deg = np.asarray(B.sum(axis=1)).ravel()
    N = np.asarray(B.sum(axis=0)).ravel()
    Pui = sp.csr_matrix(B, dtype=np.float64, copy=True)
    if user_weight:
        Pui = sp.diags(np.where(deg > 0, deg, 1.0) ** -alpha) @ Pui  # (b_uj / deg u)^alpha
    Piu = (sp.diags(np.where(N > 0, N, 1.0) ** -alpha) @ B.T.astype(np.float64)).tocsr()  # (b_ui / N_i)^a
    W = (Piu @ Pui).tocsr()
    W = (W @ sp.diags(np.where(N > 0, N, 1.0) ** -beta)).tocsr()
    W.setdiag(0.0)
    W.eliminate_zeros()
    if k is not None:
        W = _top_per_row(W, k)
    return W


def weighted_knn_matrix(B: sp.csr_matrix, alpha: float, shrink: float, neighbours: int | None,
                        gamma: float) -> sp.csr_matrix:
    deg = np.asarray(B.sum(axis=1)).ravel()
    N = np.asarray(B.sum(axis=0)).ravel().astype(np.float64)
    C = (B.T.astype(np.float64) @ sp.diags(np.where(deg > 0, deg, 1.0) ** -gamma) @ B).tocsr()
    C.setdiag(0.0)
    C.eliminate_zeros()
    C = C.tocoo()
    denom = N[C.row] ** alpha * N[C.col] ** (1.0 - alpha) + shrink
    S = sp.csr_matrix((C.data / denom, (C.row, C.col)), shape=C.shape)
    if neighbours is not None:
        S = _top_per_row(S, neighbours)
    return S


def item_recommender(off: Offline, build: Callable[[sp.csr_matrix], sp.csr_matrix],
                     weighted: bool) -> Recommend:
    cols, B = _streamed(off.X_artist)
    W = build(B)
    width = off.catalog.n_artists

    def recommend(H: sp.csr_matrix, _users: np.ndarray | None, d: bool, n: int) -> list[np.ndarray]:
        Ha = off.artist_rows(H)[:, cols].tocsr().astype(np.float64)
        if not weighted:
            Ha = binarize(Ha)
        s = np.asarray((Ha @ W).todense())
        out = np.zeros((H.shape[0], width))
        out[:, cols] = s
        return off.rank_artists(out, H, d, n)

    return recommend


def rp3beta(off: Offline, p: dict) -> Recommend:
    return item_recommender(off, lambda B: rp3beta_matrix(B, p["alpha"], p["beta"], p["k"],
                                                          p.get("user_weight", True)), p["weighted"])


def knn_weighted(off: Offline, p: dict) -> Recommend:
    return item_recommender(off, lambda B: weighted_knn_matrix(B, p["alpha"], p["shrink"], p["neighbours"],
                                                               p["gamma"]), p["weighted"])


def user_knn(off: Offline, p: dict) -> Recommend:
    cols, B = _streamed(off.X_artist)
    Bd = B.astype(np.float64)
    deg = np.asarray(B.sum(axis=1)).ravel()
    width = off.catalog.n_artists
    k, expo, shrink = p["k"], p["exponent"], p["shrink"]

    def recommend(H: sp.csr_matrix, users: np.ndarray | None, d: bool, n: int) -> list[np.ndarray]:
        Hb = binarize(off.artist_rows(H)[:, cols].tocsr()).astype(np.float64)
        dh = np.asarray(Hb.sum(axis=1)).ravel()
        S = np.asarray((Hb @ Bd.T).todense())
        S /= np.sqrt(np.maximum(dh, 1.0))[:, None] * np.sqrt(np.maximum(deg, 1.0))[None, :] + shrink
        if users is not None:
            S[np.arange(len(users)), users] = 0.0  # never one's own training row
        if k < S.shape[1]:
            kth = np.argpartition(-S, k - 1, axis=1)[:, :k]
            T = np.zeros_like(S)
            rows = np.arange(S.shape[0])[:, None]
            T[rows, kth] = S[rows, kth]
            S = T
        S = S ** expo
        s = (sp.csr_matrix(S) @ Bd).toarray()
        out = np.zeros((H.shape[0], width))
        out[:, cols] = s
        return off.rank_artists(out, H, d, n)

    return recommend


def grids(quick: bool) -> dict[str, tuple[Callable[[Offline, dict], Recommend], list[dict]]]:
    rp3 = [{"alpha": a, "beta": b, "k": k, "weighted": w}
           for a in (0.5, 1.0) for b in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7) for k in (None, 100, 200)
           for w in (False, True)]
    rp3_nouser = [{**p, "user_weight": False} for p in rp3]
    alphas = (0.3, 0.5, 0.7) if quick else (0.1, 0.3, 0.5, 0.7, 0.9)
    knn = [{"alpha": a, "shrink": s, "neighbours": k, "weighted": w, "gamma": g}
           for g in (0.25, 0.5, 1.0) for a in alphas for s in (0.0, 10.0, 50.0) for k in (None, 50, 200)
           for w in (False, True)]
    uknn = [{"k": k, "exponent": e, "shrink": s} for k in (20, 50, 100, 200) for e in (1.0, 2.0)
            for s in (0.0, 5.0)]
    return {
        "RP3beta, artists": (rp3beta, rp3),
        "RP3beta w(u)=1, artists": (rp3beta, rp3_nouser),
        "item-kNN/deg^g, artists": (knn_weighted, knn),
        "user-kNN, artists": (user_knn, uknn),
    }


def tune_new(val: Split, quick: bool, say: Callable[[str], None]) -> tuple[dict, dict]:
    """{drop: {method: best params}}, {drop: {method: validation metrics of the best}} (as `tune`)."""
    best: dict[bool, dict] = {False: {}, True: {}}
    vals: dict[bool, dict] = {False: {}, True: {}}
    for name, (factory, grid) in grids(quick).items():
        t0 = time.perf_counter()
        results = []
        for p in grid:
            rec = factory(val.train, p)
            results.append((p, {d: val.evaluate(rec, d) for d in (False, True)}))
        for d in (False, True):
            top = max(results, key=lambda pr: (pr[1][d]["ndcg@20"], pr[1][d]["hr@20"]))
            best[d][name], vals[d][name] = top[0], top[1][d]
            say(f"  tuned {name} (rule {'B' if d else 'A'}): {len(grid)} settings, "
                f"{time.perf_counter() - t0:.0f}s; best {top[0]} (NDCG@20 {top[1][d]['ndcg@20']:.4f}, "
                f"HR@20 {top[1][d]['hr@20']:.4f})")
    return best, vals


def factory_of(name: str, quick: bool) -> Callable[[Offline, dict], Recommend]:
    return grids(quick)[name][0]


def read(ev: Split, new_params: dict, ref_params: dict, quick: bool) -> dict:
    """{drop: {method: (means, per-listener)}} on the evaluated listeners."""
    out: dict[bool, dict] = {False: {}, True: {}}
    for d in (False, True):
        for name in REFS:
            keep: dict[str, np.ndarray] = {}
            means = ev.evaluate(fit_one(name, ev.train, ref_params[d][name]), d, keep=keep)
            out[d][name] = (means, keep)
        for name, p in new_params[d].items():
            keep = {}
            means = ev.evaluate(factory_of(name, quick)(ev.train, p), d, keep=keep)
            out[d][name] = (means, keep)
    return out


def table(label: str, res: dict, lines: list[str]) -> dict:
    summary: dict = {}
    for d in (False, True):
        rule = "B (streamed artists dropped)" if d else "A (streamed tracks excluded)"
        lines += ["", f"{label}, rule {rule}",
                  f"  {'method':<26}" + "".join(f"{m.upper():>10}" for m in METRICS)]
        for name, (means, _) in res[d].items():
            lines.append(f"  {name:<26}" + "".join(f"{means[m]:>10.4f}" for m in METRICS))
        lines.append("  new - best of (item-kNN, EASE) per metric, paired 95% bootstrap:")
        summary[d] = {}
        for name, (_, per) in res[d].items():
            if name in REFS:
                continue
            cells = []
            summary[d][name] = {}
            for m in METRICS:
                ref = max(REFS, key=lambda r: float(res[d][r][1][m].mean()))
                mean, lo, hi = paired_interval(per[m], res[d][ref][1][m])
                flag = "*" if lo > 0 or hi < 0 else " "
                against = "kNN" if "kNN" in ref else "EASE"
                cells.append(f"{m}: {mean:+.4f} [{lo:+.4f},{hi:+.4f}]{flag} vs {against}")
                summary[d][name][m] = (mean, lo, hi, ref)
            lines.append(f"    {name:<24} " + " | ".join(cells))
    return summary


def self_test() -> None:
    """RP3beta against the explicit formula on a small random matrix."""
    rng = np.random.default_rng(0)
    X = (rng.random((30, 12)) < 0.3).astype(np.float32)
    X[:, 0] = 1
    B = sp.csr_matrix(X)
    a, b = 0.7, 0.4
    W = rp3beta_matrix(B, a, b, None).toarray()
    deg, N = X.sum(1), X.sum(0)
    ref = np.zeros((12, 12))
    for i in range(12):
        for j in range(12):
            if i != j:
                ref[i, j] = sum((X[u, i] / N[i]) ** a * (X[u, j] / deg[u]) ** a
                                for u in range(30) if deg[u]) / N[j] ** b
    assert np.allclose(W, ref), "rp3beta formula"
    Wk = weighted_knn_matrix(B, 0.5, 0.0, None, 1.0).toarray()
    refk = np.zeros((12, 12))
    for i in range(12):
        for j in range(12):
            if i != j:
                both = sum(X[u, i] * X[u, j] / deg[u] for u in range(30) if deg[u])
                refk[i, j] = both / np.sqrt(N[i] * N[j])
    assert np.allclose(Wk, refk), "weighted knn formula"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "lastfm_neighbours.json")
    args = parser.parse_args(argv)
    say = lambda s: print(s, flush=True)  # noqa: E731
    self_test()
    t0 = time.perf_counter()
    catalog = Catalog.of(read_spotify_csv(DEFAULT_CATALOG))
    names, plays = read_lastfm(DEFAULT_LASTFM)
    joined = join(names, plays, catalog)
    lines: list[str] = []
    dump: dict = {}

    # 150 evaluated listeners (the default run): tune new methods on its validation split.
    sc150 = make_scenario(joined, catalog, args.seed, DEFAULT_EVAL, "rp3")
    val150 = validation_split(sc150, DEFAULT_EVAL, args.seed)
    say(f"tuning on the validation split of the default scenario ({len(val150.rows)} listeners)")
    new150, valm150 = tune_new(val150, args.quick, say)
    # For reference: the baselines' validation scores at TUNED_DEFAULTS (same split they were tuned on).
    for d in (False, True):
        for name in REFS:
            m = val150.evaluate(fit_one(name, val150.train, TUNED_DEFAULTS[d][name]), d)
            valm150[d][name] = m
            say(f"  validation {name} rule {'B' if d else 'A'} at TUNED_DEFAULTS: NDCG@20 {m['ndcg@20']:.4f}")
    lines += ["Validation split (150 non-evaluated listeners of the default scenario), NDCG@20 / HR@20 of "
              "each method's chosen setting:"]
    for d in (False, True):
        for name, m in valm150[d].items():
            lines.append(f"  rule {'B' if d else 'A'} {name:<26} {m['ndcg@20']:.4f} / {m['hr@20']:.4f}   "
                         f"{new150[d].get(name, TUNED_DEFAULTS[d].get(name))}")
    ev150 = evaluation_split(sc150)
    dump["150"] = table("150 evaluated listeners (seed 7), TUNED_DEFAULTS / new tuned on its validation",
                        read(ev150, new150, TUNED_DEFAULTS, args.quick), lines)

    # 300 evaluated listeners, recorded parameters (what `benchmarks.lastfm --eval-listeners 300` runs).
    sc300 = make_scenario(joined, catalog, args.seed, 300, "rp3")
    ev300 = evaluation_split(sc300)
    dump["300"] = table("300 evaluated listeners (seed 7), same parameters as the 150 run",
                        read(ev300, new150, TUNED_DEFAULTS, args.quick), lines)

    # 300, everything retuned on that scenario's own validation split (`--eval-listeners 300 --tune`).
    val300 = validation_split(sc300, 300, args.seed)
    say(f"retuning on the validation split of the 300 scenario ({len(val300.rows)} listeners)")
    new300, _ = tune_new(val300, args.quick, say)
    ref300, _ = tune(val300, say=say, methods=REFS)
    lines += ["", "Retuned on the 300 scenario's validation split:"]
    for d in (False, True):
        for name in REFS:
            lines.append(f"  rule {'B' if d else 'A'} {name:<26} {ref300[d][name]}")
        for name, p in new300[d].items():
            lines.append(f"  rule {'B' if d else 'A'} {name:<26} {p}")
    dump["300 retuned"] = table("300 evaluated listeners (seed 7), everything retuned on its validation",
                                read(ev300, new300, ref300, args.quick), lines)

    print("\n".join(lines))
    print(f"\n{time.perf_counter() - t0:.0f}s")
    args.out.write_text(json.dumps({"params150": {str(d): v for d, v in new150.items()},
                                    "params300": {str(d): v for d, v in new300.items()},
                                    "ref300": {str(d): v for d, v in ref300.items()},
                                    "gaps": {k: {str(d): v for d, v in s.items()} for k, s in dump.items()}},
                                   indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
