"""Scoring: every term of the ranking score for every candidate, and their sum.

| term | from |
|---|---|
| `taste` | taste kernel to the profile's taste vector |
| `genre`, `artist` | squashed affinities (an artist's liked and disliked sides weighted apart) |
| `popular` | catalog popularity prior |
| `session` | kernel to the current session's centre, and its genres |
| `engagement` | the listener's own engagement model blended with the global model: `2·(p − ½)` |
| `quality` | item quality from live statistics: like rate above the prior, minus skip rate above it |
| `co_listening`, `trending` | the source scores, scaled to the best among the candidates |
| `similar_artists` | the artist's collaborative score for the listener, scaled to the best candidate's |
| `mood` | fit to the mood / activity / time-of-day target |
| `discovery` | less popular tracks close to the taste (only when `discovery` > 0) |

Each term is already × its weight; the weights' one place is `ranking.config.RankingConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from online_models.context_features import context_vector, score_tracks
from online_models.item_stats import RATE_PRIORS
from ranking.candidates import SOURCE_TERMS, Candidate, CandidateTable, source_terms
from ranking.catalog_index import CatalogIndex
from ranking.catalog_view import CatalogView
from ranking.collaborative import score_array
from ranking.config import RANKING_CONFIG, RankingConfig
from ranking.diversity import TasteClusters
from ranking.item_rates import candidate_rates
from ranking.listener import own_model_share, session_of
from ranking.moods import MoodTarget, discovery_term, mood_term
from ranking.ranker import FEATURES as RANKER_FEATURES
from ranking.ranker import assemble as assemble_ranker_features
from ranking.sources.base import Signals
from schemas.events import EventContext
from schemas.profile_codec import UserProfile
from schemas.tracks import AUDIO_FEATURES
from schemas.values import RankerState

_FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "danceability": ("danceable", "laid-back rhythm"),
    "energy": ("high-energy", "calm"),
    "valence": ("upbeat", "moody"),
    "acousticness": ("acoustic", "electronic"),
    "instrumentalness": ("instrumental", "vocal"),
    "liveness": ("live-sounding", "studio"),
    "speechiness": ("wordy", "melodic"),
    "tempo": ("fast", "slow"),
    "loudness": ("loud", "quiet"),
}


def describe_taste(index: CatalogIndex, taste: list[float], limit: int = 2) -> list[str]:
    """The features where a taste stands furthest from the catalog average, as words."""
    return describe_z((np.asarray(taste, dtype=np.float32) - index.feature_mean) / index.feature_std, limit)


def describe_z(z: np.ndarray, limit: int = 2) -> list[str]:
    """`describe_taste` of a point already z-scored against the catalog (e.g. a taste-cluster centre)."""
    order = np.argsort(-np.abs(z))[:limit]
    return [_FEATURE_WORDS[AUDIO_FEATURES[i]][0 if z[i] > 0 else 1] for i in order if abs(z[i]) > 0.4]


def squash_affinities(scores: Mapping[str, float], position: Mapping[str, int], scale: float) -> np.ndarray:
    """A vector over `position`'s names (len(position) long): tanh(score / scale) for each scored
    name the mapping knows, 0 elsewhere."""
    vector = np.zeros(len(position), dtype=np.float32)
    for name, score in scores.items():
        i = position.get(name)
        if i is not None:
            vector[i] = np.tanh(score / scale)
    return vector


@dataclass
class Scored:
    candidates: CandidateTable
    positions: np.ndarray
    scores: np.ndarray
    terms: dict[str, np.ndarray]
    engagement: np.ndarray | None
    profile: UserProfile | None
    target: MoodTarget | None
    clusters: TasteClusters | None = None
    cold_start: bool = False
    own_model: bool = False
    """True when `engagement` is mostly the listener's own model (not the global one)."""
    artist_via: Mapping[str, str] = field(default_factory=dict)
    """Artist → the liked artist behind its collaborative score (for reasons)."""
    explore: Mapping[str, list[int]] = field(default_factory=dict)
    """Exploration arm → the candidate indices it proposed (`ranking.explore`)."""
    explore_only: frozenset[int] = frozenset()
    """Candidates only an exploration arm proposed: they fill exploration slots, not regular ones."""
    explore_stats: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Arm → (successes, failures) of past exploration slots, for the bandit."""


def engagement_of(
    view: CatalogView, profile: UserProfile | None, signals: Signals, positions: np.ndarray,
    context: np.ndarray, config: RankingConfig = RANKING_CONFIG,
) -> tuple[np.ndarray | None, float]:
    """P(like or complete) of each candidate, blending the listener's and the global model; and the
    listener's own share."""
    share = own_model_share(profile, config)
    rows = view.track_x[positions]
    own = score_tracks(np.frombuffer(profile.model_weights, dtype="<f4"), rows, context) if share else None
    glob = score_tracks(signals.global_weights, rows, context) if signals.global_weights is not None else None
    if own is None:
        return glob, 0.0
    if glob is None:
        return own, 1.0
    return share * own + (1.0 - share) * glob, share


