"""`RankingConfig`: every weight, quota and threshold of serving-time ranking, in one place.

The pipeline (`ranking.pipeline`), the sources (`ranking.sources`), scoring, diversity, moods and
similar tracks read their numbers from the config they are passed; nothing else holds a literal.
docs/ranking.md explains each one and how it was chosen. A deployment overrides fields with
`ENCORE_RANKING_CONFIG` (JSON: `{"artist": 0.5, "quotas": {"popular": 80}}`).

>>> config = RankingConfig.with_overrides({"artist": 0.5, "quotas": {"popular": 80}})
>>> config.artist, config.quota("popular"), config.quota("taste")
(0.5, 80, 200)
>>> RankingConfig.with_overrides({"artsit": 1.0})
Traceback (most recent call last):
...
ValueError: unknown ranking setting 'artsit'
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SOURCE_ORDER: tuple[str, ...] = (
    "taste", "session", "co_listening", "similar_artists", "genre", "artist", "seed", "trending", "popular",
    "familiar",
)
"""Candidate sources in merge order (round-robin takes the first source's best first)."""

DEFAULT_QUOTAS: Mapping[str, int] = MappingProxyType({
    "taste": 200, "session": 100, "co_listening": 100, "similar_artists": 120, "genre": 150, "artist": 60,
    "seed": 100, "trending": 50, "popular": 50, "familiar": 24,
})


@dataclass(frozen=True)
class ExclusionRules:
    """What a listener is not offered again (serving's `ENCORE_EXCLUDE_*` settings)."""

    cooldown_s: int = 6 * 3600
    """The repeat policy, in the listener's event time: a track whose latest event (played, skipped,
    liked...) is within this many seconds of the listener's newest event is not offered again;
    disliked tracks never are; liked ones may come back after it (`familiar` asks for some)."""
    disliked_artist_below: float = -0.8
    """An artist whose affinity is below this (about one recent dislike, or a run of early skips) is
    left out."""


EXCLUSION_RULES = ExclusionRules()


@dataclass(frozen=True)
class RankingConfig:
    # Score terms (each term is weight × a feature in a known range; docs/ranking.md).
    taste: float = 1.0
    """Audio-feature similarity to the taste vector, in (0, 1]."""
    genre: float = 0.6
    """Mean of the listener's squashed genre affinities over the track's genres, in (-1, 1)."""
    artist: float = 0.0
    """× the listener's squashed affinity for the track's artist when it is positive, in [0, 1). 0 by
    default: a liked artist's other tracks already score through the collaborative term (the artist
    co-occurs with the listener's other artists), and on real listening the extra pull filled lists
    with artists the listener knows instead of new ones (docs/quality.md, "Third pass")."""
    artist_disliked: float = 0.8
    """× the same affinity when it is negative, in (-1, 0): skips of an artist push its other tracks
    down at once (a clear dislike leaves the artist out: `ExclusionRules.disliked_artist_below`)."""
    popularity: float = 0.15
    """Catalog popularity in [0, 1]: a prior that breaks ties toward known-good tracks."""
    session: float = 0.9
    """× taste kernel to the recency-weighted centre of the latest likes/completes."""
    session_genre: float = 0.6
    """× the largest session weight among the track's genres."""
    engagement: float = 0.5
    """× 2·(p − ½), p = the engagement model's P(like or complete), in (−1, 1)."""
    quality: float = 0.6
    """× live item quality: like rate above its prior minus skip rate above its prior."""
    co_listening: float = 0.3
    """× the co-listening source score / the best among the candidates."""
    trending: float = 0.15
    """× the trending source score / the best among the candidates."""
    similar_artists: float = 4.5
    """× the track's artist's collaborative score (`ranking.collaborative`) / the best among the
    candidates: artists that listeners with the same taste enjoy. Large because on real listening
    (the Last.fm scenario) the collaborative order is what finds new artists, and the playlist
    scenario loses nothing by it (docs/quality.md, "Second pass")."""
    collaborative_artists: int = 32
    """The listener's strongest liked artists whose co-occurrence rows serving reads."""
    collaborative_session: float = 3.0
    """Added to the seed weight of the artist of each of the latest positives (× session_recency per
    step back) once they are a clear switch of taste (`collaborative_switch`;
    `ranking.collaborative.seed_artists`): a listener who switches turns the collaborative scores at
    once, one whose latest plays merely wander among their usual genres keeps their whole history's."""
    collaborative_switch: tuple[float, float] = (0.4, 0.8)
    """Session novelty at which the switch starts (the latest positives' artists start to be boosted
    and the long-term seeds to fade), and is complete."""
    collaborative_normalise_rows: bool = True
    """Each liked artist's cosine row is divided by its best entry (an equal vote per liked artist)."""
    collaborative_idf: float = 0.1
    """x in each liked artist's vote × N^−x (N: the artist's listeners): an artist everybody plays says
    less about a listener's taste than a rare one (`ranking.collaborative.artist_scores`). 0.1, not
    the 0.25 chosen on 150 Last.fm listeners: on 300, 0.1 ranked rule A's hits better and cost nothing
    elsewhere (docs/quality.md, "Fourth pass")."""
    collaborative_popularity: float = 0.6
    """β in the similarity C(h, b) / (N_h^(1−β) · N_b^β) (Aiolli's asymmetric cosine; ½ is the
    cosine): a little above ½ a popular candidate artist needs more shared listeners to score, which
    found more held-out artists on Last.fm and cost the playlists nothing (docs/quality.md, "Fourth
    pass")."""
    collaborative_shrink: float = 0.0
    """Added to that denominator: a pair few listeners share counts less than its cosine says (0:
    any shrink measured worse)."""
    collaborative_seed_scale: float = 2.0
    """A liked artist's seed weight is tanh(affinity / this): larger keeps more of the difference
    between an artist played once and one played often (measured worse on Last.fm at 6 and 20)."""
    mood: float = 0.5
    """× fit to an explicit mood or activity target."""
    time_of_day: float = 0.2
    """× fit to the time-of-day target (no mood or activity given)."""
    discovery: float = 0.5
    """× (1 − popularity) · taste_fit² at `discovery` = 1."""
    taste_bandwidth: float = 1.0
    """Width, in catalog standard deviations, of the taste similarity kernel."""
    affinity_scale: float = 2.0
    """Affinity scores are squashed as tanh(score / scale)."""

    ranker_prior_examples: int = 1_000
    """Examples of the rarer outcome (skips and dislikes, usually) after which the flow's learned
    ranker counts as much as the hand weights of the terms it covers (taste, genre, artist,
    popularity, engagement); it counts only while its progressive AUC beats theirs
    (`ranking.scoring.learned_share`)."""

    # Candidates.
    sources: tuple[str, ...] = SOURCE_ORDER
    """The candidate sources to draw from (`ranking.sources.SOURCES` names), in merge order."""
    quotas: Mapping[str, int] = field(default_factory=lambda: DEFAULT_QUOTAS)
    """Most candidates each source proposes and may add to the merged list."""
    popular_cold_quota: int = 100
    """The `popular` source's quota for a listener nobody knows yet."""
    merge_limit: int = 400
    """Most candidates after merging."""
    co_listening_seeds: int = 10
    """The profile's most recent likes and completes whose co-listening rows are read."""
    co_listening_recency: float = 0.9
    """Weight of each older co-listening seed relative to the next newer one."""
    session_positives: int = 3
    """The listener's latest likes and completes that make up their current session."""
    session_recency: float = 0.4
    """Weight of each older positive in the session, relative to the next newer one."""
    strongest_genres: int = 3
    """Genres the `genre` source draws from (the listener's strongest)."""
    strongest_artists: int = 6
    """Artists the `artist` source draws from."""
    seed_tracks_per_artist: int = 5
    """A declared favourite artist stands for its this-many most popular catalog tracks."""

    # The listener.
    seed_fade_events: int = 20
    """Declared favourites count fully for a new listener and fade out over this many events."""
    own_model_prior_events: int = 10
    """Events after which a listener's own engagement model counts as much as the global one."""
    cluster_likes: int = 24
    """Liked tracks (recent likes and completes) that taste clusters are found from."""

    # Picking.
    diversity_default: float = 0.3
    """MMR λ when the request does not say. Pure relevance (0) ranked a little better on both quality
    scenarios (docs/quality.md, "Third pass"), but a listener who likes one track of a new genre must
    see that genre in the very next list, and the spread is what puts it there."""
    max_per_artist: int = 2
    """Most tracks of one artist in a list."""
    artist_repeat_penalty: float = 0.3
    """Taken off a candidate's scaled relevance (0–1) per track of its artist already picked: a
    second track of an artist must be clearly better than the next artist's best (a soft form of
    one per artist, under the hard `max_per_artist` cap)."""

    # Similar tracks.
    similar_co_listening: float = 0.5
    """`similar`: × co-listening count / the row's top count, added to the audio kernel."""

    # Exploration (`ranking.explore`; docs/ranking.md, "Explore").
    explore_share: float = 0.0
    """Share of a list's slots (round(k × share)) given to tracks the listener's sources rarely
    surface, one bandit arm per slot; 0 = off (turn it on here, or for a share of listeners with an
    experiment)."""
    explore_arms: tuple[str, ...] = ("adjacent", "new_genres", "long_tail")
    """The bandit's arms: candidate sources the exploration slots are drawn from (any `SOURCES` name;
    `trending` works too, but shows every listener the same tracks)."""
    explore_quota: int = 30
    """Candidates each arm proposes."""
    explore_band: tuple[float, float] = (0.3, 0.6)
    """`adjacent`: the taste-kernel band of "a step away from your taste"."""
    explore_min_k: int = 5
    """Lists shorter than this get no exploration slot."""

    # Search (`ranking.search`; docs/search.md).
    search_target: float = 2.0
    """× fit to the query's audio target (its moods, activities, times of day, feature words)."""
    search_genre: float = 1.5
    """A track of a genre the query names (also a filter, while it leaves any track)."""
    search_era: float = 1.5
    """A track released in the era the query names (also a filter, while it leaves any track)."""
    search_artist: float = 3.0
    """A track by the artist the query names (also a filter)."""
    search_title: float = 4.0
    """The track whose title the query is."""
    search_lexical: float = 1.5
    """× share of the query's other words (idf-weighted) found in the title or artist."""
    search_semantic: float = 0.5
    """× cosine between the query's and the track's sentence embeddings (when above 0)."""
    search_popularity: float = 0.3
    """× catalog popularity: among equally fitting tracks, the known ones first."""
    search_taste: float = 0.5
    """With `user_id`: × the listener's own ranking score of the track (taste, affinities, model)."""
    search_pool: int = 400
    """Best tracks by the query alone that the listener's score re-ranks."""
    search_taste_pool: int = 100
    """Tracks nearest the listener's taste among those the query allows, added to the pool."""
    search_min_similarity: float = 0.5
    """An unknown word is read as the nearest concept word when their cosine is at least this."""

    def quota(self, source: str) -> int:
        return int(self.quotas.get(source, DEFAULT_QUOTAS.get(source, 0)))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Any], base: RankingConfig | None = None) -> RankingConfig:
        """`base` (the defaults) with some fields replaced; `quotas` merges key by key."""
        base = base if base is not None else cls()
        names = {f.name for f in dataclasses.fields(cls)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in names:
                raise ValueError(f"unknown ranking setting {name!r}")
            if name == "quotas":
                value = MappingProxyType({**base.quotas, **{str(k): int(v) for k, v in value.items()}})
            elif name in ("sources", "explore_arms"):
                value = tuple(str(s) for s in value)
            elif isinstance(getattr(base, name), tuple):  # explore_band, collaborative_switch
                value = tuple(type(x)(v) for x, v in zip(getattr(base, name), value, strict=True))
            else:
                value = type(getattr(base, name))(value)
            changes[name] = value
        return dataclasses.replace(base, **changes)

    @property
    def digest(self) -> str:
        """A short stable id of every value (cache keys, experiment reports)."""
        items = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        text = repr([(k, sorted(v.items()) if isinstance(v, Mapping) else v) for k, v in items])
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


RANKING_CONFIG = RankingConfig()
