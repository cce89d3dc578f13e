"""End to end on the real components: what a listener does changes their very next recommendations."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from encore.catalog_loader import load_catalog
from encore.local import free_port
from tests.integration.conftest import Env, event, wait_for

pytestmark = pytest.mark.integration


def test_likes_and_skips_shape_the_next_recommendations(env: Env, flow) -> None:
    catalog = read_spotify_csv(DEFAULT_SAMPLE)
    load_catalog(env.services.bootstrap, env.settings.namespace, DEFAULT_SAMPLE)
    rock = [t for t in catalog if t.genres[0] == "rock"][:8]
    rap = [t for t in catalog if t.genres[0] == "rap"][:6]

    events = []
    ts = 1_795_000_000_000
    for i, liked in enumerate(rock):
        ts += 200_000
        events.append(event(f"c{i}", "fan", liked.track_id, "complete", ts=ts,
                            position_ms=200_000, duration_ms=200_000))
        if i % 2 == 0:
            events.append(event(f"l{i}", "fan", liked.track_id, "like", ts=ts + 1))
    for i, skipped in enumerate(rap):
        ts += 20_000
        events.append(event(f"s{i}", "fan", skipped.track_id, "skip", ts=ts,
                            position_ms=8_000, duration_ms=210_000))

    with env.api() as api:
        wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == len(catalog), 30, "the catalog")
        wait_for(lambda: len(api.app.state.catalog.index) == len(catalog), 30, "the API's catalog")
        assert api.post("/v1/events", json=events).status_code == 202

        env.wait_for_version("fan", len(events))
        profile = api.get("/v1/users/fan/profile").json()
        recs = api.get("/v1/users/fan/recommendations", params={"k": 10}).json()

    # The profile read right after processing shows every applied event.
    assert profile["profile_version"] == len(events) == recs["profile_version"]
    assert profile["top_genres"][0]["name"] == "rock"
    assert profile["skip_rate"] > 0.3

    genres = [item["genres"] for item in recs["items"]]
    rock_share = sum("rock" in g for g in genres) / len(genres)
    rap_share = sum("rap" in g for g in genres) / len(genres)
    assert rock_share >= 0.7, f"recommendations should be dominated by rock: {genres}"
    assert rap_share <= 0.1, f"skipped rap should be pushed out: {genres}"
    played = {e["track_id"] for e in events}
    assert not played & {item["track_id"] for item in recs["items"]}, "just-played tracks are excluded"


def test_encore_up_runs_the_whole_stack_and_stops_it_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env |= {"ENCORE_DATA_DIR": str(tmp_path / "data"), "ENCORE_PARTITIONS": "2",
            "ENCORE_CATALOG_REFRESH_S": "0.2"}
    up = subprocess.Popen([sys.executable, "-m", "encore.cli", "up", "--port", str(port)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(api) or up.poll() is not None, 60, "encore up to serve")
        assert up.poll() is None, up.stdout.read() if up.stdout else ""
        sample = read_spotify_csv(DEFAULT_SAMPLE, limit=30)
        tracks = [t.model_dump(mode="json", exclude_none=True) for t in sample]
        assert httpx.post(f"{api}/v1/tracks", json=tracks).status_code == 202
        wait_for(lambda: httpx.get(f"{api}/v1/users/zed/recommendations").status_code == 200, 30, "catalog")
        posted = httpx.post(f"{api}/v1/events", json=event("z1", "zed", tracks[0]["track_id"], "like"))
        assert posted.status_code == 202
        wait_for(lambda: httpx.get(f"{api}/v1/users/zed/recommendations").json()["profile_version"] == 1,
                 30, "the like to reach zed's recommendations")
    finally:
        up.send_signal(signal.SIGTERM)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert f"API       {api}" in output
    for name in ("api", "flow", "redis", "kafka (tansu)"):
        assert re.search(rf"{re.escape(name)} stopped", output), output
    kafka = re.search(r"Kafka\s+127\.0\.0\.1:(\d+)", output)
    redis_port = re.search(r"redis://127\.0\.0\.1:(\d+)", output)
    assert kafka and redis_port
    time.sleep(0.2)
    for stopped_port in (port, int(kafka.group(1)), int(redis_port.group(1))):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{stopped_port}/", timeout=1)


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_encore_up_demo_loads_the_catalog_and_simulated_listeners_get_acknowledged(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env |= {"ENCORE_DATA_DIR": str(tmp_path / "data"), "ENCORE_CATALOG_REFRESH_S": "0.2"}
    done = subprocess.run(
        [sys.executable, "-m", "encore.cli", "up", "--demo", "--port", str(port), "--users", "20",
         "--rate", "100", "--duration", "12"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "demo: loaded 600 tracks" in output
    summary = re.search(r"demo: (\d+) events in .*acknowledged (\d+), rejected (\d+), failed (\d+)", output)
    assert summary, output
    events, acknowledged, rejected, failed = map(int, summary.groups())
    assert events > 200 and acknowledged == events and rejected == failed == 0
    assert re.search(r"demo: sim-user-0 v\d+: ", output), "the demo shows a listener's recommendations"
