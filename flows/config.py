"""What the dataflow needs to know about its surroundings (filled in by the shell's settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.keys import DEFAULT_NAMESPACE, KeyLayout
from schemas.topics import Topics

DEFAULT_BATCH_SIZE = 4000
"""Most messages per partition poll (`ENCORE_FLOW_BATCH_SIZE`). Each batch costs a profile encode and
write per listener, a re-ranked row per track and artist: more events per batch spread that, and a
poll returns only what is there, so a light load still goes out at once. 4,000 instead of 1,000
took 0.56–0.84× the flow's CPU per event with no freshness cost measurable (docs/benchmarks.md)."""


@dataclass(frozen=True)
class FlowConfig:
    brokers: list[str]
    redis_url: str
    namespace: str = DEFAULT_NAMESPACE
    batch_size: int = DEFAULT_BATCH_SIZE
    """Most messages taken from one Kafka partition per poll."""
    catalog_refresh_s: float = 1.0
    """How often a worker checks whether the catalog changed."""
    kafka_config: Mapping[str, str] = field(default_factory=dict)
    """Kafka client options (librdkafka names: security protocol, SASL, TLS files) for the source,
    the dead-letter sink and the offset committer (`ENCORE_KAFKA_CONFIG`)."""
    tracing: bool = False
    """A span per traced event (flows/tracing.py); on when the shell configured a tracer."""
    fetch_wait_ms: int = 10
    """Longest a fetch waits at the broker for data (librdkafka `fetch.wait.max.ms`). Apache Kafka
    answers a waiting fetch as soon as data arrives; Tansu waits the whole time, so a short wait is
    what keeps event-to-profile latency low there."""
    dedupe_horizon_s: int = 7 * 24 * 3600
    """Event time over which a listener's event ids are remembered (`flows.dedupe`); an event older
    than this before the listener's newest is dead-lettered as `too_late`."""
    hold_events: int = 64
    """Events kept per listener while one waits for its track (`flows.user_state.HoldConfig`); 0:
    events ahead of the catalog are applied at once without their track."""
    hold_s: int = 24 * 3600
    """Event time an event ahead of the catalog waits for its track at most."""

    @property
    def topics(self) -> Topics:
        return Topics(self.namespace)

    @property
    def keys(self) -> KeyLayout:
        return KeyLayout(self.namespace)
