"""Dead letters: a message the flow could not apply, kept byte for byte with the reason why."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from flows.progress import Position, Progress
from flows.redis_io import connect, pipelined
from schemas.keys import KeyLayout
from schemas.topics import DEAD_LETTER_HEADERS


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    raw: bytes | None
    code: str
    """A short reason class for counting: invalid_json, invalid_event, key_mismatch, ..."""
    reason: str
    position: Position

    def to_kafka(self) -> KafkaSinkMessage[bytes | None, bytes | None]:
        """The untouched raw bytes as value; where they came from and why in headers."""
        headers = [
            (DEAD_LETTER_HEADERS["reason"], self.reason.encode("utf-8", "replace")),
            (DEAD_LETTER_HEADERS["code"], self.code.encode()),
            (DEAD_LETTER_HEADERS["topic"], self.position.topic.encode()),
            (DEAD_LETTER_HEADERS["partition"], str(self.position.partition).encode()),
            (DEAD_LETTER_HEADERS["offset"], str(self.position.offset).encode()),
        ]
        return KafkaSinkMessage(key=self.key, value=self.raw, headers=headers)


class _DeadLetterTally(StatelessSinkPartition[DeadLetter]):
    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._client = connect(url)
        self._keys = keys
        self._log = DeadLetterLog()

    def write_batch(self, items: list[DeadLetter]) -> None:
        self._log.note(items)
        progress = Progress()
        counts: dict[str, int] = {}
        for letter in items:
            progress.note(letter.position)
            counts[letter.code] = counts.get(letter.code, 0) + 1

        def fill(pipe) -> None:
            for code, count in counts.items():
                pipe.hincrby(self._keys.ops_dead_letters, code, count)
            progress.record(pipe, self._keys)

        pipelined(self._client, fill, f"dead-letter tally of {len(items)}")

    def close(self) -> None:
        self._client.close()


class DeadLetterTally(DynamicSink[DeadLetter]):
    """Counts dead letters by reason code and records them as processed (for lag)."""

    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._url = url
        self._keys = keys

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DeadLetterTally:
        return _DeadLetterTally(self._url, self._keys)


log = logging.getLogger("encore.flow")

DEAD_LETTERS_PER_INTERVAL = 20
LOG_INTERVAL_S = 10.0


@dataclass
class DeadLetterLog:
    """Logs every dead letter at WARNING (`kind: dead_letter`: code, reason, topic, partition,
    offset, key and value sizes; never the raw bytes), at most `limit` per interval and sink, then
    one line says how many more were not logged (all are counted in Redis and on the dead-letter
    topic anyway)."""

    limit: int = DEAD_LETTERS_PER_INTERVAL
    interval_s: float = LOG_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    logged: int = 0
    suppressed: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def note(self, letters: Iterable[DeadLetter]) -> None:
        now = self.clock()
        if now - self.started >= self.interval_s:
            if self.suppressed:
                log.warning("%d more dead letters were not logged in the last %.0f s", self.suppressed,
                            now - self.started, extra={"kind": "dead_letters_suppressed",
                                                       "count": self.suppressed})
            self.logged = self.suppressed = 0
            self.started = now
        for letter in letters:
            if self.logged >= self.limit:
                self.suppressed += 1
                continue
            self.logged += 1
            position = letter.position
            log.warning("dead letter (%s) from %s:%d@%d: %s", letter.code, position.topic, position.partition,
                        position.offset, letter.reason, extra={
                            "kind": "dead_letter", "code": letter.code, "reason": letter.reason,
                            "topic": position.topic, "partition": position.partition,
                            "offset": position.offset,
                            "key_bytes": None if letter.key is None else len(letter.key),
                            "value_bytes": None if letter.raw is None else len(letter.raw)})
