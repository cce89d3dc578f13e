"""Schemathesis against the real API's own OpenAPI spec: whatever it sends, no server error.

The API runs as production runs it (`encore serve`, a uvicorn process) over a real broker, a real
Redis and a running flow with a loaded catalog, with service keys and listener tokens configured:
every operation is fuzzed with a service key of every scope (the spec's `ServiceKey` scheme), and
every operation open to listeners also with a listener's JWT (`ListenerToken`) for the listener in
its path, so the generated requests get past authentication and reach the handlers.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import httpx
import jwt
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

SERVICE_KEY = "fuzz-service-key-0001"
JWT_SECRET = "fuzz-listener-secret-of-32-bytes!!"
LISTENER = "fuzz-listener"


@pytest.fixture(scope="module")
def live_api(services: Services) -> Iterator[str]:
    env = _module_env(services)
    env.settings = env.settings.with_(
        api_keys=json.dumps([{"name": "fuzz", "key": SERVICE_KEY, "scopes": ["admin", "read", "write"],
                              "rate_per_s": 10_000, "burst": 10_000}]),
        jwt_secret=JWT_SECRET, jwt_rate_per_s=10_000.0)
    port = free_port()
    flow = env.start_flow()
    api = ManagedProcess("api", [sys.executable, "-m", "encore.cli", "serve", "--port", str(port)],
                         services.workdir / "logs" / f"api-{env.settings.namespace}.log",
                         env=env.settings.to_env()).start()
    url = f"http://127.0.0.1:{port}"
    try:
        load_catalog(services.bootstrap, env.settings.namespace, DEFAULT_SAMPLE)
        wait_for(lambda: _status(f"{url}/v1/users/x/recommendations") == 200, 60, "the API with a catalog")
        assert httpx.get(f"{url}/v1/users/x/recommendations", headers={}).status_code == 401
        yield url
    finally:
        api.stop()
        flow.stop()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2, headers={"X-API-Key": SERVICE_KEY}).status_code
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
    assert paths >= {"/v1/users/{user_id}", "/v1/users/{user_id}/export"}
    schemes = schema.raw_schema["components"]["securitySchemes"]
    assert schemes["ServiceKey"]["type"] == "apiKey" and schemes["ListenerToken"]["bearerFormat"] == "JWT"
    key = {"X-API-Key": SERVICE_KEY}
    listener = {"Authorization": "Bearer " + jwt.encode(
        {"sub": LISTENER, "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")}
    calls: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):  # valid data, then invalid
            _fuzz(operation, mode, calls, key)
        if {"ListenerToken": []} in (operation.definition.raw.get("security") or []):
            _fuzz(operation, GenerationMode.POSITIVE, calls, listener, as_listener=True)
    print("schemathesis calls per operation:", calls)
    assert all(calls.get(f"{op.method.upper()} {op.path} (positive)", 0) > 0 for op in operations)
    assert calls["POST /v1/events (negative)"] > 0 and calls["GET /v1/users/{user_id}/profile (negative)"] > 0
    assert calls["GET /v1/users/{user_id}/recommendations (positive, listener)"] > 0


EXAMPLES = 60


def _fuzz(operation, mode: GenerationMode, calls: dict[str, int], headers: dict[str, str],
          as_listener: bool = False) -> None:
    label = f"{operation.method.upper()} {operation.path} ({mode.value}{', listener' if as_listener else ''})"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES // 3 if as_listener else EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def no_server_error(case) -> None:
        if as_listener and case.path_parameters and "user_id" in case.path_parameters:
            case.path_parameters["user_id"] = LISTENER  # the token's own listener
        response = case.call(timeout=15, headers=headers)
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
