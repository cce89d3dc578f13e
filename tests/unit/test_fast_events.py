"""The fast path of event decoding (schemas/fast_events.py): for any message it either gives up
(None) or returns exactly what the pydantic path (`schemas.events.decode_message`) returns."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from benchmarks.workload import make_workload
from encore.catalog_csv import read_spotify_csv
from schemas._text import Identifier, Label
from schemas.events import MAX_TRACK_MS, MAX_TS_MS, Event, EventContext, Forget, InvalidEvent, decode_message
from schemas.fast_events import _plain, fast_event

T0_MS = 1_795_248_000_000
FIELDS = ("event_id", "user_id", "track_id", "type", "ts", "position_ms", "duration_ms", "session_id",
          "context")
CONTEXT_FIELDS = ("source", "device", "mood", "activity", "request_id")


def _state(model: Any) -> dict[str, Any]:
    """Everything a model instance holds (what pickling keeps), with each value's exact type."""
    state = model.__getstate__()
    values = {name: (type(value), _state(value) if isinstance(value, EventContext) else value)
              for name, value in state["__dict__"].items()}
    return {**state, "__dict__": values, "order": list(state["__dict__"])}


def assert_same_as_pydantic(raw: bytes) -> Event | None:
    """The property: a fast result is exactly the pydantic one; returns it (None: fell back)."""
    fast = fast_event(raw)
    if fast is None:
        return None
    try:
        reference = decode_message(raw)
    except InvalidEvent as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"fast path accepted what pydantic refuses ({exc.reason}): {raw!r}")
    assert type(fast) is Event and type(reference) is Event
    assert fast == reference
    assert _state(fast) == _state(reference)
    assert fast.to_json() == reference.to_json()
    return fast


# -- values near the edges of every constraint ----------------------------------------------------

edge_text = st.sampled_from([
    "u1", " u1", "u1 ", "\tu1", "u1\n", "\u00a0u1", "u1\u3000", "u\x00", "u\x1f", "u\x7f", "u\x85", "u\x9f",
    "u\u200b", "u\u2028", "\u1680u", "\ufeffu", "é", "🎵", "a b", "", " ", "x" * 64, "x" * 65, "x" * 128,
    "x" * 129, " " + "x" * 128, "é" * 128, "é" * 129, "u\x1c", "u\ud7ff",
])
texts = edge_text | st.text(max_size=12) | st.text(st.characters(codec="ascii"), min_size=1, max_size=8)
json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | texts)
timestamps = (
    st.integers(min_value=-5, max_value=MAX_TS_MS + 5)
    | st.sampled_from([0, MAX_TS_MS, MAX_TS_MS + 1, -1, T0_MS])
    | st.sampled_from(["2026-11-21T08:00:00Z", "2026-11-21T08:00:00.123+01:00", "2026-11-21T08:00:00",
                       " 1795248000000 ", "-1", "12", "2026-11-21t08:00:00z", "9999-12-31T23:59:59.999Z",
                       "1e3", "", "now", "0x10", "١٢٣"])
    | st.floats(min_value=-10, max_value=2e12) | st.booleans() | st.none()
)
durations = (st.integers(min_value=-3, max_value=3) | st.integers(min_value=MAX_TRACK_MS - 2,
                                                                  max_value=MAX_TRACK_MS + 2)
             | st.integers(min_value=0, max_value=MAX_TRACK_MS) | json_scalars)
contexts = st.none() | json_scalars | st.dictionaries(
    st.sampled_from([*CONTEXT_FIELDS, "extra", "Source"]), st.none() | texts | json_scalars, max_size=6)
values_of: dict[str, st.SearchStrategy[Any]] = {
    "event_id": texts, "user_id": texts, "track_id": texts, "session_id": st.none() | texts,
    "type": st.sampled_from(["play", "skip", "like", "dislike", "complete", "PLAY", "stop", ""])
    | json_scalars,
    "ts": timestamps, "position_ms": durations, "duration_ms": durations, "context": contexts,
    "control": st.sampled_from(["forget", "other"]) | json_scalars,
    "request_id": texts, "requested_at": st.integers(min_value=-1, max_value=10**6), "extra": json_scalars,
}


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A mostly valid event (or control message) with some fields dropped, replaced or added."""
    message: dict[str, Any] = {
        "event_id": draw(st.sampled_from(["e1", "cpu-7"])), "user_id": "u1", "track_id": "t1",
        "type": draw(st.sampled_from(["play", "skip", "like"])), "ts": T0_MS,
        "position_ms": 1_000, "duration_ms": 200_000, "session_id": "s1",
        "context": {"source": "search", "device": "desktop"},
    }
    if draw(st.booleans()):
        message["context"][draw(st.sampled_from([*CONTEXT_FIELDS, "extra"]))] = draw(st.none() | texts)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        message.pop(name, None)
    for name in draw(st.lists(st.sampled_from(list(values_of)), max_size=4)):
        message[name] = draw(values_of[name])
    return message


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one known field replaced: accepted or refused for that field alone."""
    message = {
        "event_id": "e1", "user_id": "u1", "track_id": "t1", "type": "play", "ts": T0_MS,
        "position_ms": 1_000, "duration_ms": 200_000, "session_id": "s1",
        "context": {"source": "search", "device": "desktop"},
    }
    name = draw(st.sampled_from(FIELDS))
    message[name] = draw(values_of[name])
    return message


