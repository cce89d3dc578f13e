"""The recommendation pipeline, pure: from a live profile and what serving read from Redis to a list.

```
profile (+ seed) ──► gather (sources, merge) ──► score (terms) ──► pick (exclude, diversify, explain)
```

Serving (`serving/recommender.py`) does the I/O between the steps: after `gather` it reads the
item rates of the candidates, then calls `score` and `pick`. Every step is deterministic.

Terms of the score (each already × its weight; the weights' one place is `scoring.RankingWeights`,
`candidates.SOURCE_WEIGHTS` and `moods`; see docs/ranking.md):

| term | from |
|---|---|
| `taste` | taste kernel to the profile's taste vector |
| `genre`, `artist` | squashed affinities |
| `popularity` | catalog popularity prior |
| `engagement` | the listener's own engagement model (else the global model): `2·(p − ½)` |
| `quality` | item quality from live statistics: like rate above the prior, minus skip rate above it |
| `co_listening`, `trending` | the source scores, scaled to the best among the candidates |
| `mood` | fit to the mood / activity / time-of-day target |
| `discovery` | less popular tracks close to the taste (only when `discovery` > 0) |

>>> from schemas.tracks import Track
>>> from schemas.profile_codec import UserProfile
>>> def track(tid, artist, genre, energy, popularity=50):
...     return Track(track_id=tid, title=tid.upper(), artist=artist, genres=[genre], popularity=popularity,
...                  danceability=0.5, energy=energy, valence=0.5, acousticness=0.5,
...                  instrumentalness=0.0, liveness=0.1, speechiness=0.1, tempo=120, loudness=-6)
>>> view = CatalogView.build([track("a", "X", "rock", 0.9), track("b", "Y", "rock", 0.85),
...                           track("c", "Z", "jazz", 0.2), track("d", "X", "rock", 0.95)])
>>> profile = UserProfile("u", version=3, taste=list(view.index.features[0]), genres={"rock": 2.0})
>>> request = RecommendRequest(k=2, now_ms=1_795_248_000_000)
>>> candidates = gather(view, profile, None, Signals(), request)
>>> picked = pick(view, profile, score(view, profile, None, candidates, Signals(), request), request)
>>> [(item.track_id, item.reasons[0]) for item in picked]  # d is close to a, by the same artist
[('a', 'matches your high-energy taste'), ('b', 'matches your high-energy taste')]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from online_models import candidates as cand
from online_models.catalog_index import CatalogIndex
from online_models.context_features import (
    GENRE_BUCKETS,
    GENRE_OFFSET,
    MISSING_INDEX,
    PREDICTED_INDEX,
    TRACK_DIM,
    context_vector,
    score_tracks,
    stable_bucket,
)
from online_models.diversity import (
    DIVERSITY_DEFAULT,
    MAX_PER_ARTIST,
    TasteClusters,
    diversify,
    taste_clusters,
)
from online_models.explain import explain
from online_models.item_stats import RATE_PRIORS
from online_models.moods import MoodTarget, discovery_term, mood_term, resolve_target
from online_models.scoring import RANKING_WEIGHTS, RankingWeights, describe_taste, squash_affinities
from schemas.events import EventContext, EventType
from schemas.profile_codec import UserProfile

POPULAR_KEPT = 2_000
"""Popular tracks kept per catalog view for the `popular` source (it excludes from these)."""
PARTITION_MIN_TRACKS = 200_000
"""Above this many tracks the taste source searches coarse cells (`PartitionIndex`), not every row."""
SEED_FADE_EVENTS = 20
"""Declared favourites count fully for a new listener and fade out over this many applied events."""
DISLIKED_ARTIST_BELOW = -0.8
"""An artist whose affinity is below this (about one recent dislike, or a run of early skips) is left out."""
OWN_MODEL_PRIOR_EVENTS = 10
"""Events after which a listener's own engagement model counts as much as the global one."""
CLUSTER_LIKES = 24
"""Liked tracks (the profile's recent likes and completes) that taste clusters are found from."""


