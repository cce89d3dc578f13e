"""What the dataflow needs to know about its surroundings (filled in by the shell's settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.keys import DEFAULT_NAMESPACE, KeyLayout
from schemas.topics import Topics


@dataclass(frozen=True)
class FlowConfig:
    brokers: list[str]
    redis_url: str
    namespace: str = DEFAULT_NAMESPACE
    batch_size: int = 1000
    """Most messages taken from one Kafka partition per poll."""
    catalog_refresh_s: float = 1.0
    """How often a worker checks whether the catalog changed."""
    kafka_config: dict[str, str] = field(default_factory=dict)
    """Extra librdkafka settings for the source and the dead-letter sink."""

    @property
    def topics(self) -> Topics:
        return Topics(self.namespace)

    @property
    def keys(self) -> KeyLayout:
        return KeyLayout(self.namespace)
