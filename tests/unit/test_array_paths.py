"""The request path's array code equals the per-candidate loops it replaced: rates held as a
catalog-aligned table (`ranking.item_rates`) score exactly as the rates read by id for the same
candidates, term by term, and so do the answers; `similar_artists` in one pass proposes exactly what
its per-artist loop did; the merged candidates held as columns (`CandidateTable`) carry what the
per-candidate dicts did."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from online_models.item_stats import RATE_PRIORS
from ranking.catalog_view import CatalogView
from ranking.item_rates import ItemRates, candidate_rates
from ranking.pipeline import RecommendRequest, gather, pick, rank_given, score
from ranking.scoring import quality_of, stream_popularity
from ranking.sources import Signals
from schemas.events import EventType
from schemas.profile_codec import RecentTrack, UserProfile
from schemas.values import decode_rates, encode_rates

NOW = 1_795_248_000_000


@pytest.fixture(scope="module")
def view() -> CatalogView:
    return CatalogView.build(read_spotify_csv(DEFAULT_SAMPLE))


def random_rates(view: CatalogView, seed: int = 3) -> dict[str, tuple[float, float, float]]:
    """Rates for a random half of the catalog, as they come back from Redis (6 digits)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in rng.choice(len(view), len(view) // 2, replace=False).tolist():
        like, skip, listens = rng.random(), rng.random(), float(rng.integers(0, 500))
        out[view.index.tracks[i].track_id] = decode_rates(encode_rates(like, skip, listens))
    return out


def listener(view: CatalogView) -> UserProfile:
    liked = [t for t in view.index.tracks if t.genres and t.genres[0] == "rock"][:6]
    rows = [view.index.position[t.track_id] for t in liked]
    counts = dict.fromkeys(EventType, 0) | {EventType.LIKE: 6, EventType.COMPLETE: 6}
    return UserProfile("u", version=12, as_of_ms=NOW, taste=view.index.features[rows].mean(0).tolist(),
                       taste_weight=6, genres={"rock": 4.0},
                       recent=[RecentTrack(t.track_id, EventType.LIKE) for t in liked], counts=counts)


def _reference_stream_popularity(rates, track_ids, catalog, stream_popular) -> np.ndarray:
    """The per-candidate loop the vectorised `stream_popularity` replaced."""
    out = np.asarray(catalog, dtype=np.float32).copy()
    top = math.log1p(max(v for _, v in stream_popular))
    for j, track_id in enumerate(track_ids):
        rate = rates.get(track_id)
        if rate is not None and rate[2] > 0:
            out[j] = min(1.0, math.log1p(rate[2]) / top)
    return out


def test_quality_and_stream_popularity_equal_the_per_candidate_loops(view: CatalogView) -> None:
    rates = random_rates(view)
    ids = [t.track_id for t in view.index.tracks]
    expected = np.zeros(len(ids), dtype=np.float32)
    for j, track_id in enumerate(ids):
        if track_id in rates:
            r = rates[track_id]
            expected[j] = (r[0] - RATE_PRIORS.like_rate) - (r[1] - RATE_PRIORS.skip_rate)
    assert np.array_equal(quality_of(rates, ids), expected)
    streamed = [(ids[0], 480.0), (ids[1], 3.0)]
    signals = Signals(rates=rates, stream_popular=streamed)
    catalog = view.index.popularity
    assert np.array_equal(stream_popularity(signals, ids, catalog),
                          _reference_stream_popularity(rates, ids, catalog, streamed))


@pytest.mark.parametrize("diversity", [0.0, 0.3])
def test_scoring_from_the_table_equals_scoring_from_rates_read_by_id(view: CatalogView,
                                                                   diversity: float) -> None:
    rates = random_rates(view)
    table = ItemRates.from_mapping(view.index, rates)
    profile = listener(view)
    streamed = sorted(((t, r[2]) for t, r in rates.items()), key=lambda kv: -kv[1])[:150]
    base = Signals(stream_popular=streamed, trending=[(t, 1.0) for t, _ in streamed[:30]])
    request = RecommendRequest(k=10, now_ms=NOW, diversity=diversity)
    for who in (profile, None):
        gathered = gather(view, who, None, base, request)
        ids = [view.index.tracks[c.position].track_id for c in gathered.candidates]
        by_id = replace(base, rates={t: rates[t] for t in ids if t in rates})  # what HMGET returns
        held = replace(base, item_rates=table)
        a = score(view, who, None, gathered, by_id, request)
        b = score(view, who, None, gathered, held, request)
        assert a.terms.keys() == b.terms.keys() and "quality" in a.terms
        for name in a.terms:
            assert np.array_equal(a.terms[name], b.terms[name]), name
        assert np.array_equal(a.scores, b.scores)
        assert pick(view, who, a, request) == pick(view, who, b, request)
    given = [t.track_id for t in view.index.tracks[:60]] + ["nope"]
    known = [t for t in given if t in rates]
    by_id = rank_given(view, profile, None, given, replace(base, rates={t: rates[t] for t in known}), request)
    held = rank_given(view, profile, None, given, replace(base, item_rates=table), request)
    assert by_id == held


def test_no_rated_candidate_means_no_quality_term_as_with_an_empty_read(view: CatalogView) -> None:
    table = ItemRates.empty(len(view))
    positions = np.arange(5)
    assert candidate_rates(positions, [], table, {}) is None
    table.set([3], [(0.5, 0.1, 2.0)])
    rows = candidate_rates(positions, [], table, {})
    assert rows is not None and rows[3].tolist() == [0.5, 0.1, 2.0] and np.isnan(rows[0]).all()
    table.set([3], [None])
    assert candidate_rates(positions, [], table, {}) is None
    grown = table.extended(len(view) + 2)
    assert len(grown) == len(view) + 2 and np.isnan(grown.table[-2:]).all()


def _reference_similar_artists(ctx, n: int):
    """The per-artist loop `ranking.sources.similar_artists.propose` replaced."""
    view, config = ctx.view, ctx.config
    liked = ctx.profile.artists if ctx.profile is not None else {}
    ranked = sorted(((a, s) for a, s in ctx.signals.artist_scores.items()
                     if a not in liked and a in view.artist_rows), key=lambda kv: (-kv[1], kv[0]))
    taste = ctx.scoring_profile.taste if ctx.scoring_profile is not None else None
    per_artist = config.max_per_artist
    parts = []
    for artist, value in ranked[: max(1, n // max(per_artist, 1))]:
        rows = view.artist_rows[artist]
        rows = rows[~np.isin(rows, list(ctx.excluded))] if ctx.excluded else rows
        if len(rows) == 0:
            continue
        fit = view.space.kernel_at(taste, rows, 1.0) if taste else view.index.popularity[rows]
        parts.append((rows[np.lexsort((rows, -fit))][:per_artist].tolist(), value))
    positions, values = [], []
    for depth in range(per_artist):
        for part, value in parts:
            if depth < len(part) and len(positions) < n:
                positions.append(int(part[depth]))
                values.append(value)
    return np.array(positions, np.int64), np.array(values, np.float32)


@pytest.mark.parametrize("as_arrays", [False, True])
@pytest.mark.parametrize("with_taste", [True, False])
def test_similar_artists_in_one_pass_equals_the_per_artist_loop(view: CatalogView, with_taste: bool,
                                                                as_arrays: bool) -> None:
    from ranking.collaborative import ArtistScores, ScoreView
    from ranking.config import RankingConfig
    from ranking.sources.base import SourceContext
    from ranking.sources.similar_artists import propose

    rng = np.random.default_rng(5)
    artists = [a for a in view.artist_rows]
    profile = listener(view)
    if not with_taste:
        profile = replace(profile, taste=[])
    for trial in range(20):
        scores = {artists[i]: float(rng.random()) for i in rng.choice(len(artists), 80, replace=False)}
        if trial % 3 == 0:  # ties at the cut, broken by name
            scores = {a: round(s, 1) for a, s in scores.items()}
        if trial % 4 == 1:  # liked artists are not proposed
            profile = replace(profile, artists={a: 1.0 for a in list(scores)[:10]})
        if as_arrays:  # as serving passes them: a view over arrays aligned to the catalog's artists
            index = view.index
            array = np.zeros(len(index.artist_names))
            array[[index.artist_position[a] for a in scores]] = list(scores.values())
            scores = ScoreView(ArtistScores(array, np.full(len(array), -1), [], index.artist_names,
                                            index.artist_position))
        excluded = set(rng.choice(len(view), 100, replace=False).tolist()) if trial % 2 else set()
        ctx = SourceContext(view, profile, profile, None, Signals(artist_scores=scores), RankingConfig(),
                            RecommendRequest().rules, excluded, None, None, False)
        for n in (0, 1, 7, 120):
            got = propose(ctx, n)
            positions, values = _reference_similar_artists(ctx, n)
            assert got is not None
            assert np.array_equal(got.positions, positions) and np.array_equal(got.scores, values)


def _reference_provenance(picked, sources, overwrite=False):
    """The per-candidate loop `CandidateTable` replaced: a dict of sources per picked position."""
    from ranking.candidates import Candidate

    by_position = {i: Candidate(i) for i in picked}
    for src in sources:
        for j, i in enumerate(src.positions.tolist()):
            candidate = by_position.get(i)
            if candidate is not None and (overwrite or src.source not in candidate.sources):
                candidate.sources[src.source] = float(src.scores[j])
                if src.via is not None and candidate.via is None:
                    candidate.via = src.via[j]
    return [by_position[i] for i in picked]


@pytest.mark.parametrize("overwrite", [False, True])
def test_candidate_table_equals_the_per_candidate_loop(overwrite: bool) -> None:
    from ranking.candidates import CandidateTable, SourceCandidates, merge_candidates, source_terms

    rng = np.random.default_rng(11)
    for trial in range(40):
        sources = []
        for s, name in enumerate(["taste", "co_listening", "trending", "taste", "popular"]):
            positions = rng.choice(300, int(rng.integers(0, 60)), replace=False)
            if trial % 7 == 0 and len(positions) > 2 and s == 4:
                positions[1] = positions[0]  # a repeated position: the element-by-element path
            scores = rng.random(len(positions)).astype(np.float32)
            via = [f"v{trial}-{s}-{k}" for k in range(len(positions))] if name == "co_listening" else None
            sources.append(SourceCandidates(name, positions.astype(np.int64), scores, via=via))
        picked = list(dict.fromkeys(rng.choice(320, 80).tolist()))
        table = CandidateTable.of(picked, sources, overwrite=overwrite)
        reference = _reference_provenance(picked, sources, overwrite)
        assert list(table) == reference
        terms, expected = source_terms(table), source_terms(reference)
        assert all(np.array_equal(terms[k], expected[k]) for k in expected)
        merged = merge_candidates(sources, limit=120, exclude={int(picked[0])})
        assert list(merged) == _reference_provenance([c.position for c in merged], sources)


def _reference_top_positions(scores: np.ndarray, n: int) -> np.ndarray:
    """`top_positions` as it was: one partition of the whole array."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.lexsort((top, -scores[top]))]
    return top[np.isfinite(scores[top])].astype(np.int64)


def test_top_positions_equals_one_partition_of_the_whole_array() -> None:
    from ranking.feature_space import top_positions

    rng = np.random.default_rng(5)
    for trial in range(300):
        size = int(rng.choice([50, 5_000, 28_000, 60_000]))
        scores = rng.random(size).astype(np.float32)
        if trial % 3 == 0:
            scores = np.round(scores * rng.choice([50, 500, 5_000])).astype(np.float32)  # many ties
        if trial % 5 == 0:
            scores[rng.choice(size, size // 10)] = -np.inf  # excluded
        if trial % 11 == 0:
            scores[rng.choice(size, 3)] = np.nan
        if trial % 13 == 0:
            scores[:] = -np.inf
            scores[rng.choice(size, 30)] = 1.0
        n = int(rng.choice([1, 24, 50, 200, 400]))
        assert np.array_equal(top_positions(scores, n), _reference_top_positions(scores, n)), trial


def test_kernels_equal_the_expressions_they_replaced(view: CatalogView) -> None:
    space = view.space
    rng = np.random.default_rng(9)
    for _ in range(30):
        taste = view.index.features[rng.integers(len(view))] + rng.normal(0, 0.05, 9).astype(np.float32)
        bandwidth = float(rng.choice([1.0, 0.7, 1.3]))
        zu = space.to_z(taste)
        d2 = np.maximum(space.sq_norms - 2.0 * (space.z @ zu) + float(zu @ zu), 0.0) / space.z.shape[1]
        assert np.array_equal(space.kernel(taste, bandwidth), np.exp(-d2 / (2.0 * bandwidth**2)))
        positions = rng.choice(len(view), int(rng.integers(0, 3_000)))
        z = space.z[positions]
        d2 = np.mean((z - zu) ** 2, axis=1) if len(z) else np.zeros(0, np.float32)
        expected = np.exp(-d2 / (2.0 * bandwidth**2)).astype(np.float32)
        got = space.kernel_at(taste, positions, bandwidth)
        assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_column_sums_add_nine_numbers_as_numpy_does() -> None:
    """`FeatureSpace.kernel_at` sums 9 squared differences column by column in the order of
    numpy's pairwise sum of a row of 9; a numpy that sums otherwise fails here, not in answers."""
    rng = np.random.default_rng(2)
    for m in (1, 2, 7, 9, 100, 4_097, 200_000):
        d = (rng.standard_normal((m, 9)) * rng.choice([1e-3, 1.0, 30.0], (m, 1))).astype(np.float32) ** 2
        c = np.ascontiguousarray(d.T)
        columns = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7])) + c[8]
        assert np.array_equal(columns, np.add.reduce(d, axis=1)), m


