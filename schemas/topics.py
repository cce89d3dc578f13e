"""Kafka topic names. The prefix (default `encore`) lets several deployments share a cluster.

>>> Topics().events, Topics("staging").dead_letters
('encore.events', 'staging.events.dlq')
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "encore"


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    @property
    def events(self) -> str:
        """Listening events, keyed by user_id so one user's events keep their order."""
        return f"{self.prefix}.events"

    @property
    def dead_letters(self) -> str:
        """Messages that could not be applied: the raw bytes, the reason in headers."""
        return f"{self.prefix}.events.dlq"

    @property
    def tracks(self) -> str:
        """Catalog upserts, keyed by track_id."""
        return f"{self.prefix}.tracks"

    def all(self) -> tuple[str, str, str]:
        return (self.events, self.dead_letters, self.tracks)

    @property
    def consumed(self) -> tuple[str, str]:
        """The topics the flow reads, whose lag operators watch."""
        return (self.events, self.tracks)

    @property
    def consumer_group(self) -> str:
        """The consumer group the flow commits its processed offsets to, for lag tools only
        (`encore-flow` by default); Bytewax itself resumes from its recovery snapshots."""
        return f"{self.prefix}{CONSUMER_GROUP_SUFFIX}"


CONSUMER_GROUP_SUFFIX = "-flow"
"""The flow's consumer group is the topic prefix plus this: `encore-flow`, `staging-flow`."""


DEAD_LETTER_HEADERS = {
    "reason": "encore.reason",
    "code": "encore.reason.code",
    "topic": "encore.source.topic",
    "partition": "encore.source.partition",
    "offset": "encore.source.offset",
}
"""Headers a dead letter carries beside its untouched raw bytes."""
