"""Search ranking: a parsed query (and, with a listener, their live profile) → the k tracks that fit.

Every track of the catalog gets the query's terms (each × its `RankingConfig.search_*` weight):

| term | value |
|---|---|
| `target` | fit (`moods.mood_fit`) to the target merged from its moods, activities, times, feature words |
| `genre` | 1 when the track has a genre the query names |
| `era` | 1 when it was released in the era the query names |
| `artist` | 1 when it is by the artist the query names |
| `title` | 1 when the query is its title |
| `lexical` | idf-weighted share of the query's other words found in its title or artist |
| `semantic` | cosine (above 0) between the query's and the track's sentence embeddings |
| `popularity` | catalog popularity |

Named artists, genres and eras are also filters, applied in that order while they leave any track
(one that would leave none is dropped and reported in `relaxed`). With a listener, their exclusions
apply (the repeat policy, disliked tracks and artists, the request's `exclude`), and the best
`search_pool` tracks by the query, plus the `search_taste_pool` nearest their taste among those the
filters allow, are re-ranked by query + `search_taste` × the listener's own ranking score
(`ranking.scoring.score`: taste, affinities, session, engagement...). So a fan of acoustic folk who
asks for "workout" gets workout tracks, the ones nearest their taste first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ranking import scoring
from ranking.candidates import Candidate
from ranking.config import RANKING_CONFIG, RankingConfig
from ranking.explain import MIN_CONTRIBUTION, explain
from ranking.listener import excluded_positions
from ranking.moods import ACTIVITIES, MOODS, TIMES_OF_DAY, MoodTarget, mood_fit
from ranking.pipeline import RecommendRequest
from ranking.search.index import SearchIndex
from ranking.search.lexicon import FEATURE_WORDS
from ranking.search.understand import ParsedQuery
from ranking.seeds import SeedProfile, effective_profile
from ranking.sources.base import Signals
from schemas.profile_codec import UserProfile
from schemas.tracks import AUDIO_FEATURES

TIME_WEIGHT = 0.5
"""A time of day counts half as much as a mood or an activity in the merged target."""
MAX_REASONS = 4
_TABLES = {"mood": MOODS, "activity": ACTIVITIES, "time": TIMES_OF_DAY, "feature": FEATURE_WORDS}


@dataclass(frozen=True)
class Listener:
    """The listener a search is personalised for, and what serving read for them."""

    profile: UserProfile | None
    seed: SeedProfile | None
    signals: Signals
    request: RecommendRequest
    """Its exclusion rules, `exclude`, clock and config apply."""


@dataclass
class SearchHit:
    position: int
    track_id: str
    score: float
    reasons: list[str]
    matched: list[str]
    """The parts of the query the track satisfies: target, genre, era, artist, title, words."""
    sources: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    parsed: ParsedQuery
    target: MoodTarget | None
    genres: list[str]
    era: tuple[int, int] | None
    artists: list[str]
    relaxed: list[str]
    personalised: bool
    semantic: bool
    hits: list[SearchHit]


def _words(items: list[str]) -> str:
    quoted = [f"“{w}”" for w in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def query_target(parsed: ParsedQuery, config: RankingConfig = RANKING_CONFIG) -> MoodTarget | None:
    """The audio target of the query's moods, activities, times of day and feature words, merged as
    `moods.resolve_target` merges a mood and an activity: per feature the weights add and the target
    is their weighted mean."""
    specs = []
    surfaces: list[str] = []
    names: list[str] = []
    for c in parsed.concepts:
        table = _TABLES.get(c.kind)
        if table is None or c.value not in table:
            continue
        if c.surface not in surfaces:
            surfaces.append(c.surface)
        if c.value in names:
            continue
        names.append(c.value)
        specs.append((table[c.value], TIME_WEIGHT if c.kind == "time" else 1.0))
    if not specs:
        return None
    weight = np.zeros(len(AUDIO_FEATURES), np.float64)
    total = np.zeros(len(AUDIO_FEATURES), np.float64)
    for spec, scale in specs:
        for feature, (value, w) in spec.items():
            i = AUDIO_FEATURES.index(feature)
            weight[i] += w * scale
            total[i] += value * w * scale
    target = np.where(weight > 0, total / np.maximum(weight, 1e-9), 0.5)
    return MoodTarget("+".join(names), f"fits {_words(surfaces)}", target.astype(np.float32),
                      weight.astype(np.float32), config.search_target)


def query_era(parsed: ParsedQuery, index: SearchIndex) -> tuple[int, int] | None:
    """The release years the query names (several eras: from the first's start to the last's end)."""
    spans = []
    low, high = index.year_range
    for value in parsed.values("era"):
        if value == "oldies":
            spans.append((low, 1989))
        elif value == "recent":
            spans.append((high - 2, high))
        else:
            start, end = value.split("-")
            spans.append((int(start), int(end)))
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def search(
    index: SearchIndex, parsed: ParsedQuery, k: int, config: RankingConfig = RANKING_CONFIG,
    listener: Listener | None = None,
) -> SearchResult:
    view = index.view
    catalog = view.index
    n = len(catalog)
    terms: dict[str, np.ndarray] = {}
    target = query_target(parsed, config)
    if target is not None:
        terms["target"] = target.score_weight * mood_fit(catalog.features, target) * catalog.has_features
    genres = parsed.values("genre")
    in_genre = None
    if genres:
        columns = [catalog.genre_position[g] for g in genres if g in catalog.genre_position]
        in_genre = (catalog.genre_matrix[:, columns] > 0).any(axis=1)
        terms["genre"] = config.search_genre * in_genre
    era = query_era(parsed, index)
    in_era = None
    if era is not None:
        with np.errstate(invalid="ignore"):
            in_era = (index.years >= era[0]) & (index.years <= era[1])
        terms["era"] = config.search_era * in_era
    artists = parsed.values("artist")
    by_artist = None
    if artists:
        ids = [catalog.artist_position[a] for a in artists if a in catalog.artist_position]
        by_artist = np.isin(catalog.artist_of, ids)
        terms["artist"] = config.search_artist * by_artist
    if parsed.title_positions:
        title = np.zeros(n, np.float32)
        title[parsed.title_positions] = 1.0
        terms["title"] = config.search_title * title
    if parsed.words:
        lexical = np.zeros(n, np.float32)
        weights = [index.idf(w) for w in parsed.words]
        for word, w in zip(parsed.words, weights, strict=True):
            lexical[index.postings[word]] += w
        terms["lexical"] = config.search_lexical * lexical / max(sum(weights), 1e-9)
    semantic = index.embeddings is not None and index.embedder is not None
    if semantic:
        vector = parsed.query_vector
        if vector is None:
            vector = parsed.query_vector = index.embedder.embed([parsed.text])[0]  # type: ignore[union-attr]
        terms["semantic"] = config.search_semantic * np.maximum(index.embeddings @ vector, 0.0)  # type: ignore[operator]
    terms["popularity"] = config.search_popularity * catalog.popularity
    total = np.zeros(n, np.float64)
    for values in terms.values():
        total += values

    allowed = np.ones(n, dtype=bool)
    if listener is not None:
        request = listener.request
        excluded = excluded_positions(view, listener.profile, request.exclude, request.rules)
        if listener.seed is not None:
            excluded.update(listener.seed.positions)
        if excluded:
            allowed[np.fromiter(excluded, np.int64)] = False
    relaxed = []
    for name, condition in (("artist", by_artist), ("genre", in_genre), ("era", in_era)):
        if condition is None:
            continue
        narrowed = allowed & condition
        if narrowed.any():
            allowed = narrowed
        else:
            relaxed.append(name)
    eligible = np.flatnonzero(allowed)
    pool = _top(eligible, total[eligible], config.search_pool)
    scoring_profile = None
    personal: dict[str, np.ndarray] = {}
    final = total[pool]
    if listener is not None:
        scoring_profile = effective_profile(listener.profile, listener.seed, config=config)
    personalised = scoring_profile is not None and bool(scoring_profile.taste or scoring_profile.genres)
    if personalised and listener is not None and scoring_profile is not None:
        if scoring_profile.taste and len(eligible):
            fit = view.space.kernel_at(scoring_profile.taste, eligible, config.taste_bandwidth)
            near = _top(eligible, fit, config.search_taste_pool)
            pool = np.array(list(dict.fromkeys([*pool.tolist(), *near.tolist()])), dtype=np.int64)
        candidates = [Candidate(int(i)) for i in pool]
        _, listener_total, personal, _, _ = scoring.score(
            view, listener.profile, scoring_profile, candidates, listener.signals, listener.request.now_ms,
            None, None, 0.0, config)
        final = total[pool] + config.search_taste * listener_total
    order = np.lexsort((pool, -final))
    cap = None if artists else config.max_per_artist
    per_artist: dict[int, int] = {}
    chosen: list[int] = []
    seen: set[tuple[str, int]] = set()
    for j in order.tolist():
        a = int(catalog.artist_of[pool[j]])
        same = (index.base_titles[pool[j]], a)  # one copy of a song (the catalog repeats some releases)
        if same in seen or (cap is not None and per_artist.get(a, 0) >= cap):
            continue
        seen.add(same)
        per_artist[a] = per_artist.get(a, 0) + 1
        chosen.append(j)
        if len(chosen) >= k:
            break
    taste_words = (scoring.describe_taste(catalog, scoring_profile.taste)
                   if personalised and scoring_profile is not None and scoring_profile.taste else [])
    hits = []
    for j in chosen:
        i = int(pool[j])
        query_parts = {name: float(values[i]) for name, values in terms.items()}
        mine = {name: float(values[j]) * config.search_taste for name, values in personal.items()}
        reasons, matched = _reasons(index, i, parsed, target, genres, era, query_parts, mine, taste_words,
                                    scoring_profile, listener)
        hits.append(SearchHit(i, catalog.tracks[i].track_id, round(float(final[j]), 6), reasons, matched))
    return SearchResult(parsed, target, genres, era, artists, relaxed, personalised, semantic, hits)


def _top(positions: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    if len(positions) == 0 or n <= 0:
        return np.zeros(0, np.int64)
    n = min(n, len(positions))
    best = np.argpartition(-scores, n - 1)[:n] if n < len(positions) else np.arange(len(positions))
    best = best[np.lexsort((positions[best], -scores[best]))]
    return positions[best].astype(np.int64)


def _reasons(
    index: SearchIndex, i: int, parsed: ParsedQuery, target: MoodTarget | None, genres: list[str],
    era: tuple[int, int] | None, query: Mapping[str, float], mine: Mapping[str, float],
    taste_words: list[str], profile: UserProfile | None, listener: Listener | None,
) -> tuple[list[str], list[str]]:
    track = index.view.index.tracks[i]
    reasons: list[str] = []
    matched: list[str] = []
    if query.get("title", 0) > 0:
        reasons.append(f"the title you asked for: {track.title}")
        matched.append("title")
    if query.get("artist", 0) > 0:
        reasons.append(f"by {track.artist}")
        matched.append("artist")
    if query.get("genre", 0) > 0:
        named = [g for g in genres if g in track.genres]
        reasons.append(f"{named[0]}" if len(named) == 1 else " and ".join(named))
        matched.append("genre")
    if query.get("era", 0) > 0 and era is not None and track.release_year is not None:
        reasons.append(f"released in {track.release_year}")
        matched.append("era")
    if target is not None and query.get("target", 0) >= 0.6 * target.score_weight:
        reasons.append(target.label)
        matched.append("target")
    if query.get("lexical", 0) > 0:
        text = f"{track.title} {track.artist}".casefold()
        found = [w for w in parsed.words if w in text]
        if found:
            reasons.append(f"{_words(found)} in its title or artist")
            matched.append("words")
    if mine and listener is not None and max(mine.values()) > MIN_CONTRIBUTION:
        own = explain(track, mine, taste_words=taste_words, liked_genres=profile.genres if profile else {},
                      similar_via=listener.signals.artist_via.get(track.artist or ""), limit=2)
        reasons.extend(r for r in own if r not in reasons)
    if not reasons and query.get("semantic", 0) > 0.1:
        reasons.append("close in meaning to what you asked for")
    if not reasons:
        reasons.append("popular in the catalog" if not track.genres else f"popular in {track.genres[0]}")
    return reasons[:MAX_REASONS], matched
