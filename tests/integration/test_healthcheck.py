"""`encore healthcheck flow` (the flow container's healthcheck) on a real flow: healthy while it runs,
unhealthy, saying why, once it is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from encore.local import ManagedProcess, free_port
from tests.integration.conftest import Env, wait_for

pytestmark = pytest.mark.integration


def healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "encore.cli", "healthcheck", "flow", *args],
                          capture_output=True, text=True, timeout=30, env={**os.environ, **env})


def test_healthy_while_the_flow_runs_unhealthy_after_it_stops(env: Env) -> None:
    child_env = {**env.settings.to_env(), "BYTEWAX_DATAFLOW_API_PORT": str(free_port())}
    assert healthcheck(child_env).returncode == 1  # nothing runs yet
    flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"],
                          env.services.workdir / "logs" / f"flow-health-{env.settings.namespace}.log",
                          env=child_env).start()
    try:
        wait_for(lambda: healthcheck(child_env).returncode == 0, 60, "a healthy flow")
    finally:
        flow.stop()
    time.sleep(1.5)
    down = healthcheck(child_env, "--max-age", "1")
    assert down.returncode == 1
    assert "heartbeat is" in down.stderr and "does not answer" in down.stderr, down.stderr