def quality_of(rates: Mapping[str, tuple[float, float, float]], track_ids: Sequence[str]) -> np.ndarray:
    """(m,) like rate above its prior mean minus skip rate above its prior mean (0 without statistics)."""
    table = candidate_rates(np.zeros(0, np.int64), track_ids, None, rates)
    return quality_term(table) if table is not None else np.zeros(len(track_ids), dtype=np.float32)


def quality_term(rates: np.ndarray) -> np.ndarray:
    """`quality_of` over `candidate_rates` rows (NaN rows: 0)."""
    value = (rates[:, 0] - RATE_PRIORS.like_rate) - (rates[:, 1] - RATE_PRIORS.skip_rate)
    return np.where(np.isnan(value), 0.0, value).astype(np.float32)


def score(
    view: CatalogView,
    profile: UserProfile | None,
    scoring_profile: UserProfile | None,
    candidates: Sequence[Candidate],
    signals: Signals,
    now_ms: int,
    context: EventContext | None,
    target: MoodTarget | None,
    discovery: float = 0.0,
    config: RankingConfig = RANKING_CONFIG,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray | None, float]:
    """`(positions, total, terms, engagement, own model share)` of the candidates.

    `profile` is the live profile (session, own model), `scoring_profile` the one with declared
    favourites blended in (taste, affinities)."""
    index = view.index
    candidates = CandidateTable.from_candidates(candidates)
    positions = candidates.positions
    m = len(positions)
    terms: dict[str, np.ndarray] = {}
    taste_vector = (
        scoring_profile.taste if scoring_profile is not None and scoring_profile.taste
        else view.global_taste
    )
    taste_fit = view.space.kernel_at(taste_vector, positions, config.taste_bandwidth)
    terms["taste"] = config.taste * taste_fit
    if scoring_profile is not None:
        genre_vector = squash_affinities(scoring_profile.genres, index.genre_position, config.affinity_scale)
        genre_fit = index.genre_matrix[positions] @ genre_vector
        terms["genre"] = config.genre * genre_fit
        artist_vector = squash_affinities(scoring_profile.artists, index.artist_position,
                                          config.affinity_scale)
        artist_fit = artist_vector[index.artist_of[positions]]
        terms["artist"] = np.where(artist_fit > 0, config.artist, config.artist_disliked) * artist_fit
    else:
        genre_fit = artist_fit = np.zeros(m, dtype=np.float32)
    popularity = index.popularity[positions]
    # Ids only for rates read by id; serving's catalog-aligned table needs none.
    by_id = signals.item_rates is None and signals.rates
    ids = [index.tracks[i].track_id for i in positions] if by_id else []
    rates = candidate_rates(positions, ids, signals.item_rates, signals.rates)
    terms["popular"] = config.popularity * stream_popularity(signals, ids, popularity, rates)
    session = session_of(view, profile, config)
    if session is not None and m:
        fit = view.space.kernel_at(session.centroid, positions, config.taste_bandwidth)
        genre_weights = np.zeros(len(index.genre_names), dtype=np.float32)
        for name, value in session.genres.items():
            genre_weights[view.index.genre_position[name]] = value
        in_genres = ((index.genre_matrix[positions] > 0) * genre_weights).max(axis=1, initial=0.0)
        terms["session"] = config.session * fit + config.session_genre * in_genres
    engagement, own_share = None, 0.0
    if m:
        context_x = context_vector(now_ms, context)
        engagement, own_share = engagement_of(view, profile, signals, positions, context_x, config)
        if engagement is not None:
            terms["engagement"] = config.engagement * 2.0 * (engagement - 0.5)
    if rates is not None:
        terms["quality"] = config.quality * quality_term(rates)
    terms.update(source_terms(candidates, {name: getattr(config, name) for name in SOURCE_TERMS}))
    if signals.artist_scores and m:
        by_artist = score_array(signals.artist_scores, index)[index.artist_of[positions]]
        top = by_artist.max()
        if top > 0:
            terms["similar_artists"] = config.similar_artists * by_artist / top
    if target is not None:
        terms["mood"] = mood_term(index.features[positions], target)
    if discovery > 0:
        terms["discovery"] = discovery_term(popularity, taste_fit, discovery, config.popularity,
                                            config.discovery)
    total = np.zeros(m, dtype=np.float64)
    share = learned_share(signals.ranker, config)
    for name, values in terms.items():
        total += (1.0 - share) * values if name in LEARNED_TERMS else values
    if share > 0 and m:
        audio = np.where(index.has_features[positions][:, None], index.features[positions], np.nan)
        x = assemble_ranker_features(scoring_profile, audio, genre_fit, artist_fit, popularity, engagement)
        learned = x @ np.asarray(signals.ranker.weights, dtype=np.float32)
        total += share * learned
        terms["ranker"] = (share * learned).astype(np.float32)
    return positions, total, terms, engagement, own_share


