"""Bytewax's own dataflow API (its Prometheus `/metrics` and the `/dataflow` graph), on for `encore flow`.

Bytewax 0.21 serves it from the flow process when `BYTEWAX_DATAFLOW_API_ENABLED` is set (to any
value: Bytewax only checks that it is present), on `0.0.0.0:BYTEWAX_DATAFLOW_API_PORT` (default
3030), and writes the dataflow's graph to `dataflow.json` in the directory
`BYTEWAX_DATAFLOW_API_CACHE_PATH` (default: the working directory; Encore uses its data dir).

`encore flow` turns the API on unless the variable says otherwise; `false`, `0`, `no`, `off` or an
empty value turn it off (by unsetting the variable before Bytewax starts). If the port is taken,
Bytewax logs a panic of its web-server thread and the flow runs on without the API.

`encore flow --processes N` runs N Bytewax processes on one machine: process `i` serves its API on
the base port + `i` (3030, 3031, ...), each with its own process's metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ENABLED = "BYTEWAX_DATAFLOW_API_ENABLED"
PORT = "BYTEWAX_DATAFLOW_API_PORT"
CACHE_PATH = "BYTEWAX_DATAFLOW_API_CACHE_PATH"
DEFAULT_PORT = 3030
OFF = ("", "0", "false", "no", "off")


def with_bytewax_api(env: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """The flow's environment with Bytewax's API on, unless `BYTEWAX_DATAFLOW_API_ENABLED` is off.

    >>> env = with_bytewax_api({}, Path("/var/lib/encore"))
    >>> env[ENABLED], env[CACHE_PATH]
    ('true', '/var/lib/encore')
    >>> ENABLED in with_bytewax_api({ENABLED: "false"}, Path("."))
    False
    """
    result = dict(env)
    if result.setdefault(ENABLED, "true").strip().lower() in OFF:
        del result[ENABLED]
        return result
    result.setdefault(CACHE_PATH, str(data_dir))  # a directory: Bytewax writes dataflow.json in it
    return result


def for_process(env: Mapping[str, str], process_id: int) -> dict[str, str]:
    """The environment of process `process_id` of a flow on one machine: its API on base port + id.

    >>> for_process({ENABLED: "true"}, 2)[PORT]
    '3032'
    >>> for_process({ENABLED: "true", PORT: "9100"}, 1)[PORT]
    '9101'
    >>> PORT in for_process({}, 1)  # the API is off
    False
    """
    result = dict(env)
    if ENABLED in result:
        result[PORT] = str(int(result.get(PORT) or DEFAULT_PORT) + process_id)
    return result
