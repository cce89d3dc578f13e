"""The flow's heartbeat: a timestamp in Redis every few seconds, so readiness checks can tell a
quiet flow (heartbeat fresh, no events) from a dead one (heartbeat stale)."""

from __future__ import annotations

import logging
import threading
import time

import redis

from flows.redis_io import connect
from schemas.keys import KeyLayout

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 2.0


def start_heartbeat(url: str, keys: KeyLayout, interval_s: float = HEARTBEAT_INTERVAL_S) -> threading.Event:
    """Beat in a daemon thread until the returned event is set (or the process ends)."""
    stop = threading.Event()

    def beat() -> None:
        client = connect(url)
        while not stop.is_set():
            try:
                client.set(keys.ops_heartbeat, int(time.time() * 1000))
            except redis.RedisError as exc:
                log.debug("heartbeat failed: %s", exc)
            stop.wait(interval_s)

    threading.Thread(target=beat, name="flow-heartbeat", daemon=True).start()
    return stop
