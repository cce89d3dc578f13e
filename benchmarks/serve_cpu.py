"""CPU per request of the API's handlers, in process, over a fixed Redis state.

    .venv/bin/python -m benchmarks.serve_cpu setup DIR     # broker, Redis, the flow: 28k catalog, warm-up
    .venv/bin/python -m benchmarks.serve_cpu measure DIR [-n N] [--answers PATH] [--fixed-clock MS]
        [--full-seeds]

`encore bench serve` measures latency end to end on a shared machine, where the load generator,
the broker and other work compete with the API. This measures what one request costs the API
itself: `setup` builds the state `encore bench serve` builds (the real 28k catalog through Kafka and
the flow, then the same warm-up history for 5,000 listeners), stops everything and keeps Redis's
data. `measure` starts a redis-server on a copy of that data, builds the app in this process
(`create_app` and its lifespan, as `encore serve` does, search embeddings off) and sends N requests
of `encore bench serve`'s mix (45 % recommendations for a known listener, 5 % cold start, 50 % rank
of 50 + 2 ids) straight into the ASGI app, one at a time, after the catalog and the item statistics
are loaded. Printed: CPU of the event loop's thread per request (handlers, middleware, Redis client;
no HTTP parsing, no socket) and wall time, per kind. Run two trees back to back on the same DIR
(`PYTHONPATH=<tree>`) to compare them; `--answers` writes every answer (without its request id and
`stats_as_of`) as JSON lines, and `--fixed-clock` pins the wall clock; the API's catalog is built in
track-id order (`pin_catalog_order`), so two runs' answers, and two trees', can be diffed.
`--full-seeds` first gives every known listener `FULL_SEEDS` liked artists with full co-listening rows
(`give_full_seeds`), the collaborative step's worst case (the synthetic listeners like fewer artists,
with shorter rows, than Last.fm's do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.serve_bench import DEFAULT_DATA, HISTORY_FLOOR, HISTORY_PER_USER, wait_until
from benchmarks.serve_ingest import make_events
from benchmarks.workload import produce_all

NAMESPACE = "servecpu"
USERS = 5_000
WARM = 100
"""Requests sent before the measured ones (caches, first reads)."""

FULL_SEEDS = 32
"""`--full-seeds`: liked artists per listener (`RankingConfig.collaborative_artists`)."""
FULL_ROW = 100
"""`--full-seeds`: partners an artist's row must have to be chosen."""

Request = tuple[str, str, str, bytes, bytes]
"""kind, method, path, query string, body."""


def setup(workdir: Path, data: Path) -> None:
    import redis

    from encore.catalog_csv import read_spotify_csv
    from encore.catalog_loader import load_catalog
    from encore.local import ManagedProcess, create_topics, start_broker, start_redis
    from encore.settings import Settings
    from schemas.keys import KeyLayout
    from schemas.topics import Topics

    workdir.mkdir(parents=True, exist_ok=True)
    broker, bootstrap = start_broker(workdir / "logs")
    server, url = start_redis(workdir / "redis")
    flow: ManagedProcess | None = None
    try:
        settings = Settings.from_env({}).with_(kafka_bootstrap=bootstrap, redis_url=url, namespace=NAMESPACE,
                                               partitions=4, data_dir=workdir / "data", log_level="WARNING")
        topics, keys = Topics(NAMESPACE), KeyLayout(NAMESPACE)
        create_topics(bootstrap, topics.all(), 4)
        tracks = read_spotify_csv(data)
        load_catalog(bootstrap, NAMESPACE, data)
        flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"],
                              workdir / "logs" / "flow.log", env=settings.to_env()).start()
        client = redis.Redis.from_url(url)
        wait_until(lambda: client.hlen(keys.catalog_tracks) >= len(tracks), 300, "the catalog", flow)
        users = [f"listener-{i:05d}" for i in range(USERS)]
        by_popularity = [t.track_id for t in sorted(tracks, key=lambda t: -(t.popularity or 0.0))]
        history = make_events(USERS * HISTORY_PER_USER, users, by_popularity, 7, "h",
                              int(time.time() * 1000) - 3_600_000, per_user_floor=HISTORY_FLOOR)
        produce_all(bootstrap, topics.events, history)
        wait_until(lambda: int(client.hget(keys.ops_counters, "events_applied") or 0)
                   + int(client.hget(keys.ops_counters, "events_duplicate") or 0) >= len(history),
                   600, "the warm-up", flow)
        flow.stop()
        flow = None
        client.bgrewriteaof()
        time.sleep(3.0)
        meta = {"users": users, "tracks": [t.track_id for t in tracks]}
        (workdir / "meta.json").write_text(json.dumps(meta))
        print(f"state ready in {workdir}: {client.dbsize():,} keys")
    finally:
        if flow is not None:
            flow.stop()
        server.stop()
        broker.stop()


