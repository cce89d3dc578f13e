"""Redis from inside the flow: connect by URL, and run writes with retries so nothing is lost.

A write that fails because Redis is unreachable is retried with capped exponential backoff until it
succeeds: the flow stalls (and Kafka buffers) rather than dropping a profile write. Every write is
full-state or commutative, so a retried write is harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_FIRST_DELAY_S = 0.05
RETRY_MAX_DELAY_S = 2.0


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                health_check_interval=30)


def with_retries(action: Callable[[], T], what: str) -> T:
    """Run `action` until it succeeds, backing off while Redis is unreachable."""
    delay = RETRY_FIRST_DELAY_S
    attempt = 0
    while True:
        try:
            return action()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            attempt += 1
            if attempt == 1 or attempt % 20 == 0:
                log.warning("%s failed (%s); retrying (attempt %d)", what, exc, attempt)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)
