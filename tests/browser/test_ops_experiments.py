"""The /ops page's experiments panel in headless Chromium against a running stack: events that cite
two variants' request ids go through the API and the flow, and the panel shows each variant's
counts, rates and the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from schemas.values import encode_request_id
from tests.browser.cdp import Browser, find_chromium
from tests.integration.conftest import T0, Env, event, track, wait_for
from tests.ops_support import start_api, start_flow

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ADMIN = "ops-experiments-admin-key-0123"
KEYS = f'[{{"name": "ops", "key": "{ADMIN}", "scopes": ["admin", "read", "write"]}}]'
EXPERIMENTS = json.dumps([{"name": "ranker", "variants": [
    {"name": "control", "share": 0.5}, {"name": "popular", "share": 0.5, "overrides": {"popularity": 2.0}}]}])


def test_the_ops_page_shows_each_variants_outcomes_and_the_verdict(env: Env, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (scripts/install-chromium.sh)")
    settings = env.settings.with_(api_keys=KEYS, experiments_json=EXPERIMENTS)
    log_dir = env.services.workdir / "logs"
    flow = start_flow(settings, log_dir)
    api, url = start_api(settings, log_dir)
    headers = {"authorization": f"Bearer {ADMIN}"}
    browser: Browser | None = None
    try:
        tracks = [track(f"t{i}", "pop", 0.2 + i / 50) for i in range(30)]
        assert httpx.post(f"{url}/v1/tracks", json=tracks, headers=headers).status_code == 202
        events = []
        for i in range(120):  # control: mostly completed; popular: mostly skipped early
            variant = ("control", "popular")[i % 2]
            rid = encode_request_id(f"{i:06x}", [("ranker", variant)])
            good = (i % 10 < 8) if variant == "control" else (i % 10 < 3)
            early = {"position_ms": 4000, "duration_ms": 200_000}
            kind, extra = ("complete", {}) if good else ("skip", early)
            events.append(event(f"x{i}", f"u{i % 12}", f"t{i % 30}", kind, ts=T0 + i * 1000,
                                context={"request_id": rid}, **extra))
        assert httpx.post(f"{url}/v1/events", json=events, headers=headers).status_code == 202
        outcomes = env.keys.experiment_outcomes("ranker")
        wait_for(lambda: sum(int(v) for k, v in env.redis.hgetall(outcomes).items()
                             if k.endswith((b":complete", b":skip"))) == 120, 60, "the flow's counts")
        browser = Browser(chromium)
        browser.navigate(f"{url}/ops?interval=0.5")
        wait_for(lambda: browser.evaluate("document.body?.dataset.state") == "auth", 20, "the key prompt")
        browser.evaluate(f"""(() => {{ document.getElementById("auth-key").value = "{ADMIN}";
                                      document.getElementById("auth").requestSubmit(); }})()""")
        panel = wait_for(lambda: browser.evaluate("""(() => {
            const rows = [...document.querySelectorAll('#experiments tr[data-variant]')];
            if (document.getElementById('experiments-panel').hidden || rows.length < 2) return null;
            const verdict = document.querySelector('#experiments .verdict');
            return {rows: rows.map((r) => [...r.cells].map((c) => c.textContent)),
                    winner: verdict.dataset.winner, text: verdict.textContent};
        })()"""), 30, "the experiments panel")
        shot = browser.screenshot(tmp_path / "ops-experiments.png")
        print(f"\n/ops experiments panel: {panel}; screenshot {shot}")
        control, popular = panel["rows"]
        assert control[0] == "control" and control[2] == "60" and control[3] == "48"
        assert popular[0] == "popular" and popular[3] == "12" and popular[6] == "48"
        assert panel["winner"] == "control" and panel["text"].startswith("control is better")
        assert browser.exceptions() == []
    finally:
        if browser is not None:
            browser.close()
        api.stop()
        flow.stop()
