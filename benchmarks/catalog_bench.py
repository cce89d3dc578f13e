"""Catalog at scale: how long the API takes to load a catalog, its memory, and how long an upsert
takes to reach its view.

    .venv/bin/python -m benchmarks.catalog_bench [--sizes 28k,1m] [--upserts 1,100,10000]
        [--api-path TREE] [--seed S] [--json PATH]

A `redis-server` on a free port; per size a fresh namespace holding the catalog as the flow writes
it (`queue_catalog_upsert`: the real 28k tracks, or the synthetic catalog of `benchmarks.serve_bench`
for larger sizes). Then `benchmarks/catalog_child.py` (its own process, as an API worker holds its
catalog) loads it, timed, with its RSS and peak RSS; then for each upsert size the bench writes that
many tracks in one catalog write, first changed ones (popularity moved), then new ones, and times the
child's next refresh (a write reaches requests after at most `ENCORE_CATALOG_REFRESH_S` plus this).
`--api-path` runs the child against another source tree (e.g. an older commit) for before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import redis

from benchmarks.common import command_line, machine_info, run_as_script, stop_on_sigterm
from benchmarks.serve_bench import DEFAULT_DATA, parse_size, synthetic_catalog, write_catalog_direct
from encore.catalog_csv import read_spotify_csv
from encore.local import start_redis
from flows.redis_sinks import queue_catalog_upsert
from schemas.keys import KeyLayout
from schemas.tracks import Track

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "catalog_child.py"


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


class Child:
    def __init__(self, url: str, namespace: str, api_path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(api_path)}
        self.process = subprocess.Popen([sys.executable, str(CHILD), url, namespace], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the catalog child exited ({self.process.wait()})")
        return json.loads(line)

    def refresh(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("refresh\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:  # interrupted mid-load: it would finish loading first
            self.process.kill()
            self.process.wait()


def catalog_of(size: int, real: list[Track], seed: int) -> list[tuple[bytes, bytes]]:
    if size <= len(real):
        return [(t.track_id.encode(), t.to_json()) for t in real[:size]]
    return synthetic_catalog(real, size, seed)[0]


def upsert(client: redis.Redis, keys: KeyLayout, tracks: Sequence[Track]) -> None:
    pipe = client.pipeline(transaction=False)
    queue_catalog_upsert(pipe, keys, {t.track_id: t.to_json() for t in tracks})
    pipe.execute()


def run_size(label: str, size: int, args: argparse.Namespace, real: list[Track], client: redis.Redis,
             url: str) -> dict[str, Any]:
    keys = KeyLayout(f"catbench{os.getpid()}{label}")
    started = time.perf_counter()
    catalog = catalog_of(size, real, args.seed)
    write_catalog_direct(client, keys, catalog)
    print(f"[{label}] {len(catalog):,} tracks written in {time.perf_counter() - started:.1f} s", flush=True)
    rng = np.random.default_rng(args.seed)
    child = Child(url, keys.namespace, args.api_path)
    result: dict[str, Any] = {"catalog": label, "tracks": len(catalog), "upserts": []}
    try:
        load = child.read()
        result["load"] = load
        print(f"[{label}] load {load['s']:.2f} s, RSS {mib(load['rss'])}, peak {mib(load['hwm'])}",
              flush=True)
        for k in args.upserts:
            picked = rng.choice(len(catalog), size=min(k, len(catalog)), replace=False)
            changed = []
            for i in picked.tolist():
                track = Track.model_validate_json(catalog[i][1])
                popularity = float((track.popularity or 0) + 1) % 100
                changed.append(track.model_copy(update={"popularity": popularity}))
            new = [t.model_copy(update={"track_id": f"bench-{k}-{j}"}) for j, t in enumerate(changed)]
            for kind, tracks in (("changed", changed), ("new", new)):
                upsert(client, keys, tracks)
                step = child.refresh()
                step.update(k=k, kind=kind)
                result["upserts"].append(step)
                print(f"[{label}] {k:>6,} {kind:<7} tracks: {step['how']:<5} "
                      f"refresh {step['s'] * 1000:,.1f} ms "
                      f"(now {step['tracks']:,} tracks, generation {step['generation']}, "
                      f"epoch {step['epoch']}, "
                      f"RSS {mib(step['rss'])}, peak {mib(step['hwm'])})", flush=True)
    finally:
        child.close()
        client.delete(keys.catalog_tracks, keys.catalog_changes, keys.catalog_version)
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="catalog_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="28k,1m", help="catalog sizes (28k: the real catalog)")
    parser.add_argument("--upserts", default="1,100,10000", help="tracks per upsert, comma-separated")
    parser.add_argument("--api-path", type=Path, default=REPO_ROOT, help="source tree the API side runs")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.upserts = [int(x) for x in args.upserts.split(",") if x.strip()]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    stop_on_sigterm()
    args = parse_args(argv)
    print(command_line("benchmarks.catalog_bench", argv), flush=True)
    real = read_spotify_csv(args.data)
    with tempfile.TemporaryDirectory(prefix="encore-catbench-") as tmp:
        server, url = start_redis(Path(tmp) / "redis")
        try:
            client = redis.Redis.from_url(url, socket_timeout=120)
            for key, value in machine_info(client):
                print(f"  {key:<12} {value}", flush=True)
            results = []
            for token in args.sizes.split(","):
                size = parse_size(token)
                size = len(real) if abs(size - len(real)) <= 0.02 * len(real) else size
                results.append(run_size(token.strip(), size, args, real, client, url))
            client.close()
        finally:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps({"command": command_line("benchmarks.catalog_bench", argv),
                                         "api_path": str(args.api_path), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    run_as_script(main, "catalog_bench", (RuntimeError,))