@dataclass(frozen=True)
class ExclusionRules:
    """What a listener is not offered again (serving's `ENCORE_EXCLUDE_*` settings)."""

    recent_events: int = 24
    """Tracks of the listener's latest this-many events (played, skipped, liked...) are left out."""
    disliked_artist_below: float = DISLIKED_ARTIST_BELOW


EXCLUSION_RULES = ExclusionRules()


@dataclass(frozen=True)
class CatalogView:
    """Everything serving keeps per catalog version: the index, its z space, the model's track rows."""

    index: CatalogIndex
    space: cand.FeatureSpace
    track_x: np.ndarray
    """(n, TRACK_DIM) float32: the track part of the engagement model's features."""
    partition: cand.PartitionIndex | None = None
    artist_keys: Mapping[str, list[int]] = field(default_factory=dict)
    """Lower-cased artist name → indices into `index.artist_names` (for seeds)."""
    genre_rows: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Genre → catalog positions of its tracks (the `genre` source searches only these)."""
    artist_rows: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Artist name → catalog positions of their tracks (the `artist` source)."""
    global_taste: np.ndarray = field(default_factory=lambda: np.full(9, 0.5, np.float32))
    """`candidates.global_taste` of the catalog: the cold-start taste, computed once."""
    popular_order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """The most popular `POPULAR_KEPT` positions, best first (ties by position), computed once."""

    @classmethod
    def build(cls, tracks: Sequence, partition_min_tracks: int = PARTITION_MIN_TRACKS) -> CatalogView:
        return cls.from_index(CatalogIndex.build(tracks), partition_min_tracks)

    @classmethod
    def from_index(cls, index: CatalogIndex, partition_min_tracks: int = PARTITION_MIN_TRACKS) -> CatalogView:
        space = cand.FeatureSpace.from_index(index)
        partition = cand.PartitionIndex.build(space) if len(index) >= partition_min_tracks else None
        genre_rows = {}
        if index.genre_names:
            rows, cols = np.nonzero(index.genre_matrix)
            order = np.argsort(cols, kind="stable")
            rows, cols = rows[order], cols[order]
            bounds = np.searchsorted(cols, np.arange(len(index.genre_names) + 1))
            genre_rows = {name: rows[bounds[g] : bounds[g + 1]].astype(np.int64)
                          for g, name in enumerate(index.genre_names)}
        order = np.argsort(index.artist_of, kind="stable")
        bounds = np.searchsorted(index.artist_of[order], np.arange(len(index.artist_names) + 1))
        artist_rows = {name: order[bounds[a] : bounds[a + 1]].astype(np.int64)
                       for a, name in enumerate(index.artist_names) if name}
        return cls(index, space, catalog_track_matrix(index), partition, cand.artist_lookup(index),
                   genre_rows, artist_rows, cand.global_taste(index),
                   cand.popular_candidates(index, POPULAR_KEPT).positions)

    def __len__(self) -> int:
        return len(self.index)

    def taste_source(
        self, taste: Sequence[float] | np.ndarray, n: int, exclude: Collection[int], source: str = cand.TASTE
    ) -> cand.SourceCandidates:
        if self.partition is not None:
            return self.partition.query(taste, n, exclude=exclude, source=source)
        return cand.taste_neighbours(self.space, taste, n, exclude, source=source)


def catalog_track_matrix(index: CatalogIndex) -> np.ndarray:
    """`context_features.track_matrix` of the whole catalog, vectorised (1M tracks in about a second).

    Equal to `track_matrix(index.tracks)` (tested): centred audio features (0 when missing), the
    missing and predicted flags, and each genre's 1/√n share in its hashed bucket."""
    n = len(index)
    x = np.zeros((n, TRACK_DIM), dtype=np.float32)
    audio = index.features - np.float32(0.5)
    x[:, : audio.shape[1]] = np.where(index.has_features[:, None], audio, 0.0)
    x[:, MISSING_INDEX] = ~index.has_features
    x[:, PREDICTED_INDEX] = [bool(t.features_predicted) for t in index.tracks]
    if index.genre_names:
        member = index.genre_matrix > 0
        share = 1.0 / np.sqrt(np.maximum(member.sum(1, keepdims=True), 1))
        buckets = np.zeros((len(index.genre_names), GENRE_BUCKETS), dtype=np.float32)
        for g, name in enumerate(index.genre_names):
            buckets[g, stable_bucket("genre", name, GENRE_BUCKETS)] = 1.0
        x[:, GENRE_OFFSET : GENRE_OFFSET + GENRE_BUCKETS] = (member * share).astype(np.float32) @ buckets
    return x