def requests_of(users: Sequence[str], tracks: Sequence[str], n: int, seed: int = 14) -> list[Request]:
    rng = np.random.default_rng(seed)
    out: list[Request] = []
    for i in range(n):
        u = rng.random()
        if u < 0.45:
            user = users[rng.integers(len(users))]
            out.append(("recommendations", "GET", f"/v1/users/{user}/recommendations", b"k=10", b""))
        elif u < 0.5:
            out.append(("cold start", "GET", f"/v1/users/cold-{i}/recommendations", b"k=10", b""))
        else:
            ids = [tracks[j] for j in rng.integers(0, len(tracks), 50)]
            ids += [f"no-such-{i}-{j}" for j in range(2)]
            out.append(("rank", "POST", f"/v1/users/{users[rng.integers(len(users))]}/rank", b"",
                        orjson.dumps({"track_ids": ids})))
    return out


async def call(app: Any, request: Request) -> tuple[int, bytes]:
    _, method, path, query, body = request
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
             "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


def pin_catalog_order() -> None:
    """Build the API's catalog in track-id order, not in HSCAN's: a redis-server seeds its hash
    function at random when it starts, so each run scans the catalog in another order, and with
    the rows every tie broken by position (and every sum taken in row order) moves, so two runs
    of one tree would not give the same answers to diff."""
    import serving.catalog

    ordered_like = serving.catalog.ordered_like

    def by_id(previous: Any, tracks: Sequence[Any]) -> tuple[list[Any], bool]:
        return ordered_like(previous, sorted(tracks, key=lambda track: track.track_id))

    serving.catalog.ordered_like = by_id  # type: ignore[assignment]


def give_full_seeds(url: str, users: Sequence[str], seed: int = 32) -> str:
    """Rewrite each listener's profile (same version) so its `FULL_SEEDS` strongest liked artists
    are artists whose rows hold at least `FULL_ROW` partners, drawn per listener; its other liked
    artists stay below them. Deterministic, so two runs' answers can be diffed. Returns a summary."""
    import redis

    from schemas.keys import KeyLayout
    from schemas.profile_codec import decode_profile, encode_profile

    client, keys = redis.Redis.from_url(url), KeyLayout(NAMESPACE)
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.hlen(keys.artist_listeners):
                break
        except redis.BusyLoadingError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("Redis did not load the artist memory in 60 s")
        time.sleep(0.2)
    names = sorted(a.decode() for a in client.hkeys(keys.artist_listeners))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.zcard(keys.artist_neighbours(name))
    lengths = dict(zip(names, pipe.execute(), strict=True))
    full = [a for a in names if lengths[a] >= FULL_ROW]
    if len(full) < FULL_SEEDS:
        raise SystemExit(f"only {len(full)} artists have rows of {FULL_ROW} partners")
    rng = np.random.default_rng(seed)
    raws = client.mget([keys.profile(u) for u in users])
    pipe = client.pipeline(transaction=False)
    for user, raw in zip(users, raws, strict=True):
        if raw is None:
            continue
        profile = decode_profile(raw, user)
        top = max([v for v in profile.artists.values() if v > 0], default=0.0)
        chosen = [full[i] for i in rng.choice(len(full), FULL_SEEDS, replace=False)]
        artists = dict(profile.artists)
        artists.update({a: top + 1.0 + float(rng.random()) * 4.0 for a in chosen})
        pipe.set(keys.profile(user), encode_profile(replace(profile, artists=artists)))
    pipe.execute()
    mean_row = np.mean([lengths[a] for a in full])
    return (f"full seeds: {FULL_SEEDS} liked artists per listener from {len(full)} artists with rows of "
            f">= {FULL_ROW} partners (mean {mean_row:.0f})")