def test_trending_ranked_once_then_excluded_equals_the_per_request_pass(view: CatalogView) -> None:
    from ranking.sources.trending import ranked_parts, ranked_trending, trending_candidates, trending_part

    rng = np.random.default_rng(4)
    ids = [t.track_id for t in view.index.tracks]
    for trial in range(30):
        picks = rng.integers(0, len(ids), 250)
        trending = [(ids[i] if rng.random() > 0.05 else "not-in-catalog", float(rng.integers(0, 40)))
                    for i in picks]  # repeats, ties and unknown ids
        ranked = ranked_trending(view.index, trending)
        cuts = sorted(rng.integers(0, len(trending), 2).tolist())
        lists = [trending[: cuts[0]], trending[cuts[0] : cuts[1]], trending[cuts[1] :]]
        if trial % 4 == 0:
            lists[1] = [(t, s if k % 3 else float("nan")) for k, (t, s) in enumerate(lists[1])]
            lists[2] = [(t, -np.inf if k % 5 == 0 else -s) for k, (t, s) in enumerate(lists[2])]
            trending = [x for part in lists for x in part]
            ranked = ranked_trending(view.index, trending)
        from_parts = ranked_parts([trending_part(view.index, part) for part in lists])
        assert from_parts.positions.tolist() == ranked.positions.tolist()
        assert np.array_equal(from_parts.scores, ranked.scores)
        assert from_parts.scores.dtype == ranked.scores.dtype
        for n in (0, 10, 50, len(view)):
            exclude = set(rng.choice(len(ids), int(rng.integers(0, 300))).tolist())
            a = trending_candidates(view.index, trending, n, exclude)
            b = trending_candidates(view.index, trending, n, exclude, ranked=ranked)
            assert a.positions.tolist() == b.positions.tolist()
            assert np.array_equal(a.scores, b.scores) and a.scores.dtype == b.scores.dtype


