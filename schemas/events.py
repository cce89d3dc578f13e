"""The listening event: what a player app emits for every play, skip, like, dislike or complete; and
the one control message that shares its topic, `Forget`.

`encore.events` carries two kinds of message, told apart by one field: a message with a `control`
field is a control message (`Forget`, `{"control": "forget", ...}`), anything else is a listening
`Event`. A control message is not an event type: it has no row in `schemas.event_types.SEMANTICS`,
is never learned from, counted or deduplicated, and only the flow's per-user step acts on it.
`decode_message` reads either; `decode_event` only events.

>>> event = decode_event(b'{"event_id": "e1", "user_id": "u1", "track_id": "t1", '
...                      b'"type": "like", "ts": "2026-11-21T08:00:00Z"}')
>>> event.type, event.ts
(<EventType.LIKE: 'like'>, 1795248000000)
>>> decode_event(b'{"event_id": "e1"}')
Traceback (most recent call last):
...
schemas.events.InvalidEvent: user_id: Field required; track_id: Field required; ...
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas._text import Identifier, Label

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TS_MS = 253_402_300_799_999
"""The last millisecond of year 9999: any later `ts` is refused."""
MAX_TRACK_MS = 86_400_000
"""Positions and durations beyond a day are refused."""
MIN_EVENT_TS_MS = 946_684_800_000
"""2000-01-01T00:00:00Z: an earlier `ts` is not a real listening time (an unset clock, seconds sent as
milliseconds)."""
MAX_CLOCK_AHEAD_MS = 86_400_000
"""How far after its receipt an event may claim to have happened (a day of clock skew)."""


class EventType(StrEnum):
    PLAY = "play"
    SKIP = "skip"
    LIKE = "like"
    DISLIKE = "dislike"
    COMPLETE = "complete"


class EventContext(BaseModel):
    """Where and how the listening happened; every field optional."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: Label | None = None
    device: Label | None = None
    mood: Label | None = None
    activity: Label | None = None
    request_id: Identifier | None = Field(
        default=None, description="The `request_id` of the recommendation (or search) answer the track was "
        "played from: the flow attributes the outcome to that answer's experiment variant.")


class Event(BaseModel):
    """One listening event. Unknown fields are dropped; wrong ones are refused with a reason."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Identifier = Field(description="Client-made id; the same id is applied once.")
    user_id: Identifier
    track_id: Identifier
    type: EventType
    ts: int = Field(
        description="Event time as epoch milliseconds; accepts an integer or an RFC 3339 string.",
        ge=0,
        le=MAX_TS_MS,
    )
    position_ms: int | None = Field(
        default=None, ge=0, le=MAX_TRACK_MS, description="How far into the track the event happened."
    )
    duration_ms: int | None = Field(
        default=None, gt=0, le=MAX_TRACK_MS, description="The track's length."
    )
    session_id: Identifier | None = None
    context: EventContext | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any) -> int:
        return parse_timestamp_ms(value)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def parse_timestamp_ms(value: Any) -> int:
    """Epoch milliseconds from an int/float of epoch ms or an RFC 3339 string (with offset)."""
    if isinstance(value, bool):
        raise ValueError("must be epoch milliseconds or an RFC 3339 string, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("must be epoch milliseconds or an RFC 3339 string") from None
        if parsed.tzinfo is None:
            raise ValueError("RFC 3339 timestamps need a UTC offset, e.g. 'Z' or '+01:00'")
        # Integer arithmetic: float seconds × 1000 would lose a millisecond for some dates.
        return (parsed - _EPOCH) // timedelta(milliseconds=1)
    raise ValueError("must be epoch milliseconds or an RFC 3339 string")


def event_time_problem(ts_ms: int, received_ms: int) -> str | None:
    """Why an event time cannot be trusted, given when the event was received; None if it can.

    The flow passes the broker timestamp of the Kafka message, so a replay judges the same way;
    the API passes its clock.

    >>> event_time_problem(1_795_000_000_000, 1_795_000_000_500) is None
    True
    >>> event_time_problem(1_795_000_000, 1_795_000_000_500)
    'ts is before 2000-01-01 (seconds sent as milliseconds?)'
    """
    if ts_ms < MIN_EVENT_TS_MS:
        return "ts is before 2000-01-01 (seconds sent as milliseconds?)"
    ahead = ts_ms - received_ms
    if ahead > MAX_CLOCK_AHEAD_MS:
        return f"ts is {ahead / 3_600_000:.0f} h after the event was received: the sender's clock is wrong"
    return None


class ControlType(StrEnum):
    FORGET = "forget"


class Forget(BaseModel):
    """A tombstone: forget everything kept about `user_id` (`DELETE /v1/users/{id}`).

    Sent through `encore.events` keyed by the user, so the flow sees it after every earlier event of
    theirs, in partition order. Wire form: `{"control": "forget", "user_id", "request_id",
    "requested_at"}` (epoch ms of the request, for the record; the flow does not compare it with
    event times).

    >>> decode_message(Forget(user_id="u1", request_id="r1", requested_at=5).to_json())
    Forget(control=<ControlType.FORGET: 'forget'>, user_id='u1', request_id='r1', requested_at=5)
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    control: Literal[ControlType.FORGET] = ControlType.FORGET
    user_id: Identifier
    request_id: Identifier
    requested_at: int = Field(ge=0, le=MAX_TS_MS)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


Message = Event | Forget
"""What a message on `encore.events` holds."""


class InvalidEvent(ValueError):
    """An event that cannot be applied; `reason` says why in one line."""

    def __init__(self, reason: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or [{"field": "", "message": reason}]


def describe_validation_error(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as `{field, message}` pairs a person can read."""
    described = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        described.append({"field": field, "message": message})
    return described


def _reason(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)


def validate_event(data: Any) -> Event:
    """An `Event` from already-parsed JSON, or `InvalidEvent` naming each bad field."""
    if not isinstance(data, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(data).__name__}")
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        errors = describe_validation_error(exc)
        raise InvalidEvent(_reason(errors), errors) from None


def _parse(raw: bytes | None) -> Any:
    if raw is None or not raw:
        raise InvalidEvent("empty message")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None


def decode_event(raw: bytes | None) -> Event:
    """An `Event` from the bytes of a Kafka message, or `InvalidEvent` with a one-line reason."""
    return validate_event(_parse(raw))


def decode_message(raw: bytes | None) -> Message:
    """An `Event` or a control message (`Forget`) from the bytes of a message on `encore.events`."""
    data = _parse(raw)
    if isinstance(data, dict) and "control" in data:
        try:
            return Forget.model_validate(data)
        except ValidationError as exc:
            errors = describe_validation_error(exc)
            raise InvalidEvent(_reason(errors), errors) from None
    return validate_event(data)
