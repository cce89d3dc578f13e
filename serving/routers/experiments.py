"""Experiments: `GET /v1/experiments` (`admin` scope): each configured experiment's variants, their
live outcomes as the flow counted them, rates with 95 % intervals, and the verdict."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends

from ranking.experiments import Experiment, report
from ranking.explore import outcome_stats
from schemas.keys import KeyLayout
from schemas.values import EXPERIMENT_COUNTERS, EXPLORE_KEY, decode_outcomes
from serving.auth import require
from serving.deps import ConfigDep, RedisDep
from serving.errors import ERROR_RESPONSES
from serving.routers.shared import redis_call

router = APIRouter(prefix="/v1", tags=["experiments"], dependencies=[Depends(require("admin"))],
                   responses=ERROR_RESPONSES)


async def experiment_reports(client: aioredis.Redis, keys: KeyLayout,
                             experiments: tuple[Experiment, ...]) -> list[dict[str, Any]]:
    if not experiments:
        return []
    pipe = client.pipeline(transaction=False)
    for experiment in experiments:
        pipe.hgetall(keys.experiment_outcomes(experiment.name))
    rows = await pipe.execute()
    return [report(e, decode_outcomes(row or {})) for e, row in zip(experiments, rows, strict=True)]


@router.get("/experiments")
async def experiments(client: RedisDep, cfg: ConfigDep) -> dict[str, Any]:
    """The configured A/B experiments of ranking variants and how each variant does on live outcomes.

    Per variant: traffic share, overrides, the counts of plays, completes, likes, skips, early skips
    and dislikes of tracks from its answers (players send the answer's `request_id` as
    `context.request_id`), recommended plays = max(play events, completes + skips), each rate per
    play with a 95 % Wilson interval; the verdict compares completion rates (two-proportion z-test).
    `explore`: the exploration bandit's arms, their outcomes (successes = completes + likes,
    failures = skips + dislikes) and posterior mean Beta(1 + s, 1 + f).
    """
    reports = await redis_call(lambda: experiment_reports(client, cfg.keys, cfg.experiments))
    raw = await redis_call(lambda: client.hgetall(cfg.keys.experiment_outcomes(EXPLORE_KEY)))
    outcomes = decode_outcomes(raw or {})
    stats = outcome_stats(outcomes)
    arms = []
    for arm in cfg.ranking.explore_arms:
        successes, failures = stats.get(arm, (0.0, 0.0))
        arms.append({"arm": arm, "counts": {c: outcomes.get(arm, {}).get(c, 0) for c in EXPERIMENT_COUNTERS},
                     "successes": successes, "failures": failures,
                     "posterior_mean": round((1 + successes) / (2 + successes + failures), 4)})
    return {"experiments": reports, "explore": {"share": cfg.ranking.explore_share, "arms": arms}}
