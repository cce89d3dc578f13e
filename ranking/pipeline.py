"""The recommendation pipeline, pure: from a live profile and what serving read from Redis to a list.

```
profile (+ seed) ──► gather (sources, merge) ──► score (terms) ──► pick (exclude, diversify, explain)
```

Serving (`serving/recommender.py`) does the I/O between the steps: after `gather` it reads the
item rates of the candidates, then calls `score` and `pick`. Every step is deterministic, and every
number comes from the request's `RankingConfig`.

>>> from schemas.tracks import Track
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

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ranking import explore as exploration
from ranking import scoring
from ranking.candidates import Candidate, CandidateTable, SourceCandidates, merge_candidates
from ranking.catalog_view import CatalogView
from ranking.config import EXCLUSION_RULES, RANKING_CONFIG, ExclusionRules, RankingConfig
from ranking.diversity import TasteClusters, diversify
from ranking.explain import explain
from ranking.listener import excluded_positions, listener_clusters, recent_positives, session_of
from ranking.moods import MoodTarget, resolve_target
from ranking.scoring import Scored, describe_taste
from ranking.seeds import SeedProfile, effective_profile
from ranking.sources import SOURCES, SourceContext, propose_all
from ranking.sources.base import Signals
from ranking.sources.co_listening import co_listening_neighbours
from ranking.sources.familiar import NAME as FAMILIAR
from ranking.sources.trending import trending_candidates
from schemas.events import EventContext
from schemas.profile_codec import UserProfile


@dataclass(frozen=True)
class RecommendRequest:
    k: int = 10
    now_ms: int = 0
    """Wall-clock time of the request: the engagement model's time-of-day."""
    mood: str | None = None
    activity: str | None = None
    hour: int | None = None
    """The listener's local hour (0–23) for the time-of-day target; None = no time-of-day nudge."""
    diversity: float = RANKING_CONFIG.diversity_default
    discovery: float = 0.0
    exclude: frozenset[str] = frozenset()
    familiar: float = 0.0
    """Share of the list (0–1) kept for tracks the listener enjoyed before, past the cool-down."""
    rules: ExclusionRules = EXCLUSION_RULES
    clock_hour: int | None = None
    """The server clock's UTC hour: the time-of-day default when the request gives no `hour`. It
    nudges the score but gives no reason (UTC is not necessarily the listener's time)."""
    config: RankingConfig = field(default=RANKING_CONFIG, compare=False)
    """Every weight, quota and threshold (not part of equality: cache keys use its digest)."""

    @cached_property
    def target(self) -> MoodTarget | None:
        """Resolved once per request (the route, scoring and picking all ask)."""
        target = resolve_target(self.mood, self.activity, self.hour, self.config)
        if target is None and self.clock_hour is not None:
            target = resolve_target(None, None, self.clock_hour, self.config)
            if target is not None:
                target = replace(target, label="")
        return target

    @property
    def context(self) -> EventContext | None:
        if not (self.mood or self.activity):
            return None
        return EventContext(mood=self.mood, activity=self.activity)


@dataclass
class Gathered:
    candidates: CandidateTable
    excluded: set[int]
    clusters: TasteClusters | None
    cold_start: bool
    explore: dict[str, list[int]] = field(default_factory=dict)
    """Exploration arm → indices of the candidates it proposed (`ranking.explore`)."""
    explore_only: frozenset[int] = frozenset()


def gather(
    view: CatalogView,
    profile: UserProfile | None,
    seed: SeedProfile | None,
    signals: Signals,
    request: RecommendRequest,
) -> Gathered:
    """Candidates from every configured source that applies, merged (`candidates.merge_candidates`)."""
    config = request.config
    scoring_profile = effective_profile(profile, seed, config=config)
    excluded = excluded_positions(view, profile, request.exclude, request.rules)
    if seed is not None:
        excluded.update(seed.positions)  # declared favourites are known already: offer what is new
    clusters = listener_clusters(view, profile, config)
    cold = scoring_profile is None or (not scoring_profile.taste and not scoring_profile.genres)
    ctx = SourceContext(view, profile, scoring_profile, seed, signals, config, request.rules, excluded,
                        clusters, session_of(view, profile, config), cold)
    merged = merge_candidates(propose_all(ctx), quotas=config.quotas, limit=config.merge_limit,
                              exclude=excluded)
    arms: dict[str, list[int]] = {}
    only: set[int] = set()
    if not cold and exploration.slots(request.k, config.explore_share, config.explore_min_k):
        arms, only = _explore_candidates(ctx, merged)
    return Gathered(merged, excluded, clusters, cold, arms, frozenset(only))


