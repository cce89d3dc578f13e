"""An A/B experiment on the real stack: two ranking variants, simulated listeners who prefer one
(they skip what is far from their taste), their plays sent back with each answer's request id
through the Python client, the flow counting outcomes per variant, and the report naming the
better variant in `GET /v1/experiments`, on `/metrics` and in every answer."""

from __future__ import annotations

import json

import httpx
import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from encore.catalog_loader import load_catalog
from encore.simulate import ListenerSimulation
from ranking.experiments import assign, parse_experiments
from tests.integration.conftest import Env, wait_for
from tests.ops_support import scrape, start_api, start_flow

pytestmark = pytest.mark.integration

POPULAR_ONLY = {"taste": 0.0, "genre": 0.0, "artist": 0.0, "session": 0.0, "session_genre": 0.0,
                "engagement": 0.0, "similar_artists": 0.0, "co_listening": 0.0, "quality": 0.0,
                "popularity": 3.0, "sources": ["popular", "trending"], "quotas": {"popular": 200},
                "diversity_default": 0.0}
EXPERIMENTS = json.dumps([{"name": "ranker", "variants": [
    {"name": "control", "share": 0.5},
    {"name": "popular", "share": 0.5, "overrides": POPULAR_ONLY},
]}])


def test_two_variants_simulated_listeners_prefer_one_and_the_report_names_it(env: Env) -> None:
    settings = env.settings.with_(experiments_json=EXPERIMENTS)
    log_dir = env.services.workdir / "logs"
    flow = start_flow(settings, log_dir)
    api, url = start_api(settings, log_dir)
    try:
        load_catalog(env.services.bootstrap, settings.namespace, DEFAULT_SAMPLE)
        answers = f"{url}/v1/users/x/recommendations"
        wait_for(lambda: httpx.get(answers, timeout=5).status_code == 200, 60, "the API with its catalog")
        simulation = ListenerSimulation(read_spotify_csv(DEFAULT_SAMPLE), 40, seed=3,
                                        recommendation_share=0.7,
                                        refresh_after_s=0.5, refresh_probability=0.5)
        ran = simulation.run(url, rate=150, duration_s=20)
        assert ran.failed == 0 and ran.rejected == 0 and ran.sent > 1500, ran.summary()

        def applied() -> int:
            return int(env.redis.hget(env.keys.ops_counters, "events_applied") or 0)

        wait_for(lambda: applied() >= ran.sent, 60, "the flow to apply every event")

        def experiment() -> dict:
            return httpx.get(f"{url}/v1/experiments", timeout=10).json()["experiments"][0]

        # The outcome counts are written one step after the profiles: wait until they hold still.
        last: list[int] = []

        def settled() -> dict | None:
            body = experiment()
            plays = [v["plays"] for v in body["variants"]]
            done = plays == last and all(p > 0 for p in plays)
            last[:] = plays
            return body if done else None

        body = wait_for(settled, 30, "the outcome counts to settle")
        print("\nexperiment report:\n" + json.dumps(body, indent=1))
        control, popular = body["variants"]
        assert control["name"] == "control" and popular["name"] == "popular"
        assert control["plays"] > 100 and popular["plays"] > 100
        for v in (control, popular):
            assert v["counts"]["complete"] + v["counts"]["skip"] == v["plays"]  # the simulator sends no plays
            low, high = v["rates"]["complete"]["ci95"]
            assert low <= v["rates"]["complete"]["rate"] <= high
        assert control["rates"]["complete"]["rate"] > popular["rates"]["complete"]["rate"]
        assert control["rates"]["early_skip"]["rate"] < popular["rates"]["early_skip"]["rate"]
        verdict = body["verdict"]
        assert verdict["winner"] == "control" and verdict["significant"] and verdict["p_value"] < 0.01
        assert verdict["summary"].startswith("control is better")

        # Every answer says its variant, and its request id carries it; the assignment is stable.
        (configured,) = parse_experiments(EXPERIMENTS)
        for user in ("sim-user-0", "sim-user-1", "sim-user-2", "someone-new"):
            answer = httpx.get(f"{url}/v1/users/{user}/recommendations", timeout=10).json()
            expected = assign([configured], user)[0][1].name
            assert answer["variant"] == expected and answer["experiments"] == {"ranker": expected}
            assert answer["request_id"].endswith(f"~ranker={expected}")
        samples = scrape(httpx.get(f"{url}/metrics", timeout=10).text)
        by_variant = {(s["variant"], s["outcome"]): v for s, v in samples["encore_experiment_outcomes_total"]}
        assert by_variant[("control", "complete")] == control["counts"]["complete"]
        assert by_variant[("popular", "early_skip")] == popular["counts"]["early_skip"]
        rates = {(s["variant"], s["outcome"]): v for s, v in samples["encore_experiment_rate"]}
        assert rates[("control", "complete")] > rates[("popular", "complete")]
        assert {s["variant"] for s, _ in samples["encore_experiment_answers_total"]} == {"control", "popular"}
    finally:
        api.stop()
        flow.stop()
