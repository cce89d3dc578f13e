"""What the API needs to know about its surroundings (filled in by the shell's settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.keys import DEFAULT_NAMESPACE, KeyLayout
from schemas.topics import Topics


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
    kafka_config: dict[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> Topics:
        return Topics(self.namespace)

    @property
    def keys(self) -> KeyLayout:
        return KeyLayout(self.namespace)
