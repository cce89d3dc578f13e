"""CPU of the collaborative step for a listener with 32 full seed rows, in process (no Redis).

    PYTHONPATH=<tree> .venv/bin/python -m benchmarks.collab_cpu [-n N] [--rows 100]

Over the real 28k catalog: 32 seed artists with tanh weights, each with a row of
`--rows` partners as Redis replies them (RESP2: flat members and scores as bytes; a few partners no
catalog track has), listeners for every artist. Timed per request, as serving does it: the rows
from the reply to the scores and the "via" seeds (the listeners' cache already built, as serving
keeps it), then the `similar_artists` source over them. Runs on trees before the columnar step
(`decode_neighbours` + the dict `artist_scores`) and after (`scores_at`), so two trees can be
compared back to back; both print a checksum of the scores, which must agree.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.serve_bench import DEFAULT_DATA
from encore.catalog_csv import read_spotify_csv
from ranking import collaborative
from ranking.catalog_view import CatalogView
from ranking.config import RankingConfig
from ranking.pipeline import RecommendRequest
from ranking.sources.base import Signals, SourceContext
from ranking.sources.similar_artists import propose
from schemas.profile_codec import UserProfile

Memory = tuple[dict[str, float], dict[str, Any], dict[bytes, float]]
"""Seed weights, their rows as Redis replies them, listeners per UTF-8 name."""


def replies(view: CatalogView, n_seeds: int, n_rows: int, seed: int = 7) -> Memory:
    rng = np.random.default_rng(seed)
    names = [a for a in view.index.artist_names if a]
    others = [f"not in the catalog {i}" for i in range(200)]
    everyone = names + others
    listeners = {a.encode(): float(rng.integers(1, 400)) for a in everyone}
    chosen = [names[i] for i in rng.choice(len(names), n_seeds, replace=False)]
    seeds = {a: math.tanh(float(rng.uniform(0.5, 4.0)) / 2.0) for a in chosen}
    rows: dict[str, Any] = {}
    for a in chosen:
        partners = [everyone[i] for i in rng.choice(len(everyone), n_rows, replace=False)]
        counts = np.sort(rng.integers(1, 60, n_rows))[::-1]
        flat: list[bytes] = []
        for b, c in zip(partners, counts.tolist(), strict=True):
            flat += [b.encode(), str(c).encode()]
        rows[a] = flat
    return seeds, rows, listeners


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collab_cpu",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("-n", type=int, default=2000, help="timed requests (default 2000)")
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--rows", type=int, default=100, help="partners per seed row (default 100)")
    args = parser.parse_args(argv)
    view = CatalogView.build(read_spotify_csv(DEFAULT_DATA))
    index = view.index
    seeds, rows, listeners = replies(view, args.seeds, args.rows)
    config = RankingConfig()
    params = (config.collaborative_normalise_rows, config.collaborative_idf,
              config.collaborative_popularity, config.collaborative_shrink)
    columnar = hasattr(collaborative, "scores_at")
    if columnar:
        from serving.recommender import ArtistListenersCache
        from serving.redis_client import reply_columns

        cache = ArtistListenersCache()
        cache.listeners = listeners
        cache.space(index).power(config.collaborative_popularity)  # kept with the space in serving

        def step() -> tuple[Any, Any]:
            space = cache.space(index)
            columns = {}
            for artist, reply in rows.items():
                members, values = reply_columns(reply)
                columns[artist] = (space.positions(members), values)
            found = collaborative.scores_at(space, seeds, columns, index.artist_names, *params,
                                            index.artist_position)
            return found.score_view(), found.via_view()
    else:
        from schemas.values import decode_neighbours
        from serving.redis_client import score_pairs

        by_name = {k.decode(): v for k, v in listeners.items()}  # as serving's cache holds them

        def step() -> tuple[Any, Any]:
            decoded = {artist: decode_neighbours(score_pairs(reply)) for artist, reply in rows.items()}
            return collaborative.artist_scores(seeds, decoded, by_name, *params)

    profile = UserProfile("u", artists=dict(seeds))
    request = RecommendRequest()

    def source(scores: Any, via: Any) -> Any:
        signals = Signals(artist_scores=scores, artist_via=via)
        ctx = SourceContext(view, profile, profile, None, signals, config, request.rules, set(), None, None,
                            False)
        return propose(ctx, config.quota("similar_artists"))

    scores, via = step()
    got = source(scores, via)
    check = sum(scores.get(a, 0.0) for a in index.artist_names)
    print(f"{'columnar' if columnar else 'per entry'}: {len(seeds)} seeds x {args.rows} partners, "
          f"{len(scores)} artists scored, checksum {check!r}, source {got.positions[:5].tolist()}")
    for _ in range(100):
        source(*step())
    spent = np.zeros((args.n, 2))
    for i in range(args.n):
        t0 = time.thread_time()
        scores, via = step()
        t1 = time.thread_time()
        source(scores, via)
        spent[i] = (t1 - t0, time.thread_time() - t1)
    ms = spent * 1000
    print(f"{'ms per request':<16}{'mean':>8}{'p50':>8}")
    for name, col in (("scores", ms[:, 0]), ("source", ms[:, 1]), ("both", ms.sum(axis=1))):
        print(f"{name:<16}{col.mean():>8.3f}{np.median(col):>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