@dataclass(frozen=True)
class Signals:
    """What serving read from Redis besides the profile (all optional: empty = not available)."""

    neighbours: Mapping[str, Sequence[tuple[str, float]]] = field(default_factory=dict)
    """Co-listening rows of the listener's recent positives: track → [(neighbour, count)]."""
    trending: Sequence[tuple[str, float]] = ()
    """(track_id, trending score), overall and in the listener's genres."""
    rates: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    """track → (smoothed like rate, smoothed skip rate, listens), from the flow's item statistics."""
    global_weights: np.ndarray | None = None
    """The newest global engagement model (78 float32), for listeners without their own."""


@dataclass(frozen=True)
class RecommendRequest:
    k: int = 10
    now_ms: int = 0
    """Wall-clock time of the request: the engagement model's time-of-day."""
    mood: str | None = None
    activity: str | None = None
    hour: int | None = None
    """The listener's local hour (0–23) for the time-of-day target; None = no time-of-day nudge."""
    diversity: float = DIVERSITY_DEFAULT
    discovery: float = 0.0
    exclude: frozenset[str] = frozenset()
    rules: ExclusionRules = EXCLUSION_RULES

    clock_hour: int | None = None
    """The server clock's UTC hour: the time-of-day default when the request gives no `hour`. It
    nudges the score but gives no reason (UTC is not necessarily the listener's time)."""

    @property
    def target(self) -> MoodTarget | None:
        target = resolve_target(self.mood, self.activity, self.hour)
        if target is None and self.clock_hour is not None:
            target = resolve_target(None, None, self.clock_hour)
            if target is not None:
                target = replace(target, label="")
        return target

    @property
    def context(self) -> EventContext | None:
        if not (self.mood or self.activity):
            return None
        return EventContext(mood=self.mood, activity=self.activity)


@dataclass(frozen=True)
class SeedFavourites:
    """Declared favourites as stored (`POST /v1/users/{id}/seed`)."""

    track_ids: tuple[str, ...] = ()
    artists: tuple[str, ...] = ()


def seed_of(view: CatalogView, favourites: SeedFavourites) -> cand.SeedProfile:
    """`candidates.seed_profile` of stored favourites, with the view's precomputed artist lookup."""
    return cand.seed_profile(view.index, favourites.track_ids, favourites.artists,
                             artist_keys=view.artist_keys)


def effective_profile(
    profile: UserProfile | None, seed: cand.SeedProfile | None, user_id: str = ""
) -> UserProfile | None:
    """The profile to score with: the live one, with declared favourites blended in while it is young.

    The seed's affinities count fully at version 0 and fade linearly to nothing at
    `SEED_FADE_EVENTS` applied events; its taste stands in until the listener has one."""
    if seed is None:
        return profile
    if profile is None:
        return seed.to_profile(user_id)
    share = max(0.0, 1.0 - profile.version / SEED_FADE_EVENTS)
    if share <= 0 and profile.taste:
        return profile
    genres = dict(profile.genres)
    artists = dict(profile.artists)
    for name, value in seed.genres.items():
        genres[name] = genres.get(name, 0.0) + share * value
    for name, value in seed.artists.items():
        artists[name] = artists.get(name, 0.0) + share * value
    return UserProfile(
        profile.user_id, version=profile.version, as_of_ms=profile.as_of_ms,
        taste=list(profile.taste) or list(seed.taste), genres=genres, artists=artists,
        recent=profile.recent, model_weights=profile.model_weights, tod_counts=profile.tod_counts,
    )


