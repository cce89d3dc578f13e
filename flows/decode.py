"""Decode Kafka messages into events and tracks; anything that fails becomes a dead letter."""

from __future__ import annotations

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage

from flows.dead_letters import DeadLetter
from schemas.events import Event, InvalidEvent, decode_event
from schemas.tracks import InvalidTrack, Track, decode_track

SourceItem = KafkaSourceMessage[bytes | None, bytes | None] | KafkaError[bytes | None, bytes | None]


def _dead_letter(msg: KafkaSourceMessage, reason: str) -> DeadLetter:
    return DeadLetter(
        key=msg.key,
        raw=msg.value,
        reason=reason,
        topic=msg.topic or "",
        partition=msg.partition if msg.partition is not None else -1,
        offset=msg.offset if msg.offset is not None else -1,
    )


def decode_event_message(item: SourceItem) -> Event | DeadLetter:
    if isinstance(item, KafkaError):
        return _dead_letter(item.msg, f"kafka error: {item.err}")
    try:
        event = decode_event(item.value)
    except InvalidEvent as exc:
        return _dead_letter(item, exc.reason)
    except RecursionError:
        return _dead_letter(item, "not valid JSON: nested too deeply")
    key = item.key.decode("utf-8", "replace") if item.key else None
    if key is not None and key != event.user_id:
        # Partitioning by user_id is what keeps a user's events in order; a wrong key breaks it.
        return _dead_letter(item, f"message key {key!r} is not the event's user_id")
    return event


def decode_track_message(item: SourceItem) -> Track | DeadLetter:
    if isinstance(item, KafkaError):
        return _dead_letter(item.msg, f"kafka error: {item.err}")
    try:
        return decode_track(item.value)
    except InvalidTrack as exc:
        return _dead_letter(item, f"invalid track: {exc.reason}")
    except RecursionError:
        return _dead_letter(item, "invalid track: nested too deeply")


def is_valid(item: object) -> bool:
    return not isinstance(item, DeadLetter)
