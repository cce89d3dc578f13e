"""The API on a real broker and a real Redis: events posted over HTTP reach recommendations."""

from __future__ import annotations

import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration


def test_posted_events_round_trip_to_recommendations(env: Env, flow) -> None:
    with env.api() as api:
        tracks = [track(f"r{i}", "rock", 0.8 + i / 100) for i in range(5)]
        tracks += [track(f"j{i}", "jazz", 0.1 + i / 100) for i in range(5)]
        response = api.post("/v1/tracks", json=tracks)
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 10
        # Tracks arrive in one batch per partition: wait for the API's catalog to hold all ten.
        wait_for(lambda: len(api.app.state.catalog.index) == 10, 30, "the API's catalog")

        cold = api.get("/v1/users/dee/recommendations", params={"k": 4}).json()
        assert cold["cold_start"] is True and cold["profile_version"] == 0 and cold["as_of"] is None
        assert len(cold["items"]) == 4

        response = api.post("/v1/events", json=[
            event("d1", "dee", "r0", "like", ts="2026-11-21T08:00:00Z"),
            event("d2", "dee", "r1", "complete", ts="2026-11-21T08:01:00Z"),
        ])
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 2, "topic": env.topics.events, "ids": ["d1", "d2"]}

        env.wait_for_version("dee", 2)
        recs = api.get("/v1/users/dee/recommendations", params={"k": 3}).json()
        assert recs["cold_start"] is False
        assert recs["profile_version"] == 2
        assert recs["as_of"] == "2026-11-21T08:01:00.000Z"
        ids = [item["track_id"] for item in recs["items"]]
        assert "r0" not in ids and "r1" not in ids, "just-played tracks are excluded"
        assert all(item["genres"] == ["rock"] for item in recs["items"])
        assert all(item["reasons"] and item["title"] for item in recs["items"])

        profile = api.get("/v1/users/dee/profile").json()
        assert profile["profile_version"] == 2 and profile["events_applied"] == 2
        assert profile["top_genres"][0]["name"] == "rock"
        assert profile["recent_tracks"][0] == {"track_id": "r1", "type": "complete"}
        assert 80 < profile["audio_profile"]["tempo"] < 250


def test_invalid_events_are_refused_with_each_bad_field_named_and_none_is_sent(env: Env, flow) -> None:
    with env.api() as api:
        response = api.post("/v1/events", json=[
            event("ok", "eve", "t1", "play"),
            {"event_id": "b1", "user_id": "eve", "track_id": "t1", "type": "shout", "ts": 1},
            {"event_id": "b2", "user_id": "eve", "type": "like", "ts": "yesterday"},
        ])
        assert response.status_code == 422
        body = response.json()["error"]
        assert body["code"] == "invalid_events"
        assert body["message"] == "2 of 3 events are invalid"
        named = {(d["index"], d["field"]) for d in body["details"]}
        assert named == {(1, "type"), (2, "track_id"), (2, "ts")}

        assert api.post("/v1/events", content=b"{nope").json()["error"]["code"] == "invalid_json"
        assert api.post("/v1/events", json=[]).status_code == 422
        assert api.get("/v1/users/eve/recommendations", params={"k": 0}).status_code == 422
        missing = api.get("/v1/users/eve/profile")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_user"

        # Nothing of the refused batch was produced: a later valid event is the user's first.
        api.post("/v1/tracks", json=[track("t1", "pop", 0.5)])
        assert api.post("/v1/events", json=event("later", "eve", "t1", "like", ts=T0 + 99)).status_code == 202
        profile = env.wait_for_version("eve", 1)
        assert profile.version == 1 and profile.as_of_ms == T0 + 99


def test_a_sample_catalog_loads_and_cold_start_spans_genres(env: Env, flow) -> None:
    from encore.catalog_loader import load_catalog

    loaded = load_catalog(env.services.bootstrap, env.settings.namespace, DEFAULT_SAMPLE)
    assert loaded == len(read_spotify_csv(DEFAULT_SAMPLE))
    with env.api() as api:
        wait_for(lambda: api.get("/v1/users/new/recommendations").status_code == 200, 30, "catalog")
        wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == loaded, 30, "the whole catalog")
        body = wait_for(
            lambda: (b := api.get("/v1/users/new/recommendations", params={"k": 12}).json())
            and len({i["genres"][0] for i in b["items"]}) == 6 and b, 10, "a cold start across genres")
        assert body["cold_start"] is True
        assert all(item["reasons"][0].startswith("popular in") for item in body["items"])
