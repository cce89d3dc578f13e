"""Users: forget a listener, or export what is kept about them (`admin` key, or their own token).

`DELETE /v1/users/{user_id}` sends a tombstone (`schemas.events.Forget`) through `encore.events`
keyed by the user, so the flow reaches it after every earlier event of theirs and drops their whole
state (`flows.user_state`, "Forgetting"), and deletes their Redis keys at once. What stays in the
aggregates is in docs/security.md ("Forgetting a listener").
"""

from __future__ import annotations

import contextlib
import time
import uuid

import numpy as np
import orjson
from fastapi import APIRouter, Depends
from redis.exceptions import RedisError

from online_models.drift import DriftDetector
from schemas.events import Forget
from schemas.profile_codec import NO_PRIOR, UserProfile
from schemas.tracks import AUDIO_FEATURES
from serving.auth import ListenerAccess, require
from serving.deps import ConfigDep, ProducerDep, RedisDep, UserId
from serving.errors import ERROR_RESPONSES, ApiError
from serving.models import (
    Export,
    ExportedModel,
    ExportedProfile,
    ExportedRecent,
    ExportedSeed,
    Forgetting,
)
from serving.producer import BrokerUnavailable
from serving.routers.shared import iso, listener

router = APIRouter(prefix="/v1", tags=["users"],
                   dependencies=[Depends(require("admin", ListenerAccess.OWN))], responses=ERROR_RESPONSES)

NOT_IN_REDIS = [
    "The flow's state for the listener (Bytewax recovery snapshots, newest only): the profile and "
    "models above, the 64-bit hashes of their event ids of the dedupe horizon "
    "(ENCORE_DEDUPE_HORIZON_S), their last positive tracks of 2 h (co-listening window), their "
    "recent liked artists (up to 64), and events held for a track the catalog does not know yet.",
    "Their raw events in the Kafka topic encore.events (and refused ones in encore.events.dlq), until "
    "the topics' retention deletes them.",
    "Anonymous aggregates their events contributed to: per-track counts and trending, co-listening "
    "between tracks, artist co-occurrence, the global engagement model (docs/security.md).",
]


@router.delete("/users/{user_id}", status_code=202, response_model=Forgetting)
async def forget(user_id: UserId, client: RedisDep, producer: ProducerDep, cfg: ConfigDep) -> Forgetting:
    """Forget a listener: their profile and seed are deleted now, and a tombstone through the events
    topic makes the flow drop everything it keeps about them, after their earlier events. Events
    from before it (a player retrying an old batch) do not bring them back; later ones start a
    fresh profile. Answers once the broker acknowledged the tombstone."""
    tombstone = Forget(user_id=user_id, request_id=uuid.uuid4().hex, requested_at=int(time.time() * 1000))
    try:
        await producer.send(cfg.topics.events, [(user_id.encode(), tombstone.to_json())])
    except BrokerUnavailable as exc:
        raise ApiError(503, "broker_unavailable", f"the forget request was not accepted: {exc}") from None
    # The tombstone is acknowledged: the flow deletes the keys in any case; this makes it immediate.
    with contextlib.suppress(RedisError):
        await client.delete(cfg.keys.profile(user_id), cfg.keys.user_seed(user_id))
    return Forgetting(user_id=user_id, request_id=tombstone.request_id, topic=cfg.topics.events,
                      status="accepted")


@router.get("/users/{user_id}/export", response_model=Export)
async def export(user_id: UserId, client: RedisDep, cfg: ConfigDep) -> Export:
    """Everything Encore keeps about a listener that can be read back, as JSON: the stored profile
    with every field (taste, affinities, counts, recent tracks, the engagement model's weights, the
    drift detector), the declared favourites, and where the rest is kept."""
    state = await listener(client, cfg, user_id)
    return Export(user_id=user_id, exported_at=iso(int(time.time() * 1000)) or "",
                  profile=_profile(state.profile) if state.profile is not None else None,
                  seed=_seed(state.seed_raw), not_included=NOT_IN_REDIS)


def _profile(profile: UserProfile) -> ExportedProfile:
    model = None
    if profile.model_weights:
        weights = np.frombuffer(profile.model_weights, "<f4").tolist()
        model = ExportedModel(weights=weights,
                              prior_period=None if profile.prior_period == NO_PRIOR else profile.prior_period)
    drift = DriftDetector.from_bytes(profile.drift).state() if profile.drift else None
    return ExportedProfile(
        profile_version=profile.version, as_of=iso(profile.as_of_ms), affinity_at=iso(profile.affinity_at_ms),
        taste=dict(zip(AUDIO_FEATURES, profile.taste, strict=True)) if profile.taste else {},
        taste_weight=profile.taste_weight, skip_rate=profile.skip_rate,
        counts={str(t): n for t, n in profile.counts.items()}, genres=profile.genres, artists=profile.artists,
        recent_tracks=[ExportedRecent(track_id=r.track_id, type=str(r.type), at=iso(r.ts_ms))
                       for r in profile.recent],
        likes_per_4h_utc=profile.tod_counts, engagement_model=model, drift=drift,
    )


def _seed(raw: bytes | None) -> ExportedSeed | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        return ExportedSeed(track_ids=list(data.get("track_ids", ())), artists=list(data.get("artists", ())),
                            at=iso(int(data.get("at_ms", 0))))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return ExportedSeed(track_ids=[], artists=[], at=None)
