"""Ingest: events (`write` scope, or a listener token for its own events) and catalog tracks
(`admin`) into Kafka, acknowledged by the broker."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request

from schemas.events import InvalidEvent, event_time_problem, validate_event
from schemas.tracks import Track
from serving.auth import Listener, ListenerAccess, require
from serving.deps import ConfigDep, PrincipalDep, ProducerDep
from serving.errors import ERROR_RESPONSES, ApiError
from serving.models import Accepted
from serving.producer import BrokerUnavailable

RESPONSES = {**ERROR_RESPONSES, 400: ERROR_RESPONSES[422], 413: ERROR_RESPONSES[422]}
"""Also 400 (not JSON) and 413 (too many items, or too many bytes)."""

events = APIRouter(prefix="/v1", tags=["ingest"],
                   dependencies=[Depends(require("write", ListenerAccess.ANY))], responses=RESPONSES)
tracks = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(require("admin"))],
                   responses=RESPONSES)


async def _json_array_body(request: Request, max_items: int) -> list[Any]:
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ApiError(422, "empty_batch", "send one object or a non-empty array of them")
    if len(items) > max_items:
        raise ApiError(413, "batch_too_large", f"at most {max_items} items per request, got {len(items)}")
    return items


def _body_schema(ref: str) -> dict[str, Any]:
    """One object or an array of them; the schema itself is added by `serving.app`."""
    item = {"$ref": f"#/components/schemas/{ref}"}
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [item, {"type": "array", "items": item}]}}}}}


@events.post("/events", status_code=202, response_model=Accepted, openapi_extra=_body_schema("Event"))
async def post_events(request: Request, producer: ProducerDep, cfg: ConfigDep,
                      principal: PrincipalDep) -> Accepted:
    """Accept one event or an array of them; answers once the broker acknowledged every one.

    All or nothing: if any event is invalid, none is sent, and the error names each bad event
    (by index) and field. With a listener token, every event's `user_id` must be the token's
    listener: a batch with any other is refused whole (403, naming each such index).
    """
    items = await _json_array_body(request, cfg.max_batch)
    accepted, details = [], []
    received_ms = int(time.time() * 1000)
    for index, item in enumerate(items):
        try:
            event = validate_event(item)
        except InvalidEvent as exc:
            details.extend({"index": index, **error} for error in exc.errors)
            continue
        problem = event_time_problem(event.ts, received_ms)
        if problem is not None:
            details.append({"index": index, "field": "ts", "message": problem})
        accepted.append(event)
    if details:
        bad = len({d["index"] for d in details})
        raise ApiError(422, "invalid_events", f"{bad} of {len(items)} events are invalid", details)
    if isinstance(principal, Listener):
        foreign = [{"index": i, "field": "user_id", "message": "not the token's listener"}
                   for i, e in enumerate(accepted) if e.user_id != principal.user_id]
        if foreign:
            raise ApiError(403, "forbidden", f"{len(foreign)} of {len(items)} events are for another "
                           "listener than the token's: none was sent", foreign)
    try:
        await producer.send(cfg.topics.events, [(e.user_id.encode(), e.to_json()) for e in accepted])
    except BrokerUnavailable as exc:
        raise ApiError(503, "broker_unavailable", f"events were not accepted: {exc}") from None
    return Accepted(accepted=len(accepted), topic=cfg.topics.events, ids=[e.event_id for e in accepted])


@tracks.post("/tracks", status_code=202, response_model=Accepted, openapi_extra=_body_schema("Track"))
async def post_tracks(request: Request, producer: ProducerDep, cfg: ConfigDep) -> Accepted:
    """Upsert catalog tracks (one object or an array); same path into Kafka as events."""
    items = await _json_array_body(request, cfg.max_batch)
    accepted, details = [], []
    for index, item in enumerate(items):
        try:
            accepted.append(Track.model_validate(item))
        except ValueError as exc:
            errors = getattr(exc, "errors", None)
            for e in errors(include_url=False) if callable(errors) else [{"loc": (), "msg": str(exc)}]:
                details.append({"index": index, "field": ".".join(str(p) for p in e["loc"]),
                                "message": e["msg"].removeprefix("Value error, ")})
    if details:
        bad = len({d["index"] for d in details})
        raise ApiError(422, "invalid_tracks", f"{bad} of {len(items)} tracks are invalid", details)
    try:
        await producer.send(cfg.topics.tracks, [(t.track_id.encode(), t.to_json()) for t in accepted])
    except BrokerUnavailable as exc:
        raise ApiError(503, "broker_unavailable", f"tracks were not accepted: {exc}") from None
    return Accepted(accepted=len(accepted), topic=cfg.topics.tracks, ids=[t.track_id for t in accepted])


router = APIRouter()
router.include_router(events)
router.include_router(tracks)
