"""A source batch of event messages decoded as one item (flows/decode.py's decode_event_batch): the
same events and dead letters, in the same order, as decoding message by message."""

from __future__ import annotations

import orjson
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage

from flows.dead_letters import DeadLetter
from flows.decode import DecodedEvents, decode_event_batch, decode_event_message, events_of, refused_of
from schemas.events import Forget

T0_MS = 1_795_248_000_000


def _message(offset: int, value: bytes | None, key: bytes | None = b"u1") -> KafkaSourceMessage:
    return KafkaSourceMessage(key=key, value=value, topic="encore.events", partition=0, offset=offset,
                              timestamp=(1, T0_MS + 1_000))


def _event(event_id: str, **changes: object) -> bytes:
    return orjson.dumps({"event_id": event_id, "user_id": "u1", "track_id": "t1", "type": "play",
                         "ts": T0_MS, **changes})


BATCH = [
    _message(0, _event("e0")),
    _message(1, b"{not json"),
    _message(2, _event("e2", user_id=" u1")),  # pydantic's path: stripped, then the key matches
    _message(3, _event("e3"), key=b"u2"),  # key_mismatch
    _message(4, Forget(user_id="u1", request_id="r1", requested_at=5).to_json()),
    _message(5, _event("e5", ts=1_000)),  # bad_event_time
    _message(6, None),
    _message(7, _event("e7", context={"source": "search"})),
]


def test_a_batch_is_its_messages_decoded_in_order_and_split() -> None:
    [decoded] = decode_event_batch(BATCH)
    one_by_one = [decode_event_message(item) for item in BATCH]
    assert decoded.events == [r for r in one_by_one if not isinstance(r, DeadLetter)]
    assert decoded.refused == [r for r in one_by_one if isinstance(r, DeadLetter)]
    assert [e.event_id for e, _ in decoded.events if not isinstance(e, Forget)] == ["e0", "e2", "e7"]
    assert [d.code for d in decoded.refused] == ["invalid_json", "key_mismatch", "bad_event_time",
                                                 "invalid_json"]
    assert refused_of(decoded) is decoded.refused


def test_kafka_errors_are_dead_letters() -> None:
    error = KafkaError(err="broker down", msg=_message(9, None))  # type: ignore[arg-type]
    [decoded] = decode_event_batch([error])
    assert decoded.events == [] and [d.code for d in decoded.refused] == ["kafka_error"]


def test_an_empty_batch_is_no_item() -> None:
    assert decode_event_batch([]) == []


def test_events_of_several_batches_keeps_their_order() -> None:
    first, second = decode_event_batch(BATCH[:3])[0], decode_event_batch(BATCH[3:])[0]
    assert events_of([first]) is first.events
    assert events_of([first, second]) == first.events + second.events
    assert events_of([DecodedEvents([], [])]) == []


def test_a_custom_decoder_sees_every_message() -> None:
    seen: list[int] = []

    def decode(item: object) -> object:
        seen.append(item.offset)  # type: ignore[attr-defined]
        return decode_event_message(item)  # type: ignore[arg-type]

    decode_event_batch(BATCH, decode)  # type: ignore[arg-type]
    assert seen == list(range(8))