def excluded_positions(view: CatalogView, profile: UserProfile | None, request: RecommendRequest) -> set[int]:
    """Catalog positions not to offer: the request's list, recent tracks, disliked tracks and artists."""
    index = view.index
    out = {index.position[t] for t in request.exclude if t in index.position}
    if profile is None:
        return out
    rules = request.rules
    recent = profile.recent[-rules.recent_events :] if rules.recent_events > 0 else []
    for item in recent:
        i = index.position.get(item.track_id)
        if i is not None:
            out.add(i)
    for item in profile.recent:
        if item.type is EventType.DISLIKE and item.track_id in index.position:
            out.add(index.position[item.track_id])
    disliked = [name for name, score in profile.artists.items() if score < rules.disliked_artist_below]
    if disliked:
        keys = [k for name in disliked for k in view.artist_keys.get(name.strip().lower(), [])]
        exact = [k for k in keys if index.artist_names[k] in profile.artists]
        if exact:
            out.update(int(i) for i in np.flatnonzero(np.isin(index.artist_of, exact)))
    return out


def liked_positions(view: CatalogView, profile: UserProfile | None, limit: int = CLUSTER_LIKES) -> list[int]:
    """Catalog positions of the profile's recent likes and completes with features, newest first."""
    if profile is None:
        return []
    out: list[int] = []
    for item in reversed(profile.recent):
        if item.type in (EventType.LIKE, EventType.COMPLETE):
            i = view.index.position.get(item.track_id)
            if i is not None and view.index.has_features[i] and i not in out:
                out.append(i)
                if len(out) >= limit:
                    break
    return out


def listener_clusters(view: CatalogView, profile: UserProfile | None) -> TasteClusters | None:
    liked = liked_positions(view, profile)
    if len(liked) < 4:
        return None
    return taste_clusters(view.space.z[liked])


SESSION = "session"
GENRE = "genre"
ARTIST = "artist"
SESSION_POSITIVES = 3
"""The listener's latest likes and completes that make up their current session."""
WITHIN_EXACT_MAX = 20_000
"""A genre with more tracks than this is searched through the cell index (big catalogs only)."""
WITHIN_PROBE = 32
"""Cells the genre source probes then (twice the taste source's: a genre is a subset of each cell)."""
SESSION_RECENCY = 0.4
"""Weight of each older positive in the session, relative to the next newer one."""
SESSION_CANDIDATES = 100
GENRE_CANDIDATES = 150
ARTIST_CANDIDATES = 60


@dataclass(frozen=True)
class Session:
    """What the listener enjoyed just now: the recency-weighted centre of their latest positives, and
    each genre's weight among them (the newest counts most, so one like already turns the session)."""

    centroid: np.ndarray
    genres: Mapping[str, float]
    positions: tuple[int, ...]


def session_of(view: CatalogView, profile: UserProfile | None, n: int = SESSION_POSITIVES) -> Session | None:
    """The short-term taste: it follows a listener who switches at once (the long-term taste and the
    decayed affinities take many events to turn around)."""
    liked = liked_positions(view, profile, n)
    if not liked:
        return None
    weights = SESSION_RECENCY ** np.arange(len(liked))
    weights /= weights.sum()
    genres: dict[str, float] = {}
    for w, i in zip(weights, liked, strict=True):
        for g in set(view.index.tracks[i].genres):
            genres[g] = genres.get(g, 0.0) + float(w)
    centroid = (weights[:, None] * view.index.features[liked]).sum(0).astype(np.float32)
    return Session(centroid, genres, tuple(liked))


def _strongest(scores: Mapping[str, float], n: int) -> list[tuple[str, float]]:
    return sorted(((k, v) for k, v in scores.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))[:n]


