"""The flow's structured logs: batch summaries (rate-limited to one line per interval) and dead
letters (fields, never the raw bytes; capped per interval)."""

from __future__ import annotations

import logging

import pytest

from flows.batch_log import BatchSummary
from flows.dead_letters import DeadLetter, DeadLetterLog
from flows.progress import Position


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batch(summary: BatchSummary, applied: int = 10) -> None:
    summary.note(events=applied + 1, applied=applied, duplicates=1, profile_writes=3,
                 partitions={"encore.events:0": 41}, write_ms=2.5, max_age_ms=120.0)


def test_batches_are_summarised_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    summary = BatchSummary(interval_s=10.0, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="encore.flow"):
        for _ in range(5):
            batch(summary)
            clock.now += 1.0
        assert [r.kind for r in caplog.records] == ["batch"] * 5  # type: ignore[attr-defined]
        clock.now += 5.0
        batch(summary, applied=50)
    records = [r for r in caplog.records if r.kind == "batch_summary"]  # type: ignore[attr-defined]
    assert len(records) == 1
    line = records[0]
    assert line.levelno == logging.INFO
    assert (line.batches, line.applied, line.events, line.duplicates, line.profile_writes) == (  # type: ignore[attr-defined]
        6, 100, 106, 6, 18)
    assert line.events_per_s == 10.0 and line.max_age_ms == 120.0  # type: ignore[attr-defined]
    first = caplog.records[0]
    assert first.partitions == {"encore.events:0": 41} and first.write_ms == 2.5  # type: ignore[attr-defined]


def test_a_quiet_interval_logs_no_summary(caplog: pytest.LogCaptureFixture) -> None:
    summary = BatchSummary(clock=Clock())
    with caplog.at_level(logging.INFO, logger="encore.flow"):
        summary.flush()
    assert caplog.records == []


def letter(i: int) -> DeadLetter:
    return DeadLetter(key=b"user-1", raw=b"secret payload " + str(i).encode(), code="invalid_json",
                      reason="not valid JSON", position=Position("encore.events", 2, 100 + i, 1))


def test_dead_letters_are_logged_with_fields_and_capped(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = DeadLetterLog(limit=3, interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="encore.flow"):
        log.note([letter(i) for i in range(5)])
        clock.now += 11
        log.note([letter(9)])
    kinds = [r.kind for r in caplog.records]  # type: ignore[attr-defined]
    assert kinds == ["dead_letter"] * 3 + ["dead_letters_suppressed", "dead_letter"]
    first = caplog.records[0]
    assert (first.code, first.topic, first.partition, first.offset) == (  # type: ignore[attr-defined]
        "invalid_json", "encore.events", 2, 100)
    assert first.key_bytes == 6 and first.value_bytes == 16  # type: ignore[attr-defined]
    assert caplog.records[3].count == 2  # type: ignore[attr-defined]
    assert "secret payload" not in caplog.text
