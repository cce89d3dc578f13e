"""`encore serve --workers 2`: whichever worker answers `/metrics`, it counts every worker's requests."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from encore.local import ManagedProcess, free_port
from serving.metrics import MULTIPROCESS_DIR_ENV
from tests.integration.conftest import Env, wait_for

pytestmark = pytest.mark.integration

ROUTE = "/healthz"


def healthz_count(families) -> float:
    total = 0.0
    for family in families:
        for sample in family.samples:
            if (sample.name == "encore_http_request_duration_seconds_count"
                    and sample.labels.get("route") == ROUTE):
                total += sample.value
    return total


def scrape(base: str) -> tuple[float, set[str]]:
    """The /healthz request count and the pids of the live workers' catalog gauges."""
    families = list(text_string_to_metric_families(
        httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10).text))
    pids = {s.labels["pid"] for f in families for s in f.samples if s.name == "encore_catalog_generation"}
    return healthz_count(families), pids


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"encore" in Path(f"/proc/{c}/cmdline").read_bytes()
            or b"multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes()]


def environ_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def per_worker(directory: Path) -> dict[str, float]:
    """Each worker's own /healthz count, read from its file in the shared directory."""
    out = {}
    for path in directory.glob("histogram_*.db"):
        out[path.stem.split("_", 1)[1]] = healthz_count(MultiProcessCollector.merge([str(path)]))
    return out


def test_two_workers_report_one_sum_of_their_requests(env: Env) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = env.settings.with_(api_port=port, log_level="WARNING")
    log_path = env.services.workdir / "logs" / f"serve-{settings.namespace}.log"
    api = ManagedProcess("api", [sys.executable, "-m", "encore.cli", "serve", "--workers", "2",
                                 "--port", str(port)], log_path, env=settings.to_env()).start()
    try:
        def both_up() -> bool:
            try:
                return len(scrape(base)[1]) == 2
            except httpx.HTTPError:
                return False

        wait_for(both_up, 90, "two workers reporting")
        workers = workers_of(api.pid)
        directory = Path(environ_of(workers[0])[MULTIPROCESS_DIR_ENV])
        before, _ = scrape(base)
        sent = 0

        def call(_: int) -> int:
            return httpx.get(f"{base}{ROUTE}", headers={"Connection": "close"}, timeout=10).status_code

        # Concurrent fresh connections until both workers have answered some (the kernel hands a
        # connection to whichever worker accepts first).
        with ThreadPoolExecutor(16) as pool:
            deadline = time.monotonic() + 60
            while True:
                assert all(code == 200 for code in pool.map(call, range(64)))
                sent += 64
                counts = per_worker(directory)
                if sum(1 for c in counts.values() if c > 0) >= 2 or time.monotonic() > deadline:
                    break
        assert sum(1 for c in counts.values() if c > 0) >= 2, counts
        # Every scrape, whichever worker answers it, sees all of them once.
        for _ in range(6):
            total, pids = scrape(base)
            assert total - before == sent
            assert len(pids) == 2
        assert sum(counts.values()) == before + sent
    finally:
        api.stop()
    # `encore serve` removes the directory it made.
    assert not directory.exists()