async def measure(workdir: Path, n: int, answers: Path | None, full_seeds: bool = False) -> None:
    from encore.local import start_redis
    from serving.app import create_app
    from serving.config import ServingConfig

    pin_catalog_order()
    meta = json.loads((workdir / "meta.json").read_text())
    scratch = Path(tempfile.mkdtemp(prefix="serve-cpu-"))
    shutil.copytree(workdir / "redis", scratch / "redis")
    server, url = start_redis(scratch / "redis")
    out = answers.open("wb") if answers is not None else None
    try:
        if full_seeds:
            print(give_full_seeds(url, meta["users"]))
        app = create_app(ServingConfig(brokers=["127.0.0.1:9"], redis_url=url, namespace=NAMESPACE,
                                       search_embeddings=False))
        requests = requests_of(meta["users"], meta["tracks"], n + WARM)
        async with app.router.lifespan_context(app):
            await asyncio.sleep(2.0)  # Redis loads its data; the first catalog refresh may fail meanwhile
            deadline = time.monotonic() + 120
            while len(app.state.catalog.index) < len(meta["tracks"]) or (
                    getattr(app.state, "item_stats", None) is not None and app.state.item_stats.held is None):
                if time.monotonic() > deadline:
                    raise SystemExit("the app did not load the catalog and item statistics in 120 s")
                await asyncio.sleep(0.1)
            for request in requests[:WARM]:
                await call(app, request)
            by_kind: dict[str, list[tuple[float, float]]] = {}
            statuses: dict[int, int] = {}
            for request in requests[WARM:]:
                cpu, wall = time.thread_time(), time.perf_counter()
                status, body = await call(app, request)
                spent = (time.thread_time() - cpu, time.perf_counter() - wall)
                by_kind.setdefault(request[0], []).append(spent)
                statuses[status] = statuses.get(status, 0) + 1
                if out is not None:
                    answer = orjson.loads(body)
                    answer.pop("request_id", None)
                    answer.pop("stats_as_of", None)
                    out.write(orjson.dumps([request[2], answer]) + b"\n")
        every = np.array([v for values in by_kind.values() for v in values]) * 1000
        print(f"{n} requests, statuses {statuses}")
        print(f"{'kind':<16}{'n':>6}{'CPU mean':>10}{'p50':>8}{'p99':>8}{'wall p50':>10}{'p99':>8}  (ms)")
        for kind, values in [*by_kind.items(), ("all", [])]:
            a = np.array(values) * 1000 if values else every
            cpu_ms, wall_ms = a[:, 0], a[:, 1]
            print(f"{kind:<16}{len(a):>6}{cpu_ms.mean():>10.2f}{np.median(cpu_ms):>8.2f}"
                  f"{np.percentile(cpu_ms, 99):>8.2f}{np.median(wall_ms):>10.2f}"
                  f"{np.percentile(wall_ms, 99):>8.2f}")
    finally:
        if out is not None:
            out.close()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_cpu",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("mode", choices=["setup", "measure"])
    parser.add_argument("dir", type=Path, help="where the state is kept")
    parser.add_argument("-n", type=int, default=1000, help="measured requests (default 1000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Spotify songs CSV (setup)")
    parser.add_argument("--answers", type=Path, default=None, help="write the answers here (JSON lines)")
    parser.add_argument("--fixed-clock", type=int, default=None, metavar="MS",
                        help="pin the wall clock (ms since the epoch), so answers can be compared")
    parser.add_argument("--full-seeds", action="store_true",
                        help=f"give every listener {FULL_SEEDS} liked artists with full rows first")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.mode == "setup":
        setup(args.dir, args.data)
        return 0
    if args.fixed_clock is not None:
        fixed = args.fixed_clock / 1000
        time.time = lambda: fixed  # the requests' clock: context features, time of day
    asyncio.run(measure(args.dir, args.n, args.answers, args.full_seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
