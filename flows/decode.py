"""Decode Kafka messages into events (or control messages) and tracks; anything that fails becomes a
dead letter.

An event message tries the fast path first (`schemas.fast_events`: msgspec, only what the pydantic
path would accept, the same `Event`), then `schemas.events.decode_message`, which accepts the rest
or says why not. The flow decodes a source batch at once (`decode_event_batch`): one item per
batch, its events and its dead letters apart, instead of two Bytewax steps per message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage

from flows.dead_letters import DeadLetter
from flows.progress import Position
from schemas.events import Forget, InvalidEvent, Message, decode_message, event_time_problem
from schemas.fast_events import fast_event
from schemas.tracks import InvalidTrack, Track, decode_track

SourceItem = KafkaSourceMessage[bytes | None, bytes | None] | KafkaError[bytes | None, bytes | None]
SourcedEvent = tuple[Message, Position]
"""A listening `Event`, or a control message (`Forget`), and where it came from."""
SourcedTrack = tuple[Track, Position]

MAX_MESSAGE_BYTES = 64 * 1024
"""A message larger than this is refused before it is parsed."""


def position_of(msg: KafkaSourceMessage) -> Position:
    stamp = msg.timestamp
    broker_ts = stamp[1] if stamp and stamp[1] > 0 else int(time.time() * 1000)
    return Position(msg.topic or "", msg.partition if msg.partition is not None else -1,
                    msg.offset if msg.offset is not None else -1, broker_ts)


def _dead_letter(msg: KafkaSourceMessage, code: str, reason: str) -> DeadLetter:
    return DeadLetter(key=msg.key, raw=msg.value, code=code, reason=reason, position=position_of(msg))


def decode_event_message(item: SourceItem) -> SourcedEvent | DeadLetter:
    if isinstance(item, KafkaError):
        return _dead_letter(item.msg, "kafka_error", f"kafka error: {item.err}")
    if item.value is not None and len(item.value) > MAX_MESSAGE_BYTES:
        return _dead_letter(item, "too_large",
                            f"message of {len(item.value)} bytes exceeds {MAX_MESSAGE_BYTES}")
    event = fast_event(item.value) if item.value is not None else None
    if event is None:  # refused, a control message, or not plain enough for the fast path
        try:
            event = decode_message(item.value)
        except InvalidEvent as exc:
            code = "invalid_json" if exc.reason.startswith(("not valid JSON", "empty")) else "invalid_event"
            return _dead_letter(item, code, exc.reason)
        except RecursionError:
            return _dead_letter(item, "invalid_json", "not valid JSON: nested too deeply")
    key = item.key.decode("utf-8", "replace") if item.key else None
    if key is not None and key != event.user_id:
        # Partitioning by user_id is what keeps a user's events in order; a wrong key breaks it.
        return _dead_letter(item, "key_mismatch", f"message key {key!r} is not the event's user_id")
    position = position_of(item)
    if isinstance(event, Forget):
        return event, position
    problem = event_time_problem(event.ts, position.broker_ts_ms)
    if problem is not None:
        return _dead_letter(item, "bad_event_time", problem)
    return event, position


class DecodedEvents(NamedTuple):
    """A source batch of event messages, decoded: what to apply, and what to dead-letter."""

    events: list[SourcedEvent]
    refused: list[DeadLetter]


EventDecoder = Callable[[SourceItem], SourcedEvent | DeadLetter]


def decode_event_batch(items: list[SourceItem],
                       decode: EventDecoder = decode_event_message) -> list[DecodedEvents]:
    """The batch's messages decoded one by one (in order), as one item; none for an empty batch."""
    events: list[SourcedEvent] = []
    refused: list[DeadLetter] = []
    for item in items:
        result = decode(item)
        (refused if result.__class__ is DeadLetter else events).append(result)  # type: ignore[attr-defined]
    return [DecodedEvents(events, refused)] if items else []


def events_of(batches: list[DecodedEvents]) -> list[SourcedEvent]:
    """The decoded events of a list of batches, in order."""
    if len(batches) == 1:
        return batches[0].events
    return [event for batch in batches for event in batch.events]


def refused_of(batch: DecodedEvents) -> list[DeadLetter]:
    return batch.refused


def decode_track_message(item: SourceItem) -> SourcedTrack | DeadLetter:
    if isinstance(item, KafkaError):
        return _dead_letter(item.msg, "kafka_error", f"kafka error: {item.err}")
    if item.value is not None and len(item.value) > MAX_MESSAGE_BYTES:
        return _dead_letter(item, "too_large",
                            f"message of {len(item.value)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return decode_track(item.value), position_of(item)
    except InvalidTrack as exc:
        return _dead_letter(item, "invalid_track", f"invalid track: {exc.reason}")
    except RecursionError:
        return _dead_letter(item, "invalid_track", "invalid track: nested too deeply")


def is_valid(item: object) -> bool:
    return not isinstance(item, DeadLetter)
