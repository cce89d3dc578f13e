"""The API side of `benchmarks.catalog_bench`, its own process: a `LiveCatalog` that loads, then
refreshes on each line `refresh` read from stdin, printing one JSON line per step.

Imports only what every version of `serving.catalog` has, so the same file measures an older tree
(`PYTHONPATH=<old tree> python benchmarks/catalog_child.py URL NAMESPACE`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

import redis.asyncio as aioredis

from schemas.keys import KeyLayout
from serving.catalog import LiveCatalog


def status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


async def main(url: str, namespace: str) -> None:
    client = aioredis.Redis.from_url(url, socket_timeout=60)
    catalog = LiveCatalog(client, KeyLayout(namespace))
    started = time.perf_counter()
    await catalog.refresh()
    seconds = time.perf_counter() - started
    gc.collect()
    print(json.dumps({"step": "load", "s": seconds, "tracks": len(catalog.index),
                      "rss": status("VmRSS"), "hwm": status("VmHWM")}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() != "refresh":
            break
        loads = catalog.loaded_in_s
        started = time.perf_counter()
        changed = await catalog.refresh()
        seconds = time.perf_counter() - started
        view = catalog.view
        # A whole load sets loaded_in_s (in every version of LiveCatalog); an incremental one not.
        kind = "full" if catalog.loaded_in_s != loads else "delta"
        print(json.dumps({"step": "refresh", "s": seconds, "changed": changed, "how": kind,
                          "tracks": len(catalog.index), "generation": getattr(view, "generation", None),
                          "epoch": getattr(view, "epoch", None), "rss": status("VmRSS"),
                          "hwm": status("VmHWM")}), flush=True)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
