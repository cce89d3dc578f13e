"""`encore healthcheck flow`: is the flow on this machine alive? For container healthchecks
(docker-compose.yml's flow service) and any supervisor that can run a command.

Healthy when both hold:
- the flow's heartbeat in Redis (`{ns}:v1:{ops}:heartbeat`, written every 2 s by each flow process)
  is at most `--max-age` seconds old (default 10, the threshold of `/readyz`);
- Bytewax's dataflow API answers `GET /metrics` for each of this machine's `ENCORE_FLOW_PROCESSES`
  processes (port `BYTEWAX_DATAFLOW_API_PORT` + i, default 3030 + i), unless that API is off.

Exit 0 when healthy, 1 (saying why on stderr) when not: Docker's healthcheck convention.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from encore.bytewax_api import DEFAULT_PORT, OFF, PORT
from encore.settings import Settings

HEARTBEAT_MAX_AGE_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("component", choices=["flow"], help="what to check")
    parser.add_argument("--max-age", type=float, default=HEARTBEAT_MAX_AGE_S,
                        help="oldest acceptable heartbeat, in seconds (default 10)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per check (default 3)")


def heartbeat_problem(heartbeat_ms: int | None, now_ms: float, max_age_s: float) -> str | None:
    """What is wrong with the heartbeat, or None.

    >>> heartbeat_problem(9_000, 10_000, 10.0) is None
    True
    >>> heartbeat_problem(None, 10_000, 10.0)
    'no flow heartbeat in Redis: the flow has not started (or writes another namespace)'
    >>> heartbeat_problem(0, 30_000, 10.0)
    "the flow's heartbeat is 30.0 s old (more than 10 s)"
    """
    if heartbeat_ms is None:
        return "no flow heartbeat in Redis: the flow has not started (or writes another namespace)"
    age_s = max(0.0, now_ms - heartbeat_ms) / 1000
    if age_s > max_age_s:
        return f"the flow's heartbeat is {age_s:.1f} s old (more than {max_age_s:g} s)"
    return None


def bytewax_ports(env: Mapping[str, str], processes: int) -> list[int]:
    """The ports of this machine's flow processes' dataflow API; none when it is turned off.

    >>> bytewax_ports({}, 2), bytewax_ports({"BYTEWAX_DATAFLOW_API_PORT": "9100"}, 1)
    ([3030, 3031], [9100])
    >>> bytewax_ports({"BYTEWAX_DATAFLOW_API_ENABLED": "off"}, 2)
    []
    """
    enabled = env.get("BYTEWAX_DATAFLOW_API_ENABLED")
    if enabled is not None and enabled.strip().lower() in OFF:
        return []
    base = int(env.get(PORT) or DEFAULT_PORT)
    return [base + i for i in range(processes)]


def _http_ok(url: str, timeout_s: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} does not answer: {getattr(exc, 'reason', exc)}"


def check_flow(settings: Settings, env: Mapping[str, str], max_age_s: float, timeout_s: float,
               read_heartbeat: Callable[[], int | None] | None = None,
               http_ok: Callable[[str, float], str | None] = _http_ok) -> list[str]:
    """Every problem found (empty when healthy)."""
    problems = []
    if read_heartbeat is None:
        read_heartbeat = _redis_heartbeat(settings, timeout_s)
    try:
        heartbeat = read_heartbeat()
    except Exception as exc:  # Redis down, bad URL: unhealthy, with the reason
        problems.append(f"cannot read the flow's heartbeat from Redis: {exc}")
    else:
        problem = heartbeat_problem(heartbeat, time.time() * 1000, max_age_s)
        if problem:
            problems.append(problem)
    for port in bytewax_ports(env, settings.flow_processes):
        problem = http_ok(f"http://127.0.0.1:{port}/metrics", timeout_s)
        if problem:
            problems.append(f"Bytewax's dataflow API: {problem}")
    return problems


def _redis_heartbeat(settings: Settings, timeout_s: float) -> Callable[[], int | None]:
    def read() -> int | None:
        from schemas.keys import KeyLayout
        from serving.redis_client import connect

        client = connect(settings.require_redis(), socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        try:
            raw = client.get(KeyLayout(settings.namespace).ops_heartbeat)
        finally:
            client.close()
        return int(raw) if raw is not None else None

    return read


def run_healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    problems = check_flow(settings, os.environ, args.max_age, args.timeout)
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0