def _within(
    view: CatalogView, rows_of: Mapping[str, np.ndarray], names: Sequence[tuple[str, float]],
    taste: Sequence[float] | None, n: int, exclude: Collection[int], source: str,
) -> cand.SourceCandidates:
    """The best tracks of the listener's strongest genres (or artists): by the taste kernel when there
    is a taste, else by popularity; the quota shared in proportion to the affinities, in turns."""
    parts = []
    total = sum(v for _, v in names) or 1.0
    for name, value in names:
        rows = rows_of.get(name)
        if rows is None or len(rows) == 0:
            continue
        column = view.index.genre_position.get(name)
        if taste and view.partition is not None and len(rows) > WITHIN_EXACT_MAX and column is not None:
            # A big catalog's genre holds tens of thousands of tracks: search only the cells nearest
            # the taste (as the taste source does), keeping the genre's tracks among them.
            near = view.partition.probe(taste, WITHIN_PROBE)
            rows = near[view.index.genre_matrix[near, column] > 0]
            if len(rows) == 0:
                continue
        fit = view.space.kernel_at(taste, rows, 1.0) if taste else view.index.popularity[rows]
        share = max(1, round(n * value / total))
        # Only the best `share + |exclude|` can make it: partition first, so a 100k-track genre
        # costs one pass, then sort the few (ties by position).
        keep = min(len(rows), share + len(exclude))
        best = np.argpartition(-fit, keep - 1)[:keep] if keep < len(rows) else np.arange(len(rows))
        order = best[np.lexsort((rows[best], -fit[best]))]
        parts.append([(int(rows[j]), float(fit[j])) for j in order if int(rows[j]) not in exclude][:share])
    positions: list[int] = []
    scores: list[float] = []
    seen: set[int] = set()
    for depth in range(max((len(p) for p in parts), default=0)):
        for part in parts:
            if depth < len(part) and part[depth][0] not in seen:
                seen.add(part[depth][0])
                positions.append(part[depth][0])
                scores.append(part[depth][1])
    return cand.SourceCandidates(source, np.array(positions, np.int64), np.array(scores, np.float32))


@dataclass
class Gathered:
    candidates: list[cand.Candidate]
    excluded: set[int]
    clusters: TasteClusters | None
    cold_start: bool


def gather(
    view: CatalogView,
    profile: UserProfile | None,
    seed: cand.SeedProfile | None,
    signals: Signals,
    request: RecommendRequest,
) -> Gathered:
    """Candidates from every source that applies, merged (see `candidates.merge_candidates`)."""
    index = view.index
    scoring_profile = effective_profile(profile, seed)
    excluded = excluded_positions(view, profile, request)
    if seed is not None:
        excluded.update(seed.positions)  # declared favourites are known already: offer what is new
    clusters = listener_clusters(view, profile)
    sources: list[cand.SourceCandidates] = []
    cold = scoring_profile is None or (not scoring_profile.taste and not scoring_profile.genres)
    if scoring_profile is not None and scoring_profile.taste:
        if clusters is not None and clusters.k >= 2:
            sources.append(cand.cluster_neighbours(view.space, clusters.centroids, 200, excluded,
                                                   search=view.taste_source))
        else:
            sources.append(view.taste_source(scoring_profile.taste, 200, excluded))
    elif cold:
        sources.append(view.taste_source(view.global_taste, 200, excluded))
    session = session_of(view, profile)
    if session is not None:
        sources.append(view.taste_source(session.centroid, SESSION_CANDIDATES, excluded, source=SESSION))
    if profile is not None and signals.neighbours:
        seeds = cand.recent_positives(profile)
        sources.append(cand.co_listening_neighbours(index, seeds, signals.neighbours, exclude=excluded))
    if scoring_profile is not None:
        taste = scoring_profile.taste or None
        sources.append(_within(view, view.genre_rows, _strongest(scoring_profile.genres, 3), taste,
                               GENRE_CANDIDATES, excluded, GENRE))
        sources.append(_within(view, view.artist_rows, _strongest(scoring_profile.artists, 6), taste,
                               ARTIST_CANDIDATES, excluded, ARTIST))
    if seed is not None and seed.taste:
        sources.append(cand.seed_candidates(view.space, seed, exclude=excluded))
    if signals.trending:
        sources.append(cand.trending_candidates(index, signals.trending, exclude=excluded))
    sources.append(cand.popular_candidates(index, 100 if cold else 50, excluded, order=view.popular_order))
    merged = cand.merge_candidates(sources, exclude=excluded)
    return Gathered(merged, excluded, clusters, cold)