def _reference_merge_order(sources, quotas, limit, exclude):
    """The round-robin of `merge_candidates` as it was: every source visited every round."""
    lists = [src.positions.tolist() for src in sources]
    lengths = [len(items) for items in lists]
    quota = [quotas.get(s.source, n) for s, n in zip(sources, lengths, strict=True)]
    cursors, taken, seen, picked = [0] * len(sources), [0] * len(sources), set(exclude), []
    while len(picked) < limit:
        progressed = False
        for s, items in enumerate(lists):
            if len(picked) >= limit:
                break
            cursor, n = cursors[s], lengths[s]
            while taken[s] < quota[s] and cursor < n:
                i = items[cursor]
                cursor += 1
                if i in seen:
                    continue
                seen.add(i)
                taken[s] += 1
                picked.append(i)
                progressed = True
                break
            cursors[s] = cursor
        if not progressed:
            break
    return picked


def test_merge_rounds_pick_as_before() -> None:
    from ranking.candidates import SourceCandidates, merge_candidates

    rng = np.random.default_rng(8)
    for _ in range(200):
        names = [f"s{k}" for k in range(int(rng.integers(1, 11)))]
        sizes = [int(rng.integers(0, 200)) for _ in names]
        sources = [SourceCandidates(name, rng.choice(500, size, replace=False).astype(np.int64),
                                    rng.random(size).astype(np.float32))
                   for name, size in zip(names, sizes, strict=True)]
        quotas = {name: int(rng.integers(0, 150)) for name in names if rng.random() < 0.8}
        limit = int(rng.integers(0, 500))
        exclude = set(rng.choice(500, int(rng.integers(0, 100))).tolist())
        merged = merge_candidates(sources, quotas=quotas, limit=limit, exclude=exclude)
        reference = _reference_merge_order(sources, {n: quotas.get(n, 10**9) for n in names}, limit, exclude)
        assert merged.positions.tolist() == reference
