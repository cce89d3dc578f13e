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
    artist: float = 0.8
    """The listener's squashed affinity for the track's artist, in (-1, 1)."""
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
    similar_artists: float = 1.5
    """× the track's artist's collaborative score (`ranking.collaborative`) / the best among the
    candidates: artists that listeners with the same taste enjoy."""
    collaborative_artists: int = 32
    """The listener's strongest liked artists whose co-occurrence rows serving reads."""
    collaborative_session: float = 3.0
    """Added to the seed weight of the artist of each of the latest positives (× their novelty ×
    session_recency per step back, `ranking.collaborative.seed_artists`): a listener who switches
    taste turns the collaborative scores at once."""
    collaborative_switch: tuple[float, float] = (0.5, 0.9)
    """Session novelty at which the long-term collaborative seeds start to fade, and are gone."""
    collaborative_normalise_rows: bool = True
    """Each liked artist's cosine row is divided by its best entry (an equal vote per liked artist)."""
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

    ranker_prior_examples: int = 5_000
    """Learned examples after which the flow's learned ranker counts as much as the hand weights of
    the terms it covers (taste, genre, artist, popularity, engagement)."""

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
    """MMR λ when the request does not say."""
    max_per_artist: int = 2
    """Most tracks of one artist in a list."""
    artist_repeat_penalty: float = 0.0
    """Taken off a candidate's scaled relevance (0–1) per track of its artist already picked."""

    # Similar tracks.
    similar_co_listening: float = 0.5
    """`similar`: × co-listening count / the row's top count, added to the audio kernel."""

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
            elif name == "sources":
                value = tuple(str(s) for s in value)
            elif isinstance(getattr(base, name), tuple):
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
