"""Exploration on the real stack: a listener's list keeps slots for tracks their sources rarely
surface, says "something new", and the outcomes of those slots, sent back with the answer's
request id, reach the bandit's statistics through the flow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schemas.values import EXPLORE_KEY, decode_explore, decode_outcomes, track_tag
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration


def test_exploration_slots_say_so_and_their_outcomes_teach_the_bandit(env: Env, flow) -> None:
    rng = np.random.default_rng(2)
    tracks = [track(f"t{i}", ("rock", "pop", "folk", "jazz", "edm")[i % 5], float(rng.uniform(0.05, 0.98)),
                    popularity=float(rng.uniform(5, 95)), artist=f"Band {i % 60}") for i in range(250)]
    env.settings = env.settings.with_(ranking_overrides=json.dumps({"explore_share": 0.2}))
    with env.api() as api:
        assert api.post("/v1/tracks", json=tracks).status_code == 202
        wait_for(lambda: len(api.app.state.catalog.index) == len(tracks), 30, "the API's catalog")
        rock = [t["track_id"] for t in tracks if t["genres"] == ["rock"]][:10]
        events = [event(f"l{i}", "eli", t, "like", ts=T0 + i * 1000) for i, t in enumerate(rock)]
        assert api.post("/v1/events", json=events).status_code == 202
        env.wait_for_version("eli", len(events))

        body = api.get("/v1/users/eli/recommendations", params={"k": 10}).json()
        explored = [(i, item) for i, item in enumerate(body["items"]) if item["explore"]]
        assert [i for i, _ in explored] == [3, 7]
        for _, item in explored:
            assert item["reasons"][0].startswith("something new"), item
            assert item["explore"] in {"adjacent", "new_genres", "long_tail", "trending"}
        slots = decode_explore(body["request_id"])
        assert slots == [(item["explore"], track_tag(item["track_id"])) for _, item in explored]

        (_, liked), (_, skipped) = explored
        cite = {"request_id": body["request_id"]}
        outcome = [
            event("o1", "eli", liked["track_id"], "complete", ts=T0 + 60_000, position_ms=200_000,
                  duration_ms=200_000, context=cite),
            event("o2", "eli", liked["track_id"], "like", ts=T0 + 61_000, context=cite),
            event("o3", "eli", skipped["track_id"], "skip", ts=T0 + 62_000, position_ms=5_000,
                  duration_ms=200_000, context=cite),
            event("o4", "eli", body["items"][0]["track_id"], "complete", ts=T0 + 63_000,
                  context=cite),  # a regular slot: no arm is credited
        ]
        assert api.post("/v1/events", json=outcome).status_code == 202
        key = env.keys.experiment_outcomes(EXPLORE_KEY)
        counts = wait_for(lambda: (c := decode_outcomes(env.redis.hgetall(key))) and sum(
            sum(v.values()) for v in c.values()) >= 4 and c, 30, "the exploration outcomes in Redis")
        if liked["explore"] == skipped["explore"]:
            assert counts[liked["explore"]] == {"complete": 1, "like": 1, "skip": 1, "early_skip": 1}
        else:
            assert counts[liked["explore"]] == {"complete": 1, "like": 1}
            assert counts[skipped["explore"]] == {"skip": 1, "early_skip": 1}
        report = api.get("/v1/experiments").json()["explore"]
        assert report["share"] == 0.2
        arms = {a["arm"]: a for a in report["arms"]}
        assert arms[liked["explore"]]["successes"] == 2
        assert arms[skipped["explore"]]["failures"] >= 1
