"""The flow's structured logs: batch summaries and dead letters.

- Every batch a profile sink writes is logged at DEBUG (`flow batch`: events, applied, duplicates,
  profile writes, partitions, newest offsets, write time, oldest event age); every
  `SUMMARY_INTERVAL_S` each sink logs a summary of the batches since the last one at INFO
  (`flow batches`), so a busy flow writes a few lines a minute, not one per batch.
- Dead letters are logged by `flows.dead_letters.DeadLetterLog`, on the same logger.

With `ENCORE_LOG_FORMAT=json` each line is one JSON object with these fields (encore/logs.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("encore.flow")

SUMMARY_INTERVAL_S = 10.0
DEAD_LETTERS_PER_INTERVAL = 20


@dataclass
class BatchSummary:
    """Counts of the batches since the last summary line."""

    interval_s: float = SUMMARY_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    batches: int = 0
    events: int = 0
    applied: int = 0
    duplicates: int = 0
    profile_writes: int = 0
    write_ms: float = 0.0
    max_age_ms: float = 0.0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def note(self, *, events: int, applied: int, duplicates: int, profile_writes: int,
             partitions: dict[str, int], write_ms: float, max_age_ms: float) -> None:
        """One written batch; logs it (DEBUG) and, when the interval is over, the summary (INFO)."""
        log.debug("flow batch: %d events, %d profiles written in %.1f ms", events, profile_writes, write_ms,
                  extra={"kind": "batch", "events": events, "applied": applied, "duplicates": duplicates,
                         "profile_writes": profile_writes, "partitions": partitions,
                         "write_ms": round(write_ms, 3), "max_age_ms": round(max_age_ms, 1)})
        self.batches += 1
        self.events += events
        self.applied += applied
        self.duplicates += duplicates
        self.profile_writes += profile_writes
        self.write_ms += write_ms
        self.max_age_ms = max(self.max_age_ms, max_age_ms)
        now = self.clock()
        if now - self.started >= self.interval_s:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if self.batches:
            seconds = max(now - self.started, 1e-9)
            log.info("flow batches: %d batches, %d events applied (%.1f/s), %d profile writes, "
                     "oldest event %.0f ms", self.batches, self.applied, self.applied / seconds,
                     self.profile_writes, self.max_age_ms,
                     extra={"kind": "batch_summary", "interval_s": round(seconds, 3), "batches": self.batches,
                            "events": self.events, "applied": self.applied, "duplicates": self.duplicates,
                            "profile_writes": self.profile_writes,
                            "events_per_s": round(self.applied / seconds, 1),
                            "write_ms_mean": round(self.write_ms / self.batches, 3),
                            "max_age_ms": round(self.max_age_ms, 1)})
        self.batches = self.events = self.applied = self.duplicates = self.profile_writes = 0
        self.write_ms = self.max_age_ms = 0.0
        self.started = now
