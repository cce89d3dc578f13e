"""Trust on the real broker and Redis: listener tokens reach only their own listener, a forgotten
listener stays forgotten across a crash, and events ahead of the catalog are learned when their track
arrives, exactly as if the catalog had known it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from encore.serve_main import serving_config
from flows.progress import Position
from flows.user_state import UserProfileLogic
from online_models.taste import TasteLearner
from schemas.events import Event
from schemas.profile_codec import encode_profile
from schemas.tracks import Track
from serving.app import create_app
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration

SECRET = "integration-listener-secret-32-bytes!!"
ADMIN = "admin-secret-00003"
READER = "reader-secret-0002"
KEYS = json.dumps([{"name": "ops", "key": ADMIN, "scopes": ["admin", "read", "write"]},
                   {"name": "recs", "key": READER, "scopes": ["read"]}])


def token(sub: str, ttl_s: int = 600, **claims: Any) -> dict[str, str]:
    body = {"sub": sub, "exp": int(time.time()) + ttl_s, "iss": "https://auth.example", "aud": "encore",
            **claims}
    return {"Authorization": f"Bearer {jwt.encode(body, SECRET, algorithm='HS256')}"}


def _api(env: Env, **changes: Any) -> TestClient:
    settings = env.settings.with_(api_keys=KEYS, jwt_secret=SECRET, jwt_issuer="https://auth.example",
                                  jwt_audience="encore", **changes)
    return TestClient(create_app(serving_config(settings)))


def _catalog(env: Env, *tracks: dict[str, Any]) -> None:
    for t in tracks:
        env.produce(env.topics.tracks, t, key=t["track_id"])
    env.flush()
    wait_for(lambda: all(env.redis.hexists(env.keys.catalog_tracks, t["track_id"]) for t in tracks), 30,
             "the catalog")


def _counter(env: Env, name: str) -> int:
    return int(env.redis.hget(env.keys.ops_counters, name) or 0)


# -- listener tokens ----------------------------------------------------------------------------

def test_a_listener_token_posts_and_reads_only_its_own_listener(env: Env, flow) -> None:
    _catalog(env, track("rock-1", "rock", 0.9), track("jazz-1", "jazz", 0.1))
    ana, admin = token("ana"), {"X-API-Key": ADMIN}
    with _api(env) as api:
        own = [event("a1", "ana", "rock-1", "like", ts=T0 + 1),
               event("a2", "ana", "jazz-1", "skip", ts=T0 + 2)]
        assert api.post("/v1/events", json=own, headers=ana).status_code == 202
        env.wait_for_version("ana", 2)

        # One foreign event refuses the whole batch, naming it; nothing of it is sent.
        mixed = [event("a3", "ana", "rock-1", "complete", ts=T0 + 3), event("b1", "bo", "rock-1", "like"),
                 event("a4", "ana", "rock-1", "play", ts=T0 + 4), event("b2", "bo", "jazz-1", "like")]
        refused = api.post("/v1/events", json=mixed, headers=ana)
        assert refused.status_code == 403
        body = refused.json()["error"]
        assert body["code"] == "forbidden" and "2 of 4 events" in body["message"]
        assert [d["index"] for d in body["details"]] == [1, 3]
        # The service key still writes for anyone; ana's refused events never reached the flow.
        assert api.post("/v1/events", json=event("b3", "bo", "rock-1", "like", ts=T0 + 5),
                        headers=admin).status_code == 202
        env.wait_for_version("bo", 1)
        assert env.profile("ana").version == 2

        for path in ("/v1/users/ana/recommendations", "/v1/users/ana/profile", "/v1/users/ana/export"):
            assert api.get(path, headers=ana).status_code == 200, path
        assert api.post("/v1/users/ana/rank", json={"track_ids": ["rock-1"]}, headers=ana).status_code == 200
        assert api.get("/v1/tracks/rock-1/similar", headers=ana).status_code == 200
        for path in ("/v1/users/bo/recommendations", "/v1/users/bo/profile", "/v1/users/bo/export"):
            other = api.get(path, headers=ana)
            assert other.status_code == 403 and "only its own" in other.json()["error"]["message"], path
        assert api.post("/v1/users/bo/rank", json={"track_ids": ["rock-1"]}, headers=ana).status_code == 403
        assert api.post("/v1/users/bo/seed", json={"track_ids": ["rock-1"]}, headers=ana).status_code == 403
        assert api.delete("/v1/users/bo", headers=ana).status_code == 403
        # Service routes stay service routes.
        assert api.post("/v1/tracks", json=track("x-1", "pop", 0.5), headers=ana).status_code == 403
        assert api.get("/v1/ops/summary", headers=ana).status_code == 403
        # A read key keeps its scope: recommendations yes, export (admin) no.
        assert api.get("/v1/users/bo/recommendations", headers={"X-API-Key": READER}).status_code == 200
        assert api.get("/v1/users/bo/export", headers={"X-API-Key": READER}).status_code == 403

        for bad, why in ((token("ana", ttl_s=-120), "expired"), (token("ana", aud="other"), "audience"),
                         (token("ana", iss="https://evil.example"), "issuer")):
            answer = api.get("/v1/users/ana/profile", headers=bad)
            assert answer.status_code == 401 and why in answer.json()["error"]["message"]
            assert SECRET not in answer.text
        assert api.get("/v1/users/ana/profile").status_code == 401
        assert "x-encore-auth" not in api.get("/healthz").headers, "not demo mode"


def test_listener_tokens_from_a_jwks_file_and_their_own_rate_limit(env: Env, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.get_algorithm_by_name("RS256").to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]}))
    claims = {"sub": "cy", "exp": int(time.time()) + 600}
    cy = {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})}
    hs = {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}
    settings = env.settings.with_(jwt_jwks=str(path), jwt_rate_per_s=1.0)
    with TestClient(create_app(serving_config(settings))) as api:
        # Let in (no profile yet: 404, not 401 or 403).
        assert api.get("/v1/users/cy/profile", headers=cy).status_code == 404
        assert api.get("/v1/users/cy/profile", headers=hs).status_code == 401, "no secret here"
        codes = [api.get("/v1/users/cy/profile", headers=cy).status_code for _ in range(3)]
        assert codes[-1] == 429, codes  # a burst of 2 at 1/s


# -- forgetting a listener ----------------------------------------------------------------------

def test_a_forgotten_listener_stays_forgotten_across_a_crash_and_later_events_start_afresh(
    env: Env,
) -> None:
    # Long snapshots: the kill below replays the listener's events and the tombstone from the start.
    env.settings = env.settings.with_(snapshot_interval_s=60)
    flow = env.start_flow()
    try:
        _catalog(env, track("rock-1", "rock", 0.9), track("jazz-1", "jazz", 0.1))
        fay = token("fay")
        with _api(env) as api:
            history = [event(f"f{i}", "fay", "rock-1" if i % 2 else "jazz-1", "complete", ts=T0 + i * 1000)
                       for i in range(1, 21)]
            assert api.post("/v1/events", json=history, headers=fay).status_code == 202
            seeded = api.post("/v1/users/fay/seed", json={"track_ids": ["rock-1"]}, headers=fay)
            assert seeded.status_code == 200
            env.wait_for_version("fay", 20)

            exported = api.get("/v1/users/fay/export", headers=fay).json()
            assert exported["profile"]["profile_version"] == 20
            assert exported["profile"]["counts"]["complete"] == 20
            assert len(exported["profile"]["engagement_model"]["weights"]) == 78
            assert exported["seed"]["track_ids"] == ["rock-1"] and exported["not_included"]

            forgotten = api.delete("/v1/users/fay", headers=fay)
            assert forgotten.status_code == 202 and forgotten.json()["status"] == "accepted"
            # The keys go at once; the flow then drops its state when it reaches the tombstone.
            assert env.redis.get(env.keys.profile("fay")) is None
            assert env.redis.get(env.keys.user_seed("fay")) is None
            wait_for(lambda: _counter(env, "users_forgotten") == 1, 30, "the flow to apply the tombstone")
            assert api.get("/v1/users/fay/profile", headers=fay).status_code == 404
            empty = api.get("/v1/users/fay/export", headers=fay).json()
            assert empty["profile"] is None and empty["seed"] is None

            flow.kill()  # SIGKILL before any snapshot: the restart replays events and tombstone
            flow = env.start_flow()
            # A player retrying an old batch: from before the forget, so it does not revive fay.
            assert api.post("/v1/events", json=history[-3:], headers=fay).status_code == 202
            later = event("f-new", "fay", "rock-1", "like", ts=T0 + 60_000)
            assert api.post("/v1/events", json=later, headers=fay).status_code == 202
            fresh = env.wait_for_version("fay", 1, timeout_s=60)
            assert fresh.version == 1 and fresh.counts["like"] == 1 and fresh.counts["complete"] == 0
            assert [r.track_id for r in fresh.recent] == ["rock-1"]
            assert _counter(env, "users_forgotten") >= 2, "the replay applied the tombstone again"
            assert _counter(env, "events_forgotten") >= 3
            assert env.redis.get(env.keys.user_seed("fay")) is None
            # Only an admin key or fay's own token may forget fay.
            assert api.delete("/v1/users/fay", headers={"X-API-Key": READER}).status_code == 403
            assert api.delete("/v1/users/fay", headers={"X-API-Key": ADMIN}).status_code == 202
    finally:
        flow.stop()


# -- events ahead of the catalog ----------------------------------------------------------------

def _reference(events: list[dict[str, Any]], tracks: list[dict[str, Any]]) -> bytes:
    """The profile a flow that knew every track from the start would write."""
    catalog = {t["track_id"]: Track.model_validate(t) for t in tracks}
    logic = UserProfileLogic(TasteLearner(), None, tracks=lambda ids: {i: catalog.get(i) for i in ids})
    items = [(Event.model_validate(e), catalog.get(e["track_id"]), Position("e", 0, i, T0))
             for i, e in enumerate(events)]
    logic.on_batch(items)
    logic.state.sync()
    return encode_profile(logic.state.profile)


def test_events_ahead_of_the_catalog_are_learned_when_their_track_arrives_also_across_a_crash(
    env: Env,
) -> None:
    known, new_rock = track("old-1", "pop", 0.5), track("new-1", "rock", 0.95)
    new_jazz = track("new-2", "jazz", 0.1)
    events = [event("h1", "hal", "new-1", "like", ts=T0 + 1_000),
              event("h2", "hal", "old-1", "complete", ts=T0 + 2_000),
              event("h3", "hal", "new-2", "skip", ts=T0 + 3_000, position_ms=5_000, duration_ms=200_000),
              event("h4", "hal", "old-1", "like", ts=T0 + 4_000)]
    env.settings = env.settings.with_(snapshot_interval_s=1)
    flow = env.start_flow()
    try:
        _catalog(env, known)
        for e in events:
            env.produce(env.topics.events, e, key="hal")
        env.flush()
        wait_for(lambda: _counter(env, "events_held") == 2, 30, "two events held")
        wait_for(lambda: _counter(env, "events_applied") == 2, 30, "the known ones applied")
        waiting = env.profile("hal")
        assert waiting.version == 2 and "rock" not in waiting.genres and "jazz" not in waiting.genres
        time.sleep(2.5)  # a snapshot holds the held events
        flow.kill()
        flow = env.start_flow()
        _catalog(env, new_rock, new_jazz)
        learned = env.wait_for_version("hal", 4, timeout_s=60)
        wait_for(lambda: _counter(env, "events_released") >= 2, 30, "the release counted")
        time.sleep(1.5)
        assert env.profile("hal").version == 4, "each held event applied once"
        assert learned.genres["rock"] > 0 > learned.genres["jazz"]
        # Exactly the profile of a flow that had the tracks from the start.
        assert env.redis.get(env.keys.profile("hal")) == _reference(events, [known, new_rock, new_jazz])
        # The released tracks' genres reach their statistics (per-genre trending).
        wait_for(lambda: env.redis.zscore(env.keys.trending_in_genre("rock"), "new-1") is not None, 30,
                 "trending in rock")
    finally:
        flow.stop()
