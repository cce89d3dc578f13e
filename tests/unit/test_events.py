"""The listening-event contract: schemas/events.py (decode_event, validate_event, parse_timestamp_ms)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import (
    MAX_TRACK_MS,
    MAX_TS_MS,
    Event,
    EventContext,
    EventType,
    InvalidEvent,
    decode_event,
    parse_timestamp_ms,
    validate_event,
)

# 2026-11-21T08:00:00Z as epoch milliseconds (checked independently of the code under test).
T0_MS = int((datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC))
            / timedelta(milliseconds=1))
REQUIRED = ("event_id", "user_id", "track_id", "type", "ts")


def payload(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "event_id": "e-1",
        "user_id": "u-1",
        "track_id": "t-1",
        "type": "play",
        "ts": T0_MS,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not ...}


def raw(**changes: object) -> bytes:
    return orjson.dumps(payload(**changes))


def refused_fields(exc: InvalidEvent) -> set[str]:
    return {error["field"] for error in exc.errors}


# -- happy path --------------------------------------------------------------------------------


def test_minimal_event_decodes_with_optional_fields_none() -> None:
    event = decode_event(raw())
    assert event.event_id == "e-1"
    assert event.user_id == "u-1"
    assert event.track_id == "t-1"
    assert event.type is EventType.PLAY
    assert event.ts == T0_MS
    assert event.position_ms is None
    assert event.duration_ms is None
    assert event.session_id is None
    assert event.context is None


def test_full_event_decodes_every_field() -> None:
    event = decode_event(raw(
        type="skip", position_ms=12_000, duration_ms=200_000, session_id="s-9",
        context={"source": "radio", "device": "phone", "mood": "calm", "activity": "run"},
    ))
    assert event.type is EventType.SKIP
    assert (event.position_ms, event.duration_ms, event.session_id) == (12_000, 200_000, "s-9")
    assert event.context == EventContext(source="radio", device="phone", mood="calm", activity="run")


def test_event_is_frozen() -> None:
    event = decode_event(raw())
    with pytest.raises(ValueError):
        event.ts = 5  # type: ignore[misc]


def test_ids_are_stripped_of_surrounding_whitespace() -> None:
    event = validate_event(payload(user_id="  alice  "))
    assert event.user_id == "alice"


def test_unicode_ids_are_accepted() -> None:
    event = validate_event(payload(track_id="трек-🎵-曲"))
    assert event.track_id == "трек-🎵-曲"


# -- ts ----------------------------------------------------------------------------------------


def test_ts_int_epoch_ms() -> None:
    assert validate_event(payload(ts=1_700_000_000_123)).ts == 1_700_000_000_123


def test_ts_zero_is_accepted() -> None:
    assert validate_event(payload(ts=0)).ts == 0


def test_ts_numeric_string() -> None:
    assert validate_event(payload(ts="1700000000123")).ts == 1_700_000_000_123
    assert validate_event(payload(ts=" 1700000000123 ")).ts == 1_700_000_000_123


def test_ts_float_is_truncated_to_ms() -> None:
    assert validate_event(payload(ts=1_700_000_000_123.9)).ts == 1_700_000_000_123


def test_ts_rfc3339_z() -> None:
    assert validate_event(payload(ts="2026-11-21T08:00:00Z")).ts == T0_MS
    assert validate_event(payload(ts="2026-11-21T08:00:00z")).ts == T0_MS


def test_ts_rfc3339_with_milliseconds_is_exact() -> None:
    assert validate_event(payload(ts="2026-11-21T08:00:00.123Z")).ts == T0_MS + 123
    assert validate_event(payload(ts="2026-11-21T08:00:00.999Z")).ts == T0_MS + 999
    # Sub-millisecond digits are dropped, never rounded up into the next millisecond.
    assert validate_event(payload(ts="2026-11-21T08:00:00.123999Z")).ts == T0_MS + 123


def test_ts_rfc3339_with_positive_offset() -> None:
    # 09:00 at +01:00 is 08:00 UTC.
    assert validate_event(payload(ts="2026-11-21T09:00:00+01:00")).ts == T0_MS
    assert validate_event(payload(ts="2026-11-21T09:00:00.250+01:00")).ts == T0_MS + 250


def test_ts_rfc3339_with_negative_offset() -> None:
    assert validate_event(payload(ts="2026-11-21T03:30:00-04:30")).ts == T0_MS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2004-04-17T19:04:30.370Z", 1_082_228_670_370),
        ("2038-09-02T07:02:22.042Z", 2_167_023_742_042),
    ],
)
def test_ts_rfc3339_milliseconds_are_exact_for_every_date(text: str, expected: int) -> None:
    as_datetime = datetime.fromisoformat(text.replace("Z", "+00:00"))
    independent = (as_datetime - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert independent == expected
    assert parse_timestamp_ms(text) == expected


@pytest.mark.parametrize(
    "value",
    ["2026-11-21T08:00:00", "2026-11-21T08:00:00.123", "2026-11-21"],
)
def test_ts_naive_datetime_refused(value: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(ts=value))
    assert "ts" in refused_fields(info.value)
    assert "offset" in info.value.reason


@pytest.mark.parametrize("value", [True, False])
def test_ts_boolean_refused(value: bool) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(ts=value))
    assert refused_fields(info.value) == {"ts"}
    assert "boolean" in info.value.reason


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_ts_non_finite_float_refused(value: float) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(ts=value))
    assert refused_fields(info.value) == {"ts"}
    assert "finite" in info.value.reason


@pytest.mark.parametrize("value", ["yesterday", "", "   ", "12:00", "1e12", "2026-13-45T00:00:00Z", "0x10"])
def test_ts_garbage_string_refused(value: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(ts=value))
    assert refused_fields(info.value) == {"ts"}


@pytest.mark.parametrize("value", [None, [1], {"ms": 1}])
def test_ts_wrong_type_refused(value: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(ts=value))
    assert refused_fields(info.value) == {"ts"}


@pytest.mark.parametrize("value", [-1, "-5", "1969-12-31T23:59:59Z"])
def test_ts_before_epoch_refused(value: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(ts=value))
    assert refused_fields(info.value) == {"ts"}


# -- type --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["play", "skip", "like", "dislike", "complete"])
def test_every_event_type_is_accepted(name: str) -> None:
    assert validate_event(payload(type=name)).type == EventType(name)


def test_event_types_are_exactly_the_five() -> None:
    assert {t.value for t in EventType} == {"play", "skip", "like", "dislike", "complete"}


@pytest.mark.parametrize("name", ["pause", "LIKE", "Like", "", "likes", 1, None])
def test_other_types_are_refused(name: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(type=name))
    assert refused_fields(info.value) == {"type"}


# -- missing and unknown fields ----------------------------------------------------------------


@pytest.mark.parametrize("missing", REQUIRED)
def test_each_missing_required_field_is_named(missing: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(**{missing: ...}))
    assert refused_fields(info.value) == {missing}
    assert missing in info.value.reason
    assert "required" in info.value.reason.lower()


def test_all_missing_fields_are_named_at_once() -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(b'{"event_id": "e1"}')
    assert refused_fields(info.value) == {"user_id", "track_id", "type", "ts"}
    for name in ("user_id", "track_id", "type", "ts"):
        assert name in info.value.reason


def test_unknown_top_level_fields_are_dropped() -> None:
    event = validate_event(payload(secret="x", rating=5, nested={"a": 1}))
    dumped = event.model_dump()
    assert "secret" not in dumped
    assert "rating" not in dumped
    assert "nested" not in dumped
    assert set(dumped) == {*REQUIRED, "position_ms", "duration_ms", "session_id", "context"}
    assert b"secret" not in event.to_json()


def test_unknown_context_fields_are_dropped() -> None:
    event = validate_event(payload(context={"source": "radio", "weather": "rain", "lat": 1.5}))
    assert event.model_dump()["context"] == {
        "source": "radio", "device": None, "mood": None, "activity": None, "request_id": None,
    }
    assert b"weather" not in event.to_json()


def test_context_must_be_an_object() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(context="radio"))
    assert refused_fields(info.value) == {"context"}


def test_context_label_too_long_refused() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(context={"mood": "m" * 65}))
    assert refused_fields(info.value) == {"context.mood"}


# -- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_id", "user_id", "track_id", "session_id"])
@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "a\tb", "a\x1bb", "a\x7fb", "a\x85b", "a\x9fb"])
def test_ids_with_control_characters_refused(field: str, bad: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(**{field: bad}))
    assert refused_fields(info.value) == {field}
    assert "control" in info.value.reason


@pytest.mark.parametrize("field", ["event_id", "user_id", "track_id", "session_id"])
def test_ids_longer_than_128_refused(field: str) -> None:
    assert getattr(validate_event(payload(**{field: "x" * 128})), field) == "x" * 128
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(**{field: "x" * 129}))
    assert refused_fields(info.value) == {field}


@pytest.mark.parametrize("field", ["event_id", "user_id", "track_id"])
@pytest.mark.parametrize("bad", ["", "   ", 5, None])
def test_ids_empty_or_not_strings_refused(field: str, bad: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(**{field: bad}))
    assert refused_fields(info.value) == {field}


# -- position / duration -----------------------------------------------------------------------


def test_position_zero_accepted() -> None:
    assert validate_event(payload(position_ms=0)).position_ms == 0


def test_negative_position_refused() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(position_ms=-1))
    assert refused_fields(info.value) == {"position_ms"}


@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_duration_refused(value: int) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(duration_ms=value))
    assert refused_fields(info.value) == {"duration_ms"}


def test_duration_one_ms_accepted() -> None:
    assert validate_event(payload(duration_ms=1)).duration_ms == 1


def test_several_bad_fields_all_reported() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(position_ms=-1, duration_ms=0, type="nope"))
    assert refused_fields(info.value) == {"position_ms", "duration_ms", "type"}


# -- not an event at all -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, b""])
def test_empty_message_refused(data: bytes | None) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(data)
    assert info.value.reason == "empty message"


@pytest.mark.parametrize("data", [b"not json", b"{", b'{"event_id": "e1",}', b"\x00", b"   "])
def test_not_json_refused(data: bytes) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(data)
    assert info.value.reason.startswith("not valid JSON")


@pytest.mark.parametrize("data", [b"\xff\xfe\xfd", b'{"event_id": "\xc3\x28"}', b"\x80"])
def test_invalid_utf8_refused(data: bytes) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(data)
    assert info.value.reason.startswith("not valid JSON")


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"[]", "list"), (b'[{"event_id": "e1"}]', "list"), (b"42", "int"), (b"4.5", "float"),
     (b'"play"', "str"), (b"null", "NoneType"), (b"true", "bool")],
)
def test_json_that_is_not_an_object_refused(data: bytes, kind: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(data)
    assert info.value.reason == f"an event must be a JSON object, got {kind}"


def test_invalid_event_carries_reason_and_errors() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(payload(type="nope"))
    exc = info.value
    assert isinstance(exc, ValueError)
    assert str(exc) == exc.reason
    assert "\n" not in exc.reason
    assert exc.errors[0]["field"] == "type"
    assert not exc.errors[0]["message"].startswith("Value error")


def test_invalid_event_without_field_errors_has_one_generic_error() -> None:
    exc = InvalidEvent("empty message")
    assert exc.errors == [{"field": "", "message": "empty message"}]


# -- to_json round trip ------------------------------------------------------------------------


def test_to_json_round_trips_full_event() -> None:
    event = decode_event(raw(
        type="skip", position_ms=5_000, duration_ms=180_000, session_id="s",
        context={"source": "radio", "mood": "happy"},
    ))
    assert decode_event(event.to_json()) == event


def test_to_json_omits_none_and_writes_ts_as_int() -> None:
    event = validate_event(payload(ts="2026-11-21T08:00:00Z"))
    data = orjson.loads(event.to_json())
    assert data == {"event_id": "e-1", "user_id": "u-1", "track_id": "t-1", "type": "play", "ts": T0_MS}


def test_every_accepted_event_can_be_serialised() -> None:
    try:
        event = decode_event(raw(ts=1e20))
    except InvalidEvent:
        return  # refusing such a ts is fine too
    assert decode_event(event.to_json()) == event


# -- never another exception -------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = (
    json_values
    | st.sampled_from(["play", "skip", "like", "dislike", "complete", "2026-11-21T08:00:00Z",
                       "2026-11-21T08:00:00", "123", "-1", "a\x00"])
    | st.dictionaries(st.sampled_from(["source", "device", "mood", "activity", "x"]), json_scalars)
)
event_like = st.dictionaries(
    st.sampled_from([*REQUIRED, "position_ms", "duration_ms", "session_id", "context", "extra"]),
    field_values,
)


def _accepts_or_refuses(call: object, *args: object) -> None:
    try:
        result = call(*args)  # type: ignore[operator]
    except InvalidEvent as exc:
        assert exc.reason
    else:
        assert isinstance(result, Event)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes_only_raises_invalid_event(data: bytes) -> None:
    _accepts_or_refuses(decode_event, data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | event_like)
def test_validate_arbitrary_json_values_only_raises_invalid_event(value: object) -> None:
    _accepts_or_refuses(validate_event, value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | event_like)
def test_decode_serialised_json_values_only_raises_invalid_event(value: object) -> None:
    try:
        data = orjson.dumps(value)
    except TypeError:  # ints beyond 64 bits cannot be written as JSON by orjson
        return
    _accepts_or_refuses(decode_event, data)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(EventType)),
    st.integers(min_value=0, max_value=MAX_TS_MS),
    st.none() | st.integers(min_value=0, max_value=MAX_TRACK_MS),
    st.none() | st.integers(min_value=1, max_value=MAX_TRACK_MS),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128).filter(str.strip),
)
def test_valid_events_round_trip(
    type_: EventType, ts: int, position: int | None, duration: int | None, track_id: str
) -> None:
    data = payload(type=type_.value, ts=ts, position_ms=position, duration_ms=duration, track_id=track_id)
    event = validate_event(data)
    assert event.track_id == track_id.strip()
    assert decode_event(event.to_json()) == event