def _encodings(message: dict[str, Any]) -> list[bytes]:
    """The message as several senders would write it (compact, spaced, escaped, keys reordered)."""
    out = [json.dumps(message).encode(),
           json.dumps(message, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8", "surrogatepass")]
    with contextlib.suppress(TypeError):  # orjson refuses integers beyond 64 bits
        out.append(orjson.dumps(message))
    return out


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
@example({"event_id": "e", "user_id": "u", "track_id": "t", "type": "play", "ts": True})
@example({"control": "forget", "user_id": "u", "request_id": "r", "requested_at": 5})
@example({"event_id": "e", "user_id": "u", "track_id": "t", "type": "play", "ts": "2026-11-21T08:00:00Z",
          "context": {}})
def test_fast_path_is_pydantic_or_falls_back(message: dict[str, Any]) -> None:
    for raw in _encodings(message):
        assert_same_as_pydantic(raw)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid())
def test_one_field_off_is_pydantic_or_falls_back(message: dict[str, Any]) -> None:
    for raw in _encodings(message):
        assert_same_as_pydantic(raw)


@pytest.mark.parametrize("name", ["ts", "position_ms", "duration_ms"])
@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize("base", ["zero", "max"])
def test_numeric_bounds(name: str, delta: int, base: str) -> None:
    top = MAX_TS_MS if name == "ts" else MAX_TRACK_MS
    value = (0 if base == "zero" else top) + delta
    message = {"event_id": "e", "user_id": "u", "track_id": "t", "type": "play", "ts": T0_MS, name: value}
    accepted = assert_same_as_pydantic(orjson.dumps(message))
    valid = (value > 0 if name == "duration_ms" else value >= 0) and value <= top
    assert (accepted is not None) == valid
    if name == "ts":
        assert_same_as_pydantic(orjson.dumps({**message, "ts": str(value)}))
        assert_same_as_pydantic(orjson.dumps({**message, "ts": f" {value}"}))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(),
       st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=3)), min_size=1, max_size=3))
def test_damaged_bytes_are_pydantic_or_fall_back(message: dict[str, Any],
                                                 damage: list[tuple[int, bytes]]) -> None:
    """Bytes cut, spliced or overwritten anywhere: broken JSON, escapes, UTF-8, numbers, keys."""
    raw = bytearray(orjson.dumps(message))
    for at, chunk in damage:
        at %= len(raw) + 1
        raw[at:at + len(chunk) % 2] = chunk
    assert_same_as_pydantic(bytes(raw))


@pytest.mark.parametrize("raw", [
    b'{"event_id":"e","event_id":" e","user_id":"u","track_id":"t","type":"play","ts":5}',
    b'{"event_id":" e","event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5}',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5,"context":{"source":"a","source":null}}',
    b'{"\\u0065vent_id":"e","user_id":"u","track_id":"t","type":"pl\\u0061y","ts":5}',
    b'{"event_id":"e\\ud83c\\udfb5","user_id":"u","track_id":"t","type":"play","ts":5}',
    b'{"event_id":"e\\ud83c","user_id":"u","track_id":"t","type":"play","ts":5}',
    b'{"event_id":"e\\u0000","user_id":"u","track_id":"t","type":"play","ts":5}',
    b'\xef\xbb\xbf{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5}',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":18446744073709551616}',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5,"position_ms":-0}',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5,"duration_ms":0}',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5.0}',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5}  \n',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5}\x00',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5,}',
    b'{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5,"x":' + b"[" * 2000 + b"]" * 2000
    + b"}",
    b'[{"event_id":"e","user_id":"u","track_id":"t","type":"play","ts":5}]',
    b"", b"null", b"{}",
    *(orjson.dumps({"event_id": "e", "user_id": "u", "track_id": "t", "type": "play", "ts": 5,
                    "context": {name: "x" * length}})
      for name in CONTEXT_FIELDS for length in (64, 65, 128, 129)),
])
def test_edge_messages(raw: bytes) -> None:
    assert_same_as_pydantic(raw)


def test_control_messages_take_the_pydantic_path() -> None:
    raw = Forget(user_id="u1", request_id="r1", requested_at=5).to_json()
    assert fast_event(raw) is None
    assert isinstance(decode_message(raw), Forget)


def test_whitespace_and_unknown_fields_take_the_pydantic_path() -> None:
    base = {"event_id": "e1", "user_id": "u1", "track_id": "t1", "type": "play", "ts": T0_MS}
    assert assert_same_as_pydantic(orjson.dumps(base)) is not None
    assert fast_event(orjson.dumps({**base, "user_id": " u1"})) is None  # pydantic strips it: "u1"
    assert fast_event(orjson.dumps({**base, "app_version": "3"})) is None
    assert fast_event(orjson.dumps({**base, "context": {"source": "a", "x": 1}})) is None


def test_the_workload_takes_the_fast_path() -> None:
    """The benchmark's and simulator's events (every optional field, a context) are all fast."""
    tracks = read_spotify_csv(Path(__file__).parents[2] / "encore" / "data" / "spotify_sample.csv")
    for _key, raw in make_workload(300, 50, tracks, 7, "fast").events:
        assert assert_same_as_pydantic(raw) is not None
    event = decode_message(raw)
    assert assert_same_as_pydantic(event.to_json()) is not None  # what the API produces


@pytest.mark.parametrize(("adapter", "limit"), [(TypeAdapter(list[Identifier]), 128),
                                                (TypeAdapter(list[Label]), 64)])
def test_plain_strings_are_kept_as_they_are_by_pydantic(adapter: TypeAdapter, limit: int) -> None:
    """Every code point, alone and inside and at either end of an id: whatever `_plain` passes,
    pydantic's strip and control-character check keep unchanged."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    shapes = [s for c in chars for s in (c, f"a{c}", f"{c}a", f"a{c}a")]
    passed = [s for s in shapes if _plain(s)]
    assert adapter.validate_python(passed) == passed
    assert adapter.validate_python(["x" * limit]) == ["x" * limit]
