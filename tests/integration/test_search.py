"""`GET /v1/search` on the real stack: tracks posted through the API, the flow writing the catalog and
the listener's profile to Redis, the API's search index rebuilt when the catalog changes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration


def catalog() -> list[dict]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(160):
        genre = ("rock", "pop", "folk", "edm")[i % 4]
        energy = float(rng.uniform(0.05, 0.98))
        out.append(track(f"s{i}", genre, energy, artist=f"Band {i % 40}", release_year=1965 + (i * 7) % 58,
                         valence=float(rng.uniform(0.05, 0.95)), popularity=float(rng.uniform(10, 90)),
                         acousticness=float(np.clip(1 - energy + rng.normal(0, 0.1), 0, 1))))
    out.append(track("imagine", "rock", 0.3, title="Imagine", artist="John Lennon", release_year=1971))
    return out


def test_search_understands_words_blends_a_listeners_taste_and_follows_the_catalog(env: Env, flow) -> None:
    tracks = catalog()
    by_id = {t["track_id"]: t for t in tracks}
    with env.api() as api:
        assert api.post("/v1/tracks", json=tracks).status_code == 202
        wait_for(lambda: len(api.app.state.catalog.index) == len(tracks), 30, "the API's catalog")

        body = api.get("/v1/search", params={"q": "upbeat 90s rock", "k": 5}).json()
        assert body["understood"] == ["upbeat", "90s", "rock"]
        assert body["interpretation"]["genres"] == ["rock"]
        assert body["interpretation"]["era"] == {"from": 1990, "to": 1999}
        assert body["interpretation"]["semantic"] is True and body["personalised"] is False
        assert body["request_id"] and len(body["items"]) >= 1
        for item in body["items"]:
            assert "rock" in item["genres"] and 1990 <= item["release_year"] <= 1999
            assert "rock" in item["reasons"] and set(item["matched"]) >= {"genre", "era"}

        korean = api.get("/v1/search", params={"q": "잔잔한 노래"}).json()
        assert korean["understood"] == ["잔잔한"] and korean["interpretation"]["moods"] == ["chill"]
        assert np.mean([by_id[i["track_id"]]["energy"] for i in korean["items"]]) < 0.4

        lookup = api.get("/v1/search", params={"q": "imagine by john lennon", "k": 3}).json()
        assert lookup["items"][0]["track_id"] == "imagine"

        for q, code in (("", "empty_query"), ("   ", "empty_query"), ("qwzx vbnm", "query_not_understood")):
            refused = api.get("/v1/search", params={"q": q})
            assert refused.status_code == 422 and refused.json()["error"]["code"] == code, refused.text
        assert api.get("/v1/search").status_code == 422  # q is required
        assert api.get("/v1/search", params={"q": "rock", "k": 0}).status_code == 422

        # A listener who loves acoustic folk asks for "workout": energetic tracks nearest their taste;
        # what they just liked (the cool-down) and what they disliked stay out.
        anonymous = api.get("/v1/search", params={"q": "workout", "k": 10}).json()["items"]
        folk = [t["track_id"] for t in tracks if t["genres"] == ["folk"] and t["acousticness"] > 0.6][:10]
        disliked = anonymous[0]["track_id"]
        events = [event(f"f{i}", "fan", t, "like", ts=T0 + i * 1000) for i, t in enumerate(folk)]
        events.append(event("f-x", "fan", disliked, "dislike", ts=T0 + 60_000))
        assert api.post("/v1/events", json=events).status_code == 202
        env.wait_for_version("fan", len(events))
        personal = api.get("/v1/search", params={"q": "workout", "k": 10, "user_id": "fan"}).json()
        assert personal["personalised"] is True and personal["profile_version"] == len(events)
        ids = [i["track_id"] for i in personal["items"]]
        assert disliked not in ids and not set(ids) & set(folk)

        def mean(items: list[dict], feature: str) -> float:
            return float(np.mean([by_id[i["track_id"]][feature] for i in items]))

        assert mean(personal["items"], "energy") > 0.6
        assert mean(personal["items"], "acousticness") > mean(anonymous, "acousticness")
        mine = [r for i in personal["items"] for r in i["reasons"][1:]]
        assert any(r.startswith(("you like folk", "matches your", "close to what you")) for r in mine), mine

        # The catalog changes: the search index follows (rebuilt in the background, not per request).
        api.post("/v1/tracks", json=[track("zz", "pop", 0.5, title="Zebra Crossing Serenade")])

        def new_track() -> list[dict]:
            answer = api.get("/v1/search", params={"q": "zebra crossing serenade"}).json()
            return [i for i in answer.get("items", []) if i["track_id"] == "zz"]

        found = wait_for(new_track, 30, "the new track in search")
        assert found[0]["reasons"][0].startswith("the title you asked for")