def _explore_candidates(ctx: SourceContext, merged: CandidateTable) -> tuple[dict[str, list[int]], set[int]]:
    """Each exploration arm's proposals, as indices into `merged` (new candidates appended to it)."""
    by_position = {i: j for j, i in enumerate(merged.positions.tolist())}
    arms: dict[str, list[int]] = {}
    only: set[int] = set()
    for arm in ctx.config.explore_arms:
        source = SOURCES.get(arm)
        if source is None:
            raise ValueError(f"unknown exploration arm {arm!r}; known: {', '.join(sorted(SOURCES))}")
        proposed = source.propose(ctx, ctx.config.explore_quota)
        if proposed is None:
            continue
        indices = []
        for i, value in zip(proposed.positions.tolist(), proposed.scores.tolist(), strict=True):
            if i in ctx.excluded:
                continue
            j = by_position.get(i)
            if j is None:
                j = by_position[i] = merged.append(i)
                only.add(j)
            merged.setdefault(j, arm, float(value))
            indices.append(j)
        if indices:
            arms[arm] = indices
    return arms, only


def score(
    view: CatalogView,
    profile: UserProfile | None,
    seed: SeedProfile | None,
    gathered: Gathered | Sequence[Candidate],
    signals: Signals,
    request: RecommendRequest,
) -> Scored:
    """Every term for every candidate, and their sum (`ranking.scoring.score`)."""
    arms: dict[str, list[int]] = {}
    only: frozenset[int] = frozenset()
    if isinstance(gathered, Gathered):
        candidates, clusters, cold = gathered.candidates, gathered.clusters, gathered.cold_start
        arms, only = gathered.explore, gathered.explore_only
    else:
        candidates, clusters, cold = CandidateTable.from_candidates(gathered), None, False
    scoring_profile = effective_profile(profile, seed, config=request.config)
    target = request.target
    positions, total, terms, engagement, own_share = scoring.score(
        view, profile, scoring_profile, candidates, signals, request.now_ms, request.context, target,
        request.discovery, request.config)
    return Scored(candidates, positions, total, terms, engagement, scoring_profile, target, clusters, cold,
                  own_share >= 0.5, signals.artist_via, arms, only, signals.explore_stats)


@dataclass
class RankedTrack:
    position: int
    track_id: str
    score: float
    reasons: list[str]
    sources: list[str]
    engagement: float | None
    explore: str | None = None
    """The exploration arm that filled this slot (`ranking.explore`), else None."""


