"""Dead letters: a message the flow could not apply, kept byte for byte with the reason why."""

from __future__ import annotations

from dataclasses import dataclass

from bytewax.connectors.kafka import KafkaSinkMessage

from schemas.topics import DEAD_LETTER_HEADERS


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    raw: bytes | None
    reason: str
    topic: str
    partition: int
    offset: int

    def to_kafka(self) -> KafkaSinkMessage[bytes | None, bytes | None]:
        """The untouched raw bytes as value; where they came from and why in headers."""
        headers = [
            (DEAD_LETTER_HEADERS["reason"], self.reason.encode("utf-8", "replace")),
            (DEAD_LETTER_HEADERS["topic"], self.topic.encode()),
            (DEAD_LETTER_HEADERS["partition"], str(self.partition).encode()),
            (DEAD_LETTER_HEADERS["offset"], str(self.offset).encode()),
        ]
        return KafkaSinkMessage(key=self.key, value=self.raw, headers=headers)