@dataclass
class Scored:
    candidates: list[cand.Candidate]
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


def own_model_share(profile: UserProfile | None) -> float:
    """How much the listener's own engagement model counts against the global one: n / (n + 10),
    n = their events with a clear signal (likes, completes, dislikes, skips). A new listener starts
    from the global model and moves to their own as it learns (a warm start done at scoring time, so
    it is the same on every replay)."""
    if profile is None or not profile.model_weights:
        return 0.0
    n = sum(profile.counts.get(t, 0) for t in (EventType.LIKE, EventType.COMPLETE, EventType.DISLIKE,
                                                EventType.SKIP))
    return n / (n + OWN_MODEL_PRIOR_EVENTS)


def engagement_of(
    view: CatalogView, profile: UserProfile | None, signals: Signals, positions: np.ndarray,
    context: np.ndarray,
) -> tuple[np.ndarray | None, float]:
    """P(like or complete) of each candidate, blending the listener's and the global model; and the
    listener's own share."""
    share = own_model_share(profile)
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
    prior_like = RATE_PRIORS.like_rate
    prior_skip = RATE_PRIORS.skip_rate
    out = np.zeros(len(track_ids), dtype=np.float32)
    for j, track_id in enumerate(track_ids):
        rate = rates.get(track_id)
        if rate is not None:
            out[j] = (rate[0] - prior_like) - (rate[1] - prior_skip)
    return out


def score(
    view: CatalogView,
    profile: UserProfile | None,
    seed: cand.SeedProfile | None,
    gathered: Gathered | Sequence[cand.Candidate],
    signals: Signals,
    request: RecommendRequest,
    weights: RankingWeights = RANKING_WEIGHTS,
) -> Scored:
    """Every term for every candidate, and their sum."""
    if isinstance(gathered, Gathered):
        candidates, clusters, cold = gathered.candidates, gathered.clusters, gathered.cold_start
    else:
        candidates, clusters, cold = list(gathered), None, False
    index = view.index
    scoring_profile = effective_profile(profile, seed)
    positions = np.array([c.position for c in candidates], dtype=np.int64)
    m = len(positions)
    terms: dict[str, np.ndarray] = {}
    taste_vector = (
        scoring_profile.taste if scoring_profile is not None and scoring_profile.taste
        else view.global_taste
    )
    taste_fit = view.space.kernel_at(taste_vector, positions, weights.taste_bandwidth)
    terms["taste"] = weights.taste * taste_fit
    if scoring_profile is not None:
        genre_vector = squash_affinities(scoring_profile.genres, index.genre_position, weights.affinity_scale)
        terms["genre"] = weights.genre * (index.genre_matrix[positions] @ genre_vector)
        artist_vector = squash_affinities(scoring_profile.artists, index.artist_position,
                                          weights.affinity_scale)
        terms["artist"] = weights.artist * artist_vector[index.artist_of[positions]]
    popularity = index.popularity[positions]
    terms["popular"] = weights.popularity * popularity
    session = session_of(view, profile)
    if session is not None and m:
        fit = view.space.kernel_at(session.centroid, positions, weights.taste_bandwidth)
        genre_weights = np.zeros(len(index.genre_names), dtype=np.float32)
        for name, value in session.genres.items():
            genre_weights[view.index.genre_position[name]] = value
        in_genres = ((index.genre_matrix[positions] > 0) * genre_weights).max(axis=1, initial=0.0)
        terms["session"] = weights.session * fit + weights.session_genre * in_genres
    engagement, own_share = None, 0.0
    if m:
        context = context_vector(request.now_ms, request.context)
        engagement, own_share = engagement_of(view, profile, signals, positions, context)
        if engagement is not None:
            terms["engagement"] = weights.engagement * 2.0 * (engagement - 0.5)
    if signals.rates:
        ids = [index.tracks[i].track_id for i in positions]
        terms["quality"] = weights.quality * quality_of(signals.rates, ids)
    terms.update(cand.source_terms(candidates))
    target = request.target
    if target is not None:
        terms["mood"] = mood_term(index.features[positions], target)
    if request.discovery > 0:
        terms["discovery"] = discovery_term(popularity, taste_fit, request.discovery, weights.popularity)
    total = np.zeros(m, dtype=np.float64)
    for values in terms.values():
        total += values
    return Scored(candidates, positions, total, terms, engagement, scoring_profile, target, clusters, cold,
                  own_share >= 0.5)