def pick(
    view: CatalogView,
    profile: UserProfile | None,
    scored: Scored,
    request: RecommendRequest,
    diversify_list: bool = True,
    max_per_artist: int | None = -1,
) -> list[RankedTrack]:
    """The k to show: diversified across the listener's taste clusters with an artist cap, explained.

    `max_per_artist`: −1 = the config's cap, None = no cap."""
    index = view.index
    positions = scored.positions
    if len(positions) == 0:
        return []
    if max_per_artist == -1:
        max_per_artist = request.config.max_per_artist
    if scored.cold_start and diversify_list:
        order = _turns_across_genres(view, scored, request.k, max_per_artist)
    elif diversify_list:
        regular = np.array([j for j in range(len(positions)) if j not in scored.explore_only], dtype=np.int64)
        picked = diversify(scored.scores[regular], view.space.z[positions[regular]],
                           index.artist_of[positions[regular]], request.k, request.diversity, max_per_artist,
                           scored.clusters, artist_repeat_penalty=request.config.artist_repeat_penalty)
        order = [int(regular[j]) for j in picked]
    else:
        order = [int(j) for j in np.lexsort((positions, -scored.scores))][: request.k]
    if request.familiar > 0:
        order = _with_familiar(scored, order, request)
    explored: dict[int, str] = {}
    n_slots = exploration.slots(request.k, request.config.explore_share, request.config.explore_min_k)
    if n_slots and scored.explore and diversify_list and not scored.cold_start and profile is not None:
        rng = exploration.rng_for(profile.user_id, profile.version)
        order, explored = exploration.choose(order, scored.scores, scored.explore, request.k, n_slots,
                                             scored.explore_stats, rng)
    scoring_profile = scored.profile
    has_taste = scoring_profile is not None and scoring_profile.taste
    taste_words = describe_taste(index, scoring_profile.taste) if has_taste else []
    liked_genres = scoring_profile.genres if scoring_profile is not None else {}
    label = scored.target.label if scored.target is not None else None
    # The picked rows of every column at once, as Python numbers (no numpy scalar per item).
    rows = np.asarray(order, dtype=np.int64)
    terms = {name: np.asarray(values)[rows].tolist() for name, values in scored.terms.items()}
    table = scored.candidates
    proposed = {name: mask[rows].tolist() for name, mask in table.proposed.items()}
    picked_positions = positions[rows].tolist()
    picked_scores = scored.scores[rows].tolist()
    picked_engagement = scored.engagement[rows].tolist() if scored.engagement is not None else None
    out = []
    for r, j in enumerate(order):
        i = picked_positions[r]
        track = index.tracks[i]
        contributions = {name: values[r] for name, values in terms.items()}
        if scored.cold_start:
            contributions["taste"] = 0.0  # the global taste is nobody's taste: no "matches your taste"
        if not scored.own_model:
            contributions.pop("engagement", None)  # the global model says nothing about *you*
        sources = sorted(name for name, mask in proposed.items() if mask[r])
        if FAMILIAR in sources:
            contributions[FAMILIAR] = 1.0
        via_id = table.via[j]
        via = index.position.get(via_id) if via_id else None
        reasons = explain(track, contributions, via=index.tracks[via] if via is not None else None,
                          taste_words=taste_words, liked_genres=liked_genres, mood_label=label,
                          similar_via=scored.artist_via.get(track.artist or ""))
        arm = explored.get(j)
        if arm is not None:
            new = exploration.reason(arm, track, liked_genres)
            reasons = [new, *(text for text in reasons if not text.startswith("something new"))][:3]
        out.append(RankedTrack(
            position=i, track_id=track.track_id, score=round(picked_scores[r], 6), reasons=reasons,
            sources=sources,
            engagement=round(picked_engagement[r], 6) if picked_engagement is not None else None,
            explore=arm,
        ))
    return out


def _with_familiar(scored: Scored, order: list[int], request: RecommendRequest) -> list[int]:
    """`order` with at least round(k × familiar) familiar tracks (the best-scored ones), replacing
    the lowest-ranked others, then in score order again."""
    want = round(request.k * min(1.0, request.familiar))
    familiar = scored.candidates.has(FAMILIAR).tolist()
    have = [j for j in order if familiar[j]]
    if len(have) >= want:
        return order
    chosen = set(order)
    extra = [j for j in np.lexsort((scored.positions, -scored.scores)).tolist()
             if familiar[j] and j not in chosen][: want - len(have)]
    others = [j for j in order if not familiar[j]]
    keep = others[: max(0, min(len(order), request.k) - len(have) - len(extra))]
    kept = set(keep) | set(have) | set(extra)
    return sorted(kept, key=lambda j: (-scored.scores[j], int(scored.positions[j])))


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
    seed: SeedProfile | None,
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
    extra: list[SourceCandidates] = []
    if profile is not None and signals.neighbours:
        extra.append(co_listening_neighbours(index, recent_positives(profile, request.config),
                                             signals.neighbours, n=len(index)))
    if signals.trending:
        extra.append(trending_candidates(index, signals.trending, n=len(index),
                                         ranked=signals.trending_ranked))
    candidates = CandidateTable.of(positions, extra, overwrite=True)
    scored = score(view, profile, seed, candidates, signals, request)
    full = replace(request, k=len(candidates))
    items = pick(view, profile, scored, full, diversify_list=request.diversity > 0,
                 max_per_artist=None)
    return items, unknown


