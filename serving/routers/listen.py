"""The `/listen` page and the two small reads it needs besides profiles, recommendations and search.

| route | key | what |
|---|---|---|
| `GET /listen` | none | a static page (`serving/static/listen.*`, no CDN): a listener's taste, live |
| `GET /v1/catalog/summary` | read | tracks, version, each audio feature's average (own unit), top genres |
| `GET /v1/listeners` | read | some listener ids that have a profile (a bounded SCAN), for the page's picker |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES
from serving.auth import require
from serving.deps import CatalogDep, ConfigDep, RedisDep
from serving.errors import ERROR_RESPONSES
from serving.routers.shared import redis_call

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SCAN_ROUNDS = 20
"""Most SCAN calls one `/v1/listeners` makes (each COUNT 500): bounded work on a big keyspace."""

page = APIRouter()
reads = APIRouter(prefix="/v1", tags=["listen"], dependencies=[Depends(require("read"))],
                  responses=ERROR_RESPONSES)


@page.get("/listen", include_in_schema=False)
async def listen_page() -> FileResponse:
    """A listener's taste, live: profile, recommendations with reasons, buttons that post real
    events. A static shell holding no data; it asks for an API key or a listener token when the API
    wants one."""
    return FileResponse(STATIC_DIR / "listen.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


def _own_unit(name: str, value: float) -> float:
    low, high = FEATURE_RANGES[name]
    return round(low + float(value) * (high - low), 4)


@reads.get("/catalog/summary")
async def catalog_summary(catalog: CatalogDep) -> dict[str, Any]:
    """The catalog in numbers: what a listener's audio profile is compared with."""
    index = catalog.index
    n = len(index)
    average = None
    if n and index.has_features.any():
        mean = index.features[index.has_features].mean(axis=0)
        average = {name: _own_unit(name, mean[i]) for i, name in enumerate(AUDIO_FEATURES)}
    counts = (index.genre_matrix > 0).sum(axis=0) if index.genre_names else np.zeros(0)
    order = np.argsort(-counts, kind="stable")[:20]
    return {
        "tracks": n,
        "version": catalog.version.decode() if isinstance(catalog.version, bytes) else catalog.version,
        "audio_average": average,
        "feature_ranges": {name: list(FEATURE_RANGES[name]) for name in AUDIO_FEATURES},
        "top_genres": [{"name": index.genre_names[g], "tracks": int(counts[g])} for g in order.tolist()],
    }


@reads.get("/listeners")
async def listeners(
    client: RedisDep, cfg: ConfigDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Most ids returned.")] = 50,
) -> dict[str, Any]:
    """Listener ids that have a profile, sorted (at most `limit`; a bounded SCAN, so on a big
    deployment some). For pickers and demos, not for enumerating users."""
    keys = cfg.keys
    found: set[str] = set()

    async def scan() -> None:
        cursor = 0
        for _ in range(SCAN_ROUNDS):
            cursor, batch = await client.scan(cursor, match=keys.profile_pattern, count=500)
            found.update(keys.user_id_of(k.decode() if isinstance(k, bytes) else k) for k in batch)
            if cursor == 0 or len(found) >= limit:
                break

    await redis_call(scan)
    return {"listeners": sorted(found)[:limit]}


router = APIRouter()
router.include_router(page)
router.include_router(reads)
