"""The /ops page in a real headless Chromium against a running stack (broker, Redis, flow, API with
API keys): the page asks for an admin key, then the numbers appear, they move while events flow,
the charts draw, and nothing is fetched from outside the API (the page works offline)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from tests.browser.cdp import Browser, find_chromium
from tests.integration.conftest import Env, event, track, wait_for
from tests.ops_support import start_api, start_flow

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ADMIN_KEY = "ops-page-admin-key-0123456789"
KEYS = (f'[{{"name": "ops", "key": "{ADMIN_KEY}", "scopes": ["admin"]}},'
        ' {"name": "player", "key": "player-key-0123456789", "scopes": ["write"]}]')

READ_PAGE = """(() => {
  if (!document.getElementById("events-processed")) return null;  // still loading
  const value = (id) => document.getElementById(id).dataset.value;
  const count = (selector) => document.querySelectorAll(selector).length;
  return {
    state: document.body.dataset.state,
    updates: Number(document.body.dataset.updates),
    processed: value("events-processed") === "" ? -1 : Number(value("events-processed")),
    processedText: document.getElementById("events-processed").textContent,
    lag: value("lag-messages"),
    lagSeconds: value("lag-seconds"),
    rate: value("events-rate") === "" ? -1 : Number(value("events-rate")),
    p50: value("freshness-p50"),
    badges: Object.fromEntries([...document.querySelectorAll(".badge")].map((b) => [b.id, b.dataset.ok])),
    lagLines: count("#chart-lag path.series"),
    throughputLines: count("#chart-throughput path.series"),
    freshnessLines: count("#chart-freshness path.series"),
    partitionRows: count("#partition-rows tr[data-key]"),
    banner: document.getElementById("banner").hidden ? null : document.getElementById("banner").textContent,
  };
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed: `make test` installs Debian's chromium package "
                    "(scripts/install-chromium.sh; needs root and apt-get)")
    return binary


class EventStream:
    """Listening events into Kafka at a steady pace from a background thread, until stopped."""

    def __init__(self, env: Env, per_second: float = 40.0) -> None:
        self._producer = Producer({"bootstrap.servers": env.services.bootstrap, "linger.ms": 5})
        self._topic = env.topics.events
        self._pause = 1 / per_second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-stream", daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(self._pause):
            user = f"listener{i % 9}"
            kind = ("play", "like", "complete", "skip")[i % 4]
            self._producer.produce(self._topic, key=user.encode(),
                                   value=orjson.dumps(event(f"s{i}", user, f"t{i % 5}", kind)))
            self._producer.poll(0)
            i += 1
        self._producer.flush(10)

    def __enter__(self) -> EventStream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)


def test_the_ops_page_shows_live_numbers_that_move(env: Env, chromium: str, tmp_path: Path) -> None:
    log_dir = env.services.workdir / "logs"
    for i in range(5):
        env.produce(env.topics.tracks, track(f"t{i}", ("pop", "rock")[i % 2], 0.3 + i / 10), key=f"t{i}")
    env.flush()
    flow = start_flow(env.settings, log_dir)
    api, url = start_api(env.settings.with_(api_keys=KEYS), log_dir)
    browser: Browser | None = None
    try:
        wait_for(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, 60,
                 "the stack to be ready (catalog loaded, flow beating)")
        with EventStream(env):
            browser = Browser(chromium)
            browser.navigate(f"{url}/ops?interval=0.5")
            wait_for(lambda: browser.evaluate("document.body?.dataset.state") == "auth"
                     and browser.evaluate("document.getElementById('auth')?.hidden") is False, 20,
                     "the page to ask for an admin key")
            assert browser.evaluate("document.getElementById('events-processed').textContent") == "–"
            browser.evaluate(f"""(() => {{
              document.getElementById("auth-key").value = "{ADMIN_KEY}";
              document.getElementById("auth").requestSubmit();
            }})()""")
            first: dict[str, Any] = wait_for(
                lambda: (s := browser.evaluate(READ_PAGE)) and s["updates"] >= 2 and s["processed"] > 0 and s,
                30, "the page to show events processed")
            later: dict[str, Any] = wait_for(
                lambda: (s := browser.evaluate(READ_PAGE)) and s["updates"] >= first["updates"] + 6
                and s["processed"] > first["processed"] and s["rate"] > 0 and s,
                30, "the numbers on the page to move")
            shot = browser.screenshot(tmp_path / "ops.png")
        print(f"\n/ops screenshot: {shot}")

        assert later["state"] == "live" and later["banner"] is None
        assert later["processedText"].replace(",", "").isdigit()
        assert int(later["lag"]) >= 0 and float(later["lagSeconds"]) >= 0
        assert float(later["p50"]) > 0
        assert set(later["badges"].values()) == {"true"}, later["badges"]
        assert later["partitionRows"] == 4  # 2 partitions of events + 2 of tracks
        assert later["lagLines"] == 4 and later["throughputLines"] == 3 and later["freshnessLines"] >= 1
        assert browser.exceptions() == []
        outside = [u for u in browser.requested_urls() if not u.startswith((url, "data:"))]
        assert outside == [], f"the page fetched from outside the API: {outside}"
        png = shot.read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000
    finally:
        if browser is not None:
            browser.close()
        api.stop()
        flow.stop()
