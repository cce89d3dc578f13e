"""Schemathesis against the real API's own OpenAPI spec: whatever it sends, no server error.

The API runs as production runs it (`encore serve`, a uvicorn process) over a real broker, a real
Redis and a running flow with a loaded catalog.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from encore.catalog_csv import DEFAULT_SAMPLE
from encore.catalog_loader import load_catalog
from encore.local import ManagedProcess, free_port
from tests.integration.conftest import Services, wait_for
from tests.integration.test_delivery import _module_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live_api(services: Services) -> Iterator[str]:
    env = _module_env(services)
    port = free_port()
    flow = env.start_flow()
    api = ManagedProcess("api", [sys.executable, "-m", "encore.cli", "serve", "--port", str(port)],
                         services.workdir / "logs" / f"api-{env.settings.namespace}.log",
                         env=env.settings.to_env()).start()
    url = f"http://127.0.0.1:{port}"
    try:
        load_catalog(services.bootstrap, env.settings.namespace, DEFAULT_SAMPLE)
        wait_for(lambda: _status(f"{url}/v1/users/x/recommendations") == 200, 60, "the API with a catalog")
        yield url
    finally:
        api.stop()
        flow.stop()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_the_api_never_answers_with_a_server_error(live_api: str) -> None:
    # Each operation of the spec, driven by schemathesis' generated cases through hypothesis.
    # (schemathesis' own pytest plugin does not run under pytest 9, hence the explicit loop.)
    schema = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert paths >= {"/v1/events", "/v1/tracks", "/v1/users/{user_id}/recommendations",
                     "/v1/users/{user_id}/profile", "/v1/users/{user_id}/rank", "/v1/users/{user_id}/seed",
                     "/v1/tracks/{track_id}/similar", "/healthz"}
    calls: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):  # valid data, then invalid
            _fuzz(operation, mode, calls)
    print("schemathesis calls per operation:", calls)
    assert all(calls.get(f"{op.method.upper()} {op.path} (positive)", 0) > 0 for op in operations)
    assert calls["POST /v1/events (negative)"] > 0 and calls["GET /v1/users/{user_id}/profile (negative)"] > 0


EXAMPLES = 60


def _fuzz(operation, mode: GenerationMode, calls: dict[str, int]) -> None:
    label = f"{operation.method.upper()} {operation.path} ({mode.value})"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def no_server_error(case) -> None:
        response = case.call(timeout=15)
        calls[label] = calls.get(label, 0) + 1
        assert response.status_code < 500, (
            f"{label} -> {response.status_code}: {response.text[:300]}\n{case.as_curl_command()}"
        )

    try:
        no_server_error()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid variant to generate.
        if mode is GenerationMode.POSITIVE or operation.body or operation.query or operation.path_parameters:
            raise