LEARNED_TERMS = frozenset({"taste", "genre", "artist", "engagement"})
"""The hand-weighted terms the learned ranker takes over as it learns (`ranking.ranker.FEATURES`)."""


def stream_popularity(signals: Signals, track_ids: Sequence[str], catalog: np.ndarray,
                      rates: np.ndarray | None = None) -> np.ndarray:
    """Popularity in [0, 1] from the stream: log(1 + listens) / log(1 + the most listened track's),
    listens from the item statistics of the candidates (`rates`, `candidate_rates` rows; default:
    `signals.rates` by id); the catalog's static popularity for a track the stream has not seen
    (or when no statistics were read)."""
    if rates is None and signals.item_rates is None:
        rates = candidate_rates(np.zeros(0, np.int64), track_ids, None, signals.rates)
    if rates is None or not signals.stream_popular:
        return np.asarray(catalog, dtype=np.float32)
    top = math.log1p(max(v for _, v in signals.stream_popular))
    out = np.asarray(catalog, dtype=np.float32).copy()
    if top <= 0:
        return out
    listens = rates[:, 2]
    streamed = listens > 0  # NaN (no statistics) compares False
    out[streamed] = np.minimum(1.0, np.log1p(listens[streamed]) / top)
    return out


def learned_share(ranker: RankerState | None, config: RankingConfig = RANKING_CONFIG) -> float:
    """How much the learned ranker counts against the hand weights: e / (e + ranker_prior_examples),
    e = the examples of its rarer outcome (positive or negative), and only while its progressive AUC
    beats the prior's on the same events. 0 without a ranker, for one whose features this code does
    not know, one that has seen a single outcome (a stream of completes alone says nothing about
    what ranks well), or one the prior still ranks better than."""
    if ranker is None or tuple(ranker.features) != RANKER_FEATURES or ranker.examples <= 0:
        return 0.0
    evidence = min(ranker.positives, ranker.examples - ranker.positives)
    auc = ranker.metrics.get("auc", {})
    if evidence <= 0 or not auc.get("learned", 0.0) > auc.get("prior", 0.0):
        return 0.0
    return evidence / (evidence + config.ranker_prior_examples)