@dataclass
class RankedTrack:
    position: int
    track_id: str
    score: float
    reasons: list[str]
    sources: list[str]
    engagement: float | None


def pick(
    view: CatalogView,
    profile: UserProfile | None,
    scored: Scored,
    request: RecommendRequest,
    diversify_list: bool = True,
    max_per_artist: int | None = MAX_PER_ARTIST,
) -> list[RankedTrack]:
    """The k to show: diversified across the listener's taste clusters with an artist cap, explained."""
    index = view.index
    positions = scored.positions
    if len(positions) == 0:
        return []
    if scored.cold_start and diversify_list:
        order = _turns_across_genres(view, scored, request.k, max_per_artist)
    elif diversify_list:
        order = diversify(scored.scores, view.space.z[positions], index.artist_of[positions], request.k,
                          request.diversity, max_per_artist, scored.clusters)
    else:
        order = [int(j) for j in np.lexsort((positions, -scored.scores))][: request.k]
    scoring_profile = scored.profile
    has_taste = scoring_profile is not None and scoring_profile.taste
    taste_words = describe_taste(index, scoring_profile.taste) if has_taste else []
    liked_genres = scoring_profile.genres if scoring_profile is not None else {}
    label = scored.target.label if scored.target is not None else None
    out = []
    for j in order:
        i = int(positions[j])
        track = index.tracks[i]
        contributions = {name: float(values[j]) for name, values in scored.terms.items()}
        if scored.cold_start:
            contributions["taste"] = 0.0  # the global taste is nobody's taste: no "matches your taste"
        if not scored.own_model:
            contributions.pop("engagement", None)  # the global model says nothing about *you*
        candidate = scored.candidates[j]
        via = index.position.get(candidate.via) if candidate.via else None
        reasons = explain(track, contributions, via=index.tracks[via] if via is not None else None,
                          taste_words=taste_words, liked_genres=liked_genres, mood_label=label)
        out.append(RankedTrack(
            position=i, track_id=track.track_id, score=round(float(scored.scores[j]), 6), reasons=reasons,
            sources=sorted(candidate.sources),
            engagement=round(float(scored.engagement[j]), 6) if scored.engagement is not None else None,
        ))
    return out


def _turns_across_genres(view: CatalogView, scored: Scored, k: int, max_per_artist: int | None) -> list[int]:
    """Cold start: the best candidate of each first genre in turns (genres ordered by their best), so
    a listener nobody knows yet sees the catalog's range, not ten tracks of its most popular genre."""
    index = view.index
    by_genre: dict[str, list[int]] = {}
    for j in np.lexsort((scored.positions, -scored.scores)).tolist():
        track = index.tracks[int(scored.positions[j])]
        by_genre.setdefault(track.genres[0] if track.genres else "", []).append(int(j))
    queues = list(by_genre.values())
    cap = k if max_per_artist is None else max_per_artist
    per_artist: dict[int, int] = {}
    picked: list[int] = []
    depth = 0
    while len(picked) < k and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(picked) < k:
                artist = int(index.artist_of[scored.positions[queue[depth]]])
                if per_artist.get(artist, 0) < cap:
                    per_artist[artist] = per_artist.get(artist, 0) + 1
                    picked.append(queue[depth])
        depth += 1
    return sorted(picked, key=lambda j: -scored.scores[j])


