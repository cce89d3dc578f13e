"""A fast path for the common listening event: msgspec's typed JSON decoding and a few plain checks
instead of orjson and pydantic's validation, for the flow's hot path.

`fast_event` accepts only what `schemas.events.decode_message` accepts, and then returns an `Event`
equal to the one it returns (same field values and types, same set fields); anything it is not sure
of gives None, and the caller takes the pydantic path, which accepts or refuses it with its reasons.
So the fast path cannot change what is accepted or why something is refused, only how fast.

What it leaves to pydantic: unknown fields (so every control message, `{"control": ...}`), an id or
label with whitespace at either end (pydantic strips it) or any character that is not printable (a
control character is refused; the rest is rare), a `ts` or position that is not an integer in range
(or, for `ts`, a string `parse_timestamp_ms` reads), and anything msgspec's decoding refuses.

>>> from schemas.events import decode_message
>>> raw = b'{"event_id": "e1", "user_id": "u1", "track_id": "t1", "type": "like", "ts": 1795248000000}'
>>> fast_event(raw) == decode_message(raw)
True
>>> fast_event(b'{"event_id": " e1", "user_id": "u1", "track_id": "t1", "type": "like", "ts": 5}') is None
True
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from pydantic import BaseModel

from schemas._text import ID_MAX_LEN, LABEL_MAX_LEN
from schemas.events import (
    MAX_TRACK_MS,
    MAX_TS_MS,
    Event,
    EventContext,
    EventType,
    parse_timestamp_ms,
)

_Id = Annotated[str, Meta(min_length=1, max_length=ID_MAX_LEN)]
_Ts = Annotated[int, Meta(ge=0, le=MAX_TS_MS)]
_Position = Annotated[int, Meta(ge=0, le=MAX_TRACK_MS)]
_Duration = Annotated[int, Meta(gt=0, le=MAX_TRACK_MS)]


class _Event(Struct, forbid_unknown_fields=True, gc=False):
    """`Event`'s wire form: types, lengths and ranges (checked in C); an unknown field (a control
    message's `control`) refuses. The context is a plain mapping, its keys checked below: cheaper
    than a nested Struct."""

    event_id: _Id
    user_id: _Id
    track_id: _Id
    type: EventType
    ts: _Ts | str
    position_ms: _Position | UnsetType | None = UNSET
    duration_ms: _Duration | UnsetType | None = UNSET
    session_id: _Id | UnsetType | None = UNSET
    context: dict[str, _Id | None] | UnsetType | None = UNSET


_decoder = msgspec.json.Decoder(_Event)
_EVENT_FIELDS = ("event_id", "user_id", "track_id", "type", "ts", "position_ms", "duration_ms", "session_id",
                 "context")
"""`Event`'s fields in its order, the order `fast_event` fills `__dict__` in (as validation does)."""
_REQUIRED = frozenset(_EVENT_FIELDS[:5])
_ALL = set(_EVENT_FIELDS)
_OPTIONAL = _EVENT_FIELDS[5:]
_CONTEXT_NONE = dict.fromkeys(EventContext.model_fields)
_CONTEXT_KEYS = _CONTEXT_NONE.keys()


def _plain(value: str) -> bool:
    """True when pydantic keeps `value` (of an allowed length) as it is, as an `Identifier` or a
    `Label`.

    Printable means no control character and no whitespace but the ASCII space, so with no space at
    either end there is nothing for its strip to remove (it strips a subset of what Python's
    `str.isspace` calls whitespace).
    """
    return value.isprintable() and value[0] != " " and value[-1] != " "


_new = BaseModel.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _assembled(cls: type[Any], values: dict[str, Any], fields_set: set[str]) -> Any:
    """What `cls.model_construct(**values)` builds (with every field in `values`, in field order),
    without its per-field alias and default lookups: these models have neither aliases, nor
    private attributes, nor a post-init, nor kept extras (checked below)."""
    instance = _new(cls)
    _set_dict(instance, values)
    _set_fields(instance, fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def _assembly_holds(cls: type[Any]) -> bool:
    fields = cls.model_fields.values()
    return (cls.model_config.get("extra") != "allow" and not cls.__private_attributes__
            and not cls.__pydantic_post_init__
            and all(f.alias is None and f.validation_alias is None for f in fields))


if not (_assembly_holds(Event) and _assembly_holds(EventContext)
        and tuple(Event.model_fields) == _EVENT_FIELDS == _Event.__struct_fields__):  # pragma: no cover
    raise ImportError("schemas.fast_events no longer mirrors schemas.events: update it with the models")


_contexts: dict[tuple[tuple[str, str | None], ...], EventContext] = {}
"""Contexts already checked, by their items: a stream repeats a few sources and devices. Frozen
models, so events may share one; a request id makes each new, hence the bound."""
MAX_CONTEXTS = 4096


def _context(given: dict[str, str | None]) -> EventContext | None:
    key = tuple(given.items())
    context = _contexts.get(key)
    if context is not None:
        return context
    if not given.keys() <= _CONTEXT_KEYS:  # an unknown key: pydantic ignores it, but not sure
        return None
    for name, value in given.items():  # the mapping's type checked ids' lengths
        if value is not None and not (_plain(value) and (len(value) <= LABEL_MAX_LEN
                                                         or name == "request_id")):
            return None
    context = _assembled(EventContext, {**_CONTEXT_NONE, **given}, set(given))
    if len(_contexts) >= MAX_CONTEXTS:
        _contexts.clear()
    _contexts[key] = context
    return context


def fast_event(raw: bytes) -> Event | None:
    """The `Event` that `decode_message(raw)` returns, when the fast path is sure of it; else None."""
    try:
        wire = _decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # refused, or not sure: pydantic says why
        return None
    ts = wire.ts
    if ts.__class__ is str:
        try:
            ts = parse_timestamp_ms(ts)  # the model's own before-validator
        except Exception:  # whatever it raises, pydantic reports it
            return None
        if not 0 <= ts <= MAX_TS_MS:
            return None
    if not (_plain(wire.event_id) and _plain(wire.user_id) and _plain(wire.track_id)):
        return None
    position, duration, session, context = wire.position_ms, wire.duration_ms, wire.session_id, wire.context
    if position is UNSET or duration is UNSET or session is UNSET or context is UNSET:
        fields_set = {name for name in _OPTIONAL if getattr(wire, name) is not UNSET}
        fields_set.update(_REQUIRED)
        position, duration, session, context = (None if value is UNSET else value
                                                for value in (position, duration, session, context))
    else:
        fields_set = _ALL.copy()
    if session is not None and not _plain(session):
        return None
    if context is not None:
        context = _context(context)
        if context is None:
            return None
    event = _new(Event)
    _set_dict(event, {
        "event_id": wire.event_id, "user_id": wire.user_id, "track_id": wire.track_id, "type": wire.type,
        "ts": ts, "position_ms": position, "duration_ms": duration, "session_id": session,
        "context": context})
    _set_fields(event, fields_set)
    _set_extra(event, None)
    _set_private(event, None)
    return event
