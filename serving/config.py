"""What the API needs to know about its surroundings (filled in by the shell's settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ranking.config import RANKING_CONFIG, RankingConfig
from ranking.experiments import Experiment
from schemas.keys import DEFAULT_NAMESPACE, KeyLayout
from schemas.topics import Topics
from serving.auth import LISTENER_RATE_PER_S, ApiKey, TokenVerifier


@dataclass(frozen=True)
class ServingConfig:
    brokers: list[str]
    redis_url: str
    namespace: str = DEFAULT_NAMESPACE
    catalog_refresh_s: float = 1.0
    produce_timeout_s: float = 10.0
    """How long a write waits for the broker's acknowledgement before answering 503."""
    max_batch: int = 1000
    """Most events or tracks in one POST."""
    kafka_config: Mapping[str, str] = field(default_factory=dict)
    """Kafka client options (librdkafka names) for the producer and, translated, the lag reader."""
    api_keys: list[ApiKey] = field(default_factory=list)
    """No keys (and no `tokens`): demo mode, every request allowed (and the service says so)."""
    tokens: TokenVerifier | None = None
    """Verifies listener JWTs (`ENCORE_JWT_*`); None: no listener tokens."""
    listener_rate_per_s: float = LISTENER_RATE_PER_S
    max_body_bytes: int = 1_048_576
    cors_origins: list[str] = field(default_factory=list)
    recs_cache_size: int = 4096
    """Finished recommendation answers kept in this process (0: no cache)."""
    recs_cache_ttl_s: float = 5.0
    item_stats_refresh_s: float = 1.0
    """How often the held item statistics re-sync (`serving.item_stats`): their staleness bound."""
    repeat_cooldown_s: int = 21_600
    """The repeat policy's cool-down, in the listener's event time (`ranking.config.ExclusionRules`)."""
    search_embeddings: bool = True
    """Sentence embeddings in search (`ENCORE_SEARCH_EMBEDDINGS`); off: the other terms only."""
    ranking: RankingConfig = RANKING_CONFIG
    """Every weight, quota and threshold of the ranking (`ENCORE_RANKING_CONFIG`)."""
    access_log: bool = True
    """One log line per request (serving/request_log.py)."""
    tracing: bool = False
    """Server, Redis and producer spans (serving/tracing.py); on when the shell set up a tracer."""
    experiments: tuple[Experiment, ...] = ()
    """A/B experiments of ranking variants (`ENCORE_EXPERIMENTS`, `ranking.experiments`)."""

    @property
    def topics(self) -> Topics:
        return Topics(self.namespace)

    @property
    def keys(self) -> KeyLayout:
        return KeyLayout(self.namespace)
