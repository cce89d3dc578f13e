"""Profile: a listener's live profile in readable form (`read` scope, or the listener's own token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ranking.scoring import describe_taste
from ranking.taste_analysis import analyse_taste
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES
from serving.auth import ListenerAccess, require
from serving.deps import CatalogDep, ConfigDep, RedisDep, UserId
from serving.errors import ERROR_RESPONSES, ApiError
from serving.models import Affinity, Profile, RecentTrackOut, TasteAnalysis
from serving.routers.shared import iso, listener

router = APIRouter(prefix="/v1", tags=["recommend"],
                   dependencies=[Depends(require("read", ListenerAccess.OWN))],
                   responses={**ERROR_RESPONSES, 404: ERROR_RESPONSES[422]})
"""Tagged `recommend`, as it was before the routers were split (generated clients group by tag)."""


def _top(scores: dict[str, float], sign: int) -> list[Affinity]:
    ranked = sorted((kv for kv in scores.items() if kv[1] * sign > 0), key=lambda kv: -kv[1] * sign)
    return [Affinity(name=name, score=round(score, 4)) for name, score in ranked[:10]]


@router.get("/users/{user_id}/profile", response_model=Profile)
async def profile(user_id: UserId, client: RedisDep, catalog: CatalogDep, cfg: ConfigDep) -> Profile:
    """The live profile in readable form."""
    live = (await listener(client, cfg, user_id)).profile
    if live is None:
        raise ApiError(404, "unknown_user", f"no profile for user {user_id!r}: no event applied yet")
    audio = None
    if live.taste:
        audio = {}
        for name, value in zip(AUDIO_FEATURES, live.taste, strict=True):
            low, high = FEATURE_RANGES[name]
            audio[name] = round(low + value * (high - low), 4)
    summary = []
    if live.taste and len(catalog.index):
        summary = describe_taste(catalog.index, live.taste, limit=3)
    return Profile(
        user_id=user_id,
        profile_version=live.version,
        as_of=iso(live.as_of_ms),
        events_applied=live.version,
        counts={str(t): n for t, n in live.counts.items()},
        skip_rate=round(live.skip_rate, 4),
        top_genres=_top(live.genres, +1),
        top_artists=_top(live.artists, +1),
        avoided_genres=_top(live.genres, -1),
        avoided_artists=_top(live.artists, -1),
        audio_profile=audio,
        taste_summary=summary,
        recent_tracks=[RecentTrackOut(track_id=r.track_id, type=str(r.type)) for r in reversed(live.recent)],
        taste_analysis=TasteAnalysis(**analyse_taste(catalog.view, live)) if len(catalog.view) else None,
    )
