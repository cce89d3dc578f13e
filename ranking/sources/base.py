"""What every candidate source sees (`SourceContext`) and is (`CandidateSource`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.catalog_view import CatalogView
from ranking.config import ExclusionRules, RankingConfig
from ranking.diversity import TasteClusters
from ranking.item_rates import ItemRates
from ranking.listener import Session
from ranking.seeds import SeedProfile
from schemas.profile_codec import UserProfile
from schemas.values import RankerState


@dataclass(frozen=True)
class Signals:
    """What serving read from Redis besides the profile (all optional: empty = not available)."""

    neighbours: Mapping[str, Sequence[tuple[str, float]]] = field(default_factory=dict)
    """Co-listening rows of the listener's recent positives: track → [(neighbour, count)]."""
    trending: Sequence[tuple[str, float]] = ()
    """(track_id, trending score), overall and in the listener's genres."""
    rates: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    """track → (smoothed like rate, smoothed skip rate, listens), from the flow's item statistics."""
    item_rates: ItemRates | None = None
    """The same for every catalog position, aligned to the view (serving's live table); when set,
    scoring reads it instead of `rates`."""
    global_weights: np.ndarray | None = None
    """The newest global engagement model (78 float32), for listeners without their own."""
    artist_scores: Mapping[str, float] = field(default_factory=dict)
    """Artist → collaborative score for this listener (`ranking.collaborative.scores_at`). Serving
    passes a `ScoreView` over arrays aligned to the view's artists, which consumers read as an array
    (`ranking.collaborative.score_array`); any other mapping is looked up by name."""
    artist_via: Mapping[str, str] = field(default_factory=dict)
    """Artist → the liked artist that contributed most to its score (serving: a `ViaView`)."""
    ranker: RankerState | None = None
    """The flow's learned ranker (`ranking.ranker`), as last published."""
    stream_popular: Sequence[tuple[str, float]] = ()
    """The most listened tracks in the stream: (track_id, decayed listens), most first."""
    trending_ranked: SourceCandidates | None = None
    """`ranking.sources.trending.ranked_trending(view.index, trending)` when the caller has it
    (serving computes it once per held list and view); None: computed from `trending`."""
    stream_popular_positions: Sequence[tuple[int, float]] | None = None
    """`ranking.sources.popular.streamed_positions(view.index, stream_popular)`, likewise."""
    explore_stats: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Exploration arm → (successes, failures) of its past slots, over all listeners (`ranking.explore`)."""


@dataclass(frozen=True)
class SourceContext:
    """Everything a source may read for one request; built once by the pipeline."""

    view: CatalogView
    profile: UserProfile | None
    """The live profile (None: a listener nobody knows)."""
    scoring_profile: UserProfile | None
    """The live profile with declared favourites blended in (`seeds.effective_profile`)."""
    seed: SeedProfile | None
    signals: Signals
    config: RankingConfig
    rules: ExclusionRules
    excluded: set[int]
    clusters: TasteClusters | None
    session: Session | None
    cold_start: bool


@dataclass(frozen=True)
class CandidateSource:
    """A named candidate source: `propose(context, n)` returns at most n candidates, or None when
    the source has nothing to say for this listener (no taste, no signals...)."""

    name: str
    propose: Callable[[SourceContext, int], SourceCandidates | None]