def rank_given(
    view: CatalogView,
    profile: UserProfile | None,
    seed: cand.SeedProfile | None,
    track_ids: Sequence[str],
    signals: Signals,
    request: RecommendRequest,
) -> tuple[list[RankedTrack], list[str]]:
    """Re-rank a caller's tracks (best first) with the full score; unknown ids come back separately.

    Nothing is excluded or dropped (the caller chose the list); duplicates count once. Co-listening
    and trending terms apply to the given tracks that those sources would have proposed."""
    index = view.index
    positions: list[int] = []
    unknown: list[str] = []
    seen: set[int] = set()
    for track_id in track_ids:
        i = index.position.get(track_id)
        if i is None:
            if track_id not in unknown:
                unknown.append(track_id)
        elif i not in seen:
            seen.add(i)
            positions.append(i)
    proposals = {i: cand.Candidate(i) for i in positions}
    extra: list[cand.SourceCandidates] = []
    if profile is not None and signals.neighbours:
        extra.append(cand.co_listening_neighbours(index, cand.recent_positives(profile), signals.neighbours,
                                                  n=len(index)))
    if signals.trending:
        extra.append(cand.trending_candidates(index, signals.trending, n=len(index)))
    for source in extra:
        for j, i in enumerate(source.positions.tolist()):
            candidate = proposals.get(i)
            if candidate is not None:
                candidate.sources[source.source] = float(source.scores[j])
                if source.via is not None and candidate.via is None:
                    candidate.via = source.via[j]
    candidates = [proposals[i] for i in positions]
    scored = score(view, profile, seed, candidates, signals, request)
    full = RecommendRequest(**{**request.__dict__, "k": len(candidates)})
    items = pick(view, profile, scored, full, diversify_list=request.diversity > 0,
                 max_per_artist=None)
    return items, unknown


def similar_to(
    view: CatalogView,
    position: int,
    neighbours: Sequence[tuple[str, float]],
    request: RecommendRequest,
) -> list[RankedTrack]:
    """Tracks like one track: its audio neighbours and its co-listening neighbours, artist-capped.

    score = taste kernel to the track + 0.5 × co-listening count / the row's top count; the track's
    own artist is capped like any other (at most `MAX_PER_ARTIST`)."""
    index = view.index
    track = index.tracks[position]
    exclude = {position} | {index.position[t] for t in request.exclude if t in index.position}
    sources = []
    if index.has_features[position]:
        sources.append(view.taste_source(index.features[position], 200, exclude))
    sources.append(cand.co_listening_neighbours(index, [(track.track_id, 1.0)],
                                                {track.track_id: neighbours}, exclude=exclude))
    merged = cand.merge_candidates(sources, exclude=exclude)
    positions = np.array([c.position for c in merged], dtype=np.int64)
    if len(positions) == 0:
        return []
    if index.has_features[position]:
        fit = view.space.kernel_at(index.features[position], positions, 1.0)
    else:
        fit = np.zeros(len(positions), np.float32)
    together = np.array([c.sources.get(cand.CO_LISTENING, 0.0) for c in merged], dtype=np.float32)
    if together.max(initial=0.0) > 0:
        together = 0.5 * together / together.max()
    total = fit + together
    target = request.target
    if target is not None:
        total = total + mood_term(index.features[positions], target)
    order = diversify(total, view.space.z[positions], index.artist_of[positions], request.k,
                      request.diversity, MAX_PER_ARTIST, None)
    words = describe_taste(index, list(index.features[position]), limit=2)
    title = f"{track.title or track.track_id}" + (f" by {track.artist}" if track.artist else "")
    out = []
    for j in order:
        reasons = []
        if together[j] > 0.05:
            reasons.append(f"listeners play it with {title}")
        if fit[j] > 0.6:
            reasons.append(f"sounds like {title}" + (f": {' and '.join(words)}" if words else ""))
        if target is not None and mood_term(index.features[positions[j : j + 1]], target)[0] > 0.3:
            reasons.append(target.label)
        other = index.tracks[int(positions[j])]
        out.append(RankedTrack(
            position=int(positions[j]), track_id=other.track_id, score=round(float(total[j]), 6),
            reasons=reasons or [f"close to {title}"], sources=sorted(merged[j].sources), engagement=None,
        ))
    return out
