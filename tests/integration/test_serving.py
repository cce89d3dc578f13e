"""Serving on the real broker, flow and Redis: recommendations with every parameter, re-rank, similar
tracks, seeds, taste analysis, the cache never hiding an event, and errors (bad parameters, auth)."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from encore.catalog_loader import load_catalog
from encore.serve_main import serving_config
from online_models.artist_memory import pair_weight
from serving.app import create_app
from tests.integration.conftest import T0, Env, event, wait_for

pytestmark = pytest.mark.integration

CATALOG = read_spotify_csv(DEFAULT_SAMPLE)
ROCK = [t for t in CATALOG if t.genres[0] == "rock"]
EDM = [t for t in CATALOG if t.genres[0] == "edm"]


def _loaded(env: Env, api: TestClient) -> None:
    load_catalog(env.services.bootstrap, env.settings.namespace, DEFAULT_SAMPLE)
    wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == len(CATALOG), 30, "the catalog in Redis")
    wait_for(lambda: len(api.app.state.catalog.index) == len(CATALOG), 30, "the API's catalog")


def _listen(api: TestClient, env: Env, user: str, tracks: list, kind: str = "complete",
            start: int = 0) -> int:
    events = [event(f"{user}-{kind}-{start + i}", user, t.track_id, kind, ts=T0 + (start + i) * 60_000)
              for i, t in enumerate(tracks)]
    assert api.post("/v1/events", json=events).status_code == 202
    return len(events)


def test_recommendations_rank_similar_seed_and_profile_on_the_live_stack(env: Env, flow) -> None:
    with env.api() as api:
        _loaded(env, api)
        n = _listen(api, env, "ana", ROCK[:10])
        n += _listen(api, env, "ana", ROCK[:4], kind="like", start=n)
        # A second listener plays the same rock tracks and then two more: co-listening.
        _listen(api, env, "ben", [*ROCK[:3], *ROCK[40:42]])
        env.wait_for_version("ana", n)
        env.wait_for_version("ben", 5)
        wait_for(lambda: env.redis.zscore(env.keys.track_neighbours(ROCK[0].track_id), ROCK[40].track_id)
                 is not None, 30, "the second listener's co-listening in the first rock track's row")

        recs = api.get("/v1/users/ana/recommendations", params={"k": 10}).json()
        assert recs["profile_version"] == n and recs["cold_start"] is False and recs["as_of"]
        assert len(recs["items"]) == 10
        ids = [item["track_id"] for item in recs["items"]]
        assert not set(ids) & {t.track_id for t in ROCK[:10]}, "just-played tracks are left out"
        assert sum("rock" in item["genres"] for item in recs["items"]) >= 6
        assert all(item["reasons"] and item["sources"] for item in recs["items"])
        assert all(item["engagement"] is not None for item in recs["items"])
        artists = [item["artist"] for item in recs["items"]]
        assert max(artists.count(a) for a in artists) <= 2
        co = [item for item in recs["items"] if "co_listening" in item["sources"]]
        assert co and any(r.startswith("because you liked") for item in co for r in item["reasons"])

        # Every parameter is accepted and does something visible.
        chill = api.get("/v1/users/ana/recommendations",
                        params={"k": 5, "mood": "chill", "activity": "relaxing", "hour": 22,
                                "diversity": 0.8, "discovery": 0.7, "exclude": ids[:3]}).json()
        assert chill["target"] == "chill+relaxing" and len(chill["items"]) == 5
        assert not set(ids[:3]) & {item["track_id"] for item in chill["items"]}
        assert api.get("/v1/users/ana/recommendations", params={"mood": "GYM"}).json()["target"] == "workout"

        # Re-rank: every known track back, best first; unknown ones reported.
        given = [t.track_id for t in (*EDM[5:10], *ROCK[20:25])]
        ranked = api.post("/v1/users/ana/rank", json={"track_ids": [*given, "no-such-track"]}).json()
        assert ranked["unknown"] == ["no-such-track"] and ranked["profile_version"] == n
        assert sorted(item["track_id"] for item in ranked["items"]) == sorted(given)
        scores = [item["score"] for item in ranked["items"]]
        assert scores == sorted(scores, reverse=True)
        assert sum("rock" in item["genres"] for item in ranked["items"][:5]) >= 4

        # Similar tracks: not the track itself, and what listeners played with it.
        similar = api.get(f"/v1/tracks/{ROCK[0].track_id}/similar", params={"k": 10}).json()
        similar_ids = [item["track_id"] for item in similar["items"]]
        assert ROCK[0].track_id not in similar_ids and len(similar_ids) == 10
        assert any(item["reasons"][0].startswith("listeners play it with") for item in similar["items"])

        # Taste analysis in the profile.
        profile = api.get("/v1/users/ana/profile").json()
        analysis = profile["taste_analysis"]
        assert analysis["clusters"] and analysis["moods"] and len(analysis["time_of_day"]) == 6
        assert analysis["engagement_model"]["own_model"] is True
        assert analysis["drift"] is not None and analysis["drift"]["detections"] >= 0

        # Seeds: a new listener declares favourites and gets them at once.
        latin = [t for t in CATALOG if t.genres[0] == "latin"]
        favourites = {"track_ids": [latin[0].track_id, "nope"], "artists": [latin[1].artist, "Nobody"]}
        seeded = api.post("/v1/users/cleo/seed", json=favourites)
        assert seeded.status_code == 200, seeded.text
        body = seeded.json()
        assert body["unknown_tracks"] == ["nope"] and body["unknown_artists"] == ["Nobody"]
        assert body["recommendations"]["seeded"] is True and body["recommendations"]["cold_start"] is False
        assert sum("latin" in item["genres"] for item in body["recommendations"]["items"]) >= 5
        again = api.get("/v1/users/cleo/recommendations").json()
        assert again["seeded"] is True and again["items"] == body["recommendations"]["items"]


def test_the_cache_never_hides_an_applied_event(env: Env, flow) -> None:
    with env.api() as api:
        _loaded(env, api)
        n = _listen(api, env, "dora", ROCK[:6])
        env.wait_for_version("dora", n)
        first = api.get("/v1/users/dora/recommendations", params={"k": 5}).json()
        again = api.get("/v1/users/dora/recommendations", params={"k": 5}).json()
        assert again.pop("request_id") != first.pop("request_id"), "every answer has its own request id"
        assert again == first
        assert api.app.state.recommender.cache.hits >= 1
        top = first["items"][0]["track_id"]
        assert api.post("/v1/events", json=[event("dora-dislike", "dora", top, "dislike",
                                                  ts=T0 + 3_600_000)]).status_code == 202
        env.wait_for_version("dora", n + 1)
        after = api.get("/v1/users/dora/recommendations", params={"k": 5}).json()
        assert after["profile_version"] == n + 1
        assert top not in {item["track_id"] for item in after["items"]}


def test_bad_parameters_are_json_errors_that_say_what_is_wrong(env: Env, flow) -> None:
    with env.api() as api:
        _loaded(env, api)
        cases = [
            ("get", "/v1/users/x/recommendations", {"params": {"mood": "grumpy"}}, 422,
             "invalid_parameters"),
            ("get", "/v1/users/x/recommendations", {"params": {"activity": "skydiving"}}, 422,
             "invalid_parameters"),
            ("get", "/v1/users/x/recommendations", {"params": {"k": 0}}, 422, None),
            ("get", "/v1/users/x/recommendations", {"params": {"diversity": 1.5}}, 422, None),
            ("get", "/v1/users/x/recommendations", {"params": {"hour": 24}}, 422, None),
            ("get", "/v1/users/x/recommendations", {"params": {"discovery": "lots"}}, 422, None),
            ("post", "/v1/users/x/rank", {"json": {"track_ids": []}}, 422, None),
            ("post", "/v1/users/x/rank", {"json": {"track_ids": ["a"] * 1001}}, 422, None),
            ("post", "/v1/users/x/rank", {"json": {"tracks": ["a"]}}, 422, None),
            ("post", "/v1/users/x/rank", {"content": b"{not json", "headers": JSON_HEADERS}, 422, None),
            ("get", "/v1/tracks/no-such-track/similar", {}, 404, "unknown_track"),
            ("post", "/v1/users/x/seed", {"json": {}}, 422, "empty_seed"),
            ("post", "/v1/users/x/seed", {"json": {"track_ids": ["nope"]}}, 422, "nothing_known"),
        ]
        for method, path, kwargs, status, code in cases:
            response = getattr(api, method)(path, **kwargs)
            assert response.status_code == status, (path, kwargs, response.text)
            error = response.json()["error"]
            assert error["message"], response.text
            if code:
                assert error["code"] == code
        mood_error = api.get("/v1/users/x/recommendations", params={"mood": "grumpy"}).json()["error"]
        assert "chill" in mood_error["details"][0]["message"]


JSON_HEADERS = {"content-type": "application/json"}
READER = "reader-key-0000001"
WRITER = "writer-key-0000002"


def test_new_endpoints_need_the_right_scope(env: Env, flow) -> None:
    keys = (f'[{{"name": "recs", "key": "sha256:{hashlib.sha256(READER.encode()).hexdigest()}", '
            f'"scopes": ["read"]}}, {{"name": "player", "key": "{WRITER}", "scopes": ["write"]}}]')
    with TestClient(create_app(serving_config(env.settings.with_(api_keys=keys)))) as api:
        _loaded(env, api)
        track_id = ROCK[0].track_id
        for method, path, kwargs in [
            ("post", "/v1/users/x/rank", {"json": {"track_ids": [track_id]}}),
            ("get", f"/v1/tracks/{track_id}/similar", {}),
            ("post", "/v1/users/x/seed", {"json": {"track_ids": [track_id]}}),
        ]:
            anonymous = getattr(api, method)(path, **kwargs)
            assert anonymous.status_code == 401, path
            assert anonymous.json()["error"]["code"] == "unauthenticated"
        headers_read = {"Authorization": f"Bearer {READER}"}
        headers_write = {"Authorization": f"Bearer {WRITER}"}
        ranked = api.post("/v1/users/x/rank", json={"track_ids": [track_id]}, headers=headers_read)
        assert ranked.status_code == 200
        assert api.get(f"/v1/tracks/{track_id}/similar", headers=headers_read).status_code == 200
        forbidden = api.post("/v1/users/x/seed", json={"track_ids": [track_id]}, headers=headers_read)
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
        assert api.post("/v1/users/x/rank", json={"track_ids": [track_id]},
                        headers=headers_write).status_code == 403
        assert api.post("/v1/users/x/seed", json={"track_ids": [track_id]},
                        headers=headers_write).status_code == 200


def test_artists_that_listeners_like_you_enjoy_come_in_with_their_reason(env: Env, flow) -> None:
    """The artist memory end to end: listeners who like artist X also like Y; a new fan of X gets
    Y's tracks, "fans of X play it too", though Y sounds nothing like X."""
    by_artist: dict[str, list] = {}
    for t in CATALOG:
        by_artist.setdefault(t.artist, []).append(t)
    rock = next(a for a, ts in by_artist.items() if ts[0].genres[0] == "rock" and len(ts) >= 2)
    edm = next(a for a, ts in by_artist.items() if ts[0].genres[0] == "edm" and len(ts) >= 2)
    with env.api() as api:
        _loaded(env, api)
        for i in range(6):  # six listeners like both artists
            _listen(api, env, f"fan-{i}", [by_artist[rock][0], by_artist[edm][0]], kind="like")
        _listen(api, env, "newcomer", [by_artist[rock][1]], kind="like")
        # Six histories of two artists: six pairs of the second artist of a history.
        together = 6 * pair_weight(2)  # integer units (`schemas.values.ARTIST_COUNT_UNITS`)
        wait_for(lambda: env.redis.zscore(env.keys.artist_neighbours(rock), edm) == together, 60,
                 "the artist memory")
        env.wait_for_version("newcomer", 1)
        recs = api.get("/v1/users/newcomer/recommendations", params={"k": 20}).json()
        found = [item for item in recs["items"] if item["track_id"] in {t.track_id for t in by_artist[edm]}]
        assert found, [(i["track_id"], i["reasons"]) for i in recs["items"]]
        assert "similar_artists" in found[0]["sources"]
        assert f"fans of {rock} play it too" in found[0]["reasons"]
