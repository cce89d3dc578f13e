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


DEAD_LETTER_HEADERS = {
    "reason": "encore.reason",
    "code": "encore.reason.code",
    "topic": "encore.source.topic",
    "partition": "encore.source.partition",
    "offset": "encore.source.offset",
}
"""Headers a dead letter carries beside its untouched raw bytes."""
