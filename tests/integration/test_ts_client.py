"""The TypeScript client for web players (clients/ts) against the live stack: the test starts the flow
and `encore serve` (with an API key) on the session's real broker and Redis, then runs the client's
own suite with Node's test runner (`npm test`: tsc, then `node --test`), which posts events with
the client and reads them back in the next recommendations, and checks that the committed
`src/types.ts` is what the live OpenAPI schema generates."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Env
from tests.ops_support import start_api, start_flow

pytestmark = pytest.mark.integration

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "ts"
API_KEY = "ts-client-test-key-0123456789"


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        pytest.fail("npm is not installed: `make test` installs Node.js (scripts/install-node.sh)")
    return found


def ensure_node_modules() -> None:
    """`npm ci` when node_modules is missing or older than package-lock.json (the Makefile does
    the same before the tests; this covers a bare `pytest`)."""
    stamp = CLIENT_DIR / "node_modules" / ".package-lock.json"
    lock = CLIENT_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm(), "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True, timeout=300)


def test_the_typescript_client_against_the_live_stack(env: Env) -> None:
    ensure_node_modules()
    keys = f'[{{"name": "ts-client", "key": "{API_KEY}", "scopes": ["write", "read", "admin"]}}]'
    settings = env.settings.with_(api_keys=keys)
    log_dir = env.services.workdir / "logs"
    flow = start_flow(settings, log_dir)
    api, url = start_api(settings, log_dir)
    try:
        run = subprocess.run(
            [npm(), "test"], cwd=CLIENT_DIR, capture_output=True, text=True, timeout=300,
            env={**os.environ, "ENCORE_API_URL": url, "ENCORE_API_KEY": API_KEY},
        )
    finally:
        api.stop()
        flow.stop()
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"npm test failed:\n{output[-6000:]}\n--- api log:\n{api.tail(30)}"
    summary = {line.split()[1]: int(line.split()[2]) for line in output.splitlines()
               if line.startswith("# ") and len(line.split()) == 3 and line.split()[2].isdigit()}
    assert summary.get("fail") == 0 and summary.get("skipped") == 0, output[-3000:]
    assert summary.get("pass", 0) >= 20, output[-3000:]
