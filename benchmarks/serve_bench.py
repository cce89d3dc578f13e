"""Serving latency under ingest: `encore bench serve`.

    .venv/bin/python -m benchmarks.serve_bench [--rate R[,R...]] [--duration S] [--ingest-rate E]
        [--catalog-sizes 28k,1m] [--users U] [--seed S] [--quick] [--json PATH]

What it does (all on loopback, every part its own process, all started and stopped here; see
docs/benchmarks.md, "Serving latency"):

1. **Stack.** A Tansu broker and a redis-server on free ports (`encore.local`), shared by the
   phases. Each phase (one catalog size) gets a fresh namespace, its topics, the flow
   (`python -m encore.cli flow`) and one API process (`python -m encore.cli serve`, uvicorn, one
   worker), as production starts them.
2. **Catalog.** The real catalog (`28k`: the TidyTuesday Spotify songs, 28,356 tracks) is produced
   to the tracks topic and applied by the flow, as `encore catalog load` does. A synthetic catalog
   (`1m`: 1,000,000 tracks resampled from the real tracks' features with a little noise, synthetic
   ids, titles and artists; genres from the resampled track) is written straight into the Redis
   catalog hash as the flow's catalog sink writes it (`queue_catalog_upsert`: `Track.to_json()`
   under `KeyLayout.catalog_tracks`, a change entry and a version bump per chunk), without the
   broker and the flow's per-track cost.
3. **Warm-up.** Every one of `--users` listeners gets history (3 events each, then a power law up
   to 10 per user on average), and the bench waits until the flow applied all of it. Then the API
   is started and timed until `/readyz` reports the whole catalog loaded; its RSS is read.
4. **Load.** `benchmarks.serve_ingest` (its own process) produces events at `--ingest-rate` per
   second for the users above; once it runs, `benchmarks.serve_load` (its own process, open loop,
   raw HTTP/1.1 keep-alive on uvloop) first sends `GET /healthz` at the target rate (the client's
   own overhead plus the server's floor), then the mix at each `--rate`:
   45 % `GET /v1/users/{known}/recommendations?k=10`, 5 % the same for unknown users (cold start),
   50 % `POST /v1/users/{known}/rank` with 50 random catalog ids and 2 unknown ones. Latency is
   measured from each request's scheduled send time (no coordinated omission). Errors are counted
   by status (`timeout` after 10 s, `bad-body` for a 200 without `items`).
5. **After.** The flow's lag (messages behind the topic's end, all partitions) when the load ends,
   how long it then takes to catch up, the ingest rate achieved, CPU seconds of every process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import redis
from confluent_kafka import Consumer, TopicPartition

from benchmarks.common import (
    BenchError,
    command_line,
    cpu_seconds,
    machine_busy_seconds,
    machine_info,
    read_proc_status,
    run_as_script,
    stop_on_sigterm,
    tear_down,
)
from benchmarks.serve_ingest import make_events
from benchmarks.workload import produce_all
from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from encore.catalog_loader import load_catalog
from encore.local import ManagedProcess, create_topics, free_port, start_broker, start_redis
from encore.settings import Settings
from flows.redis_sinks import queue_catalog_upsert
from schemas.keys import KeyLayout, partition_member
from schemas.topics import Topics
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, Track

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "spotify-songs-tidytuesday" / "spotify_songs.csv"
PARTITIONS = 4
K = 10
RANK_CANDIDATES = 50
RANK_UNKNOWN = 2
MIX = (("recommendations (known user)", 0.45), ("recommendations (cold start)", 0.05), ("rank", 0.50))
HISTORY_FLOOR = 3  # warm-up events every user gets
HISTORY_PER_USER = 10  # warm-up events per user on average
SYNTHETIC_NOISE = 0.02  # of each feature's range
TRACKS_PER_ARTIST = 8  # synthetic catalogs: about this many tracks per artist
HSET_CHUNK = 10_000
CATCH_UP_WAIT_S = 30.0  # after the load: how long to wait for the flow to reach the topic's end
API_KEY = "serve-bench-key"
QUICK = {"rate": "50", "duration": 3.0, "ingest_rate": 200.0, "users": 100, "calibration": 1.0}


class _Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


# --------------------------------------------------------------------------------------------------
# Catalogs


@dataclass
class CatalogSpec:
    label: str
    size: int  # tracks wanted
    synthetic: bool


def parse_size(token: str) -> int:
    token = token.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(token[-1:], 1)
    number = token[:-1] if scale > 1 else token
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a catalog size: {token!r} (e.g. 28k, 1m, 50000)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a catalog needs at least one track, got {token!r}")
    return value


def catalog_specs(tokens: str, real_count: int) -> list[CatalogSpec]:
    """`real` or a size within 2 % of the real catalog's: the whole real catalog; smaller: its first
    N tracks; larger: a synthetic catalog of that size resampled from it."""
    specs = []
    for token in (t for t in tokens.split(",") if t.strip()):
        if token.strip().lower() == "real":
            specs.append(CatalogSpec(token.strip(), real_count, False))
            continue
        size = parse_size(token)
        if abs(size - real_count) <= 0.02 * real_count:
            size = real_count
        specs.append(CatalogSpec(token.strip(), size, size > real_count))
    return specs


def synthetic_catalog(real: Sequence[Track], size: int,
                      seed: int) -> tuple[list[tuple[bytes, bytes]], np.ndarray]:
    """`size` tracks as (track_id, JSON) in exactly the bytes `Track.to_json()` gives: each resamples a
    real track with features (noise of 2 % of each feature's range, clipped), its popularity (+- 5)
    and release year, and its genres; ids, titles and artists are synthetic (about 8 tracks per
    artist, artists drawn uniformly). Also returns each track's popularity (0 when unknown)."""
    rng = np.random.default_rng(seed + 101)
    sources = [t for t in real if t.has_features]
    features = np.array([[getattr(t, f) for f in AUDIO_FEATURES] for t in sources], dtype=np.float64)
    low = np.array([FEATURE_RANGES[f][0] for f in AUDIO_FEATURES])
    high = np.array([FEATURE_RANGES[f][1] for f in AUDIO_FEATURES])
    pick = rng.integers(0, len(sources), size=size)
    noisy = features[pick] + rng.normal(0.0, SYNTHETIC_NOISE, size=(size, len(AUDIO_FEATURES))) * (high - low)
    noisy = np.clip(noisy, low, high).round(5)
    popularity = [t.popularity for t in sources]
    pop_noise = rng.integers(-5, 6, size=size)
    artists = rng.integers(0, max(1, size // TRACKS_PER_ARTIST), size=size)
    out = []
    popular = np.zeros(size)
    for i in range(size):
        source = sources[pick[i]]
        track: dict[str, Any] = {"track_id": f"syn-{i:07d}", "title": f"Synthetic track {i}",
                                 "artist": f"Synthetic artist {artists[i]}", "genres": source.genres}
        if popularity[pick[i]] is not None:
            track["popularity"] = popular[i] = float(min(100, max(0, popularity[pick[i]] + pop_noise[i])))
        if source.release_year is not None:
            track["release_year"] = source.release_year
        track.update(zip(AUDIO_FEATURES, noisy[i].tolist(), strict=True))
        track["features_predicted"] = False
        # A copy of exactly its size: orjson hands back bytes with kilobytes of spare capacity.
        out.append((track["track_id"].encode(), memoryview(orjson.dumps(track)).tobytes()))
    # The flow's own format, byte for byte: checked on a sample through the Track model.
    for _, value in out[:: max(1, size // 1000)]:
        if Track.model_validate_json(value).to_json() != value:
            raise BenchError(f"a synthetic track is not in Track.to_json() form: {value[:200]!r}")
    return out, popular


def write_catalog_direct(client: redis.Redis, keys: KeyLayout, tracks: Sequence[tuple[bytes, bytes]]) -> None:
    """The catalog as the flow's CatalogSink writes it (`queue_catalog_upsert`), in chunks."""
    for start in range(0, len(tracks), HSET_CHUNK):
        pipe = client.pipeline(transaction=False)
        queue_catalog_upsert(pipe, keys, dict(tracks[start : start + HSET_CHUNK]))
        pipe.execute()


# --------------------------------------------------------------------------------------------------
# Processes


def check_alive(*processes: ManagedProcess) -> None:
    for p in processes:
        if not p.alive():
            raise BenchError(f"{p.name} exited ({p.process.returncode if p.process else '?'}):\n{p.tail(40)}")


def wait_until(probe: Callable[[], bool], timeout_s: float, what: str, *watched: ManagedProcess,
               interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        check_alive(*watched)
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.tail(20)}" for p in watched)
            raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{tails}")
        time.sleep(interval_s)


def python_process(name: str, module_args: Sequence[str], log: Path, env: dict[str, str]) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-m", *module_args], log, env=env).start()


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class LagReader:
    """The flow's lag in messages: the topic's end minus the next offset the flow will process
    (`KeyLayout.ops_offsets`), summed over partitions."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, client: redis.Redis, keys: KeyLayout,
                 run_id: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"serve-bench-{run_id}",
                                  "enable.auto.commit": False})
        self.topic, self.partitions, self.client, self.keys = topic, partitions, client, keys

    def messages(self) -> int:
        total = 0
        for p in range(self.partitions):
            _, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
            done = self.client.zscore(self.keys.ops_offsets, partition_member(self.topic, p)) or 0
            total += max(0, high - int(done))
        return total

    def close(self) -> None:
        self.consumer.close()


# --------------------------------------------------------------------------------------------------
# One phase


@dataclass
class PhaseReport:
    label: str
    tracks: int
    synthetic: bool
    catalog_how: str
    catalog_s: float
    users: int
    history_events: int
    history_s: float
    api_ready_s: float
    api_rss: int | None
    api_peak_rss: int | None
    load: list[dict[str, Any]] = field(default_factory=list)  # the load generator's phases
    ingest: dict[str, Any] = field(default_factory=dict)
    lag_at_end: int = 0
    catch_up_s: float | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0
    flow_applied_rate: float = 0.0  # events the flow applied per second during the load window
    lag_after_wait: int = 0


def api_headers(auth: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"} if auth == "key" else {}


def api_keys_json() -> str:
    """One key with every scope and a rate limit far above the benchmark's rate."""
    return orjson.dumps([{"name": "serve-bench", "key": API_KEY, "scopes": ["read", "write", "admin"],
                          "rate_per_s": 1_000_000, "burst": 1_000_000}]).decode()


def load_plan(port: int, headers: dict[str, str], rates: Sequence[float], duration_s: float,
              calibration_s: float, users: Sequence[str], track_ids: Sequence[str], seed: int,
              run_id: str, connections: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + 7)
    count = int(max(rates) * duration_s)
    distinct = max(1, min(count, 20_000))
    labels = rng.choice(len(MIX), size=distinct, p=[share for _, share in MIX])
    requests = []
    for i in range(distinct):
        label = MIX[labels[i]][0]
        if label == "rank":
            user = users[rng.integers(len(users))]
            ids = [track_ids[j] for j in rng.integers(0, len(track_ids), size=RANK_CANDIDATES)]
            ids += [f"no-such-track-{run_id}-{i}-{j}" for j in range(RANK_UNKNOWN)]
            requests.append({"label": label, "method": "POST", "path": f"/v1/users/{user}/rank",
                             "body": {"track_ids": ids}, "check_items": True})
        else:
            user = (users[rng.integers(len(users))] if "known" in label else f"cold-{run_id}-{i}")
            requests.append({"label": label, "method": "GET", "check_items": True,
                             "path": f"/v1/users/{user}/recommendations?k={K}"})
    phases = []
    if calibration_s > 0:
        phases.append({"name": "healthz", "rate": max(rates), "duration_s": calibration_s,
                       "requests": [{"label": "healthz", "method": "GET", "path": "/healthz"}]})
    phases += [{"name": f"mix@{rate:g}", "rate": rate, "duration_s": duration_s, "requests": requests}
               for rate in rates]
    return {"host": "127.0.0.1", "port": port, "headers": headers, "connections": connections,
            "pause_s": 1.0, "phases": phases}


def run_phase(spec: CatalogSpec, args: argparse.Namespace, real: Sequence[Track], data: Path,
              bootstrap: str, redis_url: str, client: redis.Redis, workdir: Path, run_id: str,
              processes: list[ManagedProcess], say: Callable[[str], None], broker_pid: int) -> PhaseReport:
    namespace = f"serve{run_id}{spec.label.replace('.', '_')}"
    topics, keys = Topics(namespace), KeyLayout(namespace)
    port = free_port()
    settings = Settings.from_env({}).with_(
        kafka_bootstrap=bootstrap, redis_url=redis_url, namespace=namespace, partitions=PARTITIONS,
        data_dir=workdir / namespace, api_port=port, api_url=f"http://127.0.0.1:{port}", log_level="WARNING",
        api_keys=api_keys_json() if args.auth == "key" else None)
    env = settings.to_env()
    logs = workdir / "logs" / namespace
    create_topics(bootstrap, topics.all(), PARTITIONS)
    started: list[ManagedProcess] = []

    def start(name: str, module_args: Sequence[str]) -> ManagedProcess:
        process = python_process(name, module_args, logs / f"{name}.log", env)
        processes.append(process)
        started.append(process)
        return process

    try:
        # 1. Catalog.
        timer = _Timer()
        if spec.synthetic:
            say(f"[{spec.label}] building a synthetic catalog of {spec.size:,} tracks")
            catalog, popularity = synthetic_catalog(real, spec.size, args.seed)
            built_s = timer()
            if args.synthetic_load == "kafka":
                produce_all(bootstrap, topics.tracks, catalog)
                how = f"synthetic, built in {built_s:.1f} s, produced to Kafka and applied by the flow"
                flow = start("flow", ["encore.cli", "flow"])
            else:
                write_catalog_direct(client, keys, catalog)
                how = (f"synthetic, built in {built_s:.1f} s, written straight into the Redis catalog hash "
                       f"in {timer() - built_s:.1f} s (not through Kafka)")
                flow = start("flow", ["encore.cli", "flow"])
            track_ids = [key.decode() for key, _ in catalog]
            by_popularity = [track_ids[i] for i in np.argsort(-popularity, kind="stable")]
            del catalog
        else:
            tracks = list(real[: spec.size])
            limit = spec.size if spec.size < len(real) else None
            loaded = load_catalog(bootstrap, namespace, data, limit=limit)
            how = "real, produced to Kafka and applied by the flow"
            flow = start("flow", ["encore.cli", "flow"])
            track_ids = [t.track_id for t in tracks]
            if loaded != len(tracks):
                raise BenchError(f"produced {loaded} tracks, expected {len(tracks)}")
            by_popularity = [t.track_id for t in sorted(tracks, key=lambda t: -(t.popularity or 0.0))]
        wait_until(lambda: client.hlen(keys.catalog_tracks) >= spec.size, max(300.0, spec.size / 2000),
                   f"the catalog to hold {spec.size:,} tracks", flow, interval_s=0.2)
        catalog_s = timer()
        say(f"[{spec.label}] catalog: {spec.size:,} tracks in Redis after {catalog_s:.1f} s ({how})")

        # 2. Warm-up history: every user gets a profile.
        users = [f"listener-{i:05d}" for i in range(args.users)]
        ts0 = int(time.time() * 1000) - 3_600_000
        history = make_events(args.users * HISTORY_PER_USER, users, by_popularity, args.seed, f"{run_id}-h",
                              ts0, per_user_floor=HISTORY_FLOOR)
        n_history = len(history)
        timer = _Timer()
        produce_all(bootstrap, topics.events, history)
        del history
        wait_until(lambda: int(client.hget(keys.ops_counters, "events_applied") or 0)
                   + int(client.hget(keys.ops_counters, "events_duplicate") or 0) >= n_history,
                   300, f"the flow to apply {n_history:,} warm-up events", flow, interval_s=0.2)
        history_s = timer()
        say(f"[{spec.label}] warm-up: {n_history:,} events for {args.users:,} users applied in "
            f"{history_s:.1f} s")

        # 3. The API, timed until it serves the whole catalog.
        timer = _Timer()
        api = start("api", ["encore.cli", "serve", "--port", str(port), "--workers", str(args.api_workers)])
        base = f"http://127.0.0.1:{port}"

        def catalog_served() -> bool:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                body = httpx.get(f"{base}/readyz", timeout=5).json()
                return int(body["checks"]["catalog"].get("tracks", 0)) >= spec.size
            return False

        wait_until(catalog_served, 600, f"the API to load {spec.size:,} tracks", api, flow, interval_s=0.2)
        api_ready_s = timer()
        say(f"[{spec.label}] API: serving {spec.size:,} tracks {api_ready_s:.1f} s after its start, RSS "
            f"{mib(read_proc_status(api.pid, 'VmRSS'))}")

        # 4. Ingest, then the load generator.
        load_s = args.calibration + 1.0 + len(args.rates) * (args.duration + 1.0)
        ingest_plan = {"bootstrap": bootstrap, "topic": topics.events, "rate": args.ingest_rate,
                       "duration_s": load_s + 30.0, "users": users, "track_ids": by_popularity,
                       "seed": args.seed + 1, "run_id": f"{run_id}-i", "ts0_ms": ts0 + 1_800_000,
                       "ready_file": str(logs / "ingest.ready")}
        (logs / "ingest-plan.json").write_bytes(orjson.dumps(ingest_plan))
        plan = load_plan(port, api_headers(args.auth), args.rates, args.duration, args.calibration, users,
                         track_ids, args.seed, run_id, args.connections)
        (logs / "load-plan.json").write_bytes(orjson.dumps(plan))
        lag = LagReader(bootstrap, topics.events, PARTITIONS, client, keys, run_id)
        ingest = start("ingest", ["benchmarks.serve_ingest", str(logs / "ingest-plan.json"),
                                  str(logs / "ingest-result.json")])
        wait_until(lambda: (logs / "ingest.ready").exists(), 120, "the ingest producer to start",
                   ingest, flow)
        time.sleep(2.0 if args.ingest_rate > 0 else 0.0)  # the flow settles into the ingest rate
        pids = {"api": api.pid, "flow": flow.pid, "ingest": ingest.pid, "broker": broker_pid}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        redis0, busy0, window = redis_cpu(client), machine_busy_seconds(), _Timer()
        applied0 = int(client.hget(keys.ops_counters, "events_applied") or 0)
        say(f"[{spec.label}] load: healthz {args.calibration:g} s, then "
            f"{', '.join(f'{r:g}/s' for r in args.rates)} for {args.duration:g} s each, ingest at "
            f"{args.ingest_rate:,.0f} events/s")
        loadgen = start("loadgen", ["benchmarks.serve_load", str(logs / "load-plan.json"),
                                    str(logs / "load-result.json")])
        assert loadgen.process is not None
        loadgen_pid = loadgen.pid
        loadgen_cpu = 0.0
        deadline = time.monotonic() + load_s + 120
        while loadgen.alive():
            check_alive(api, flow)
            loadgen_cpu = max(loadgen_cpu, cpu_seconds(loadgen_pid))
            if time.monotonic() > deadline:
                raise BenchError(f"the load generator did not finish:\n{loadgen.tail(20)}")
            time.sleep(0.2)
        if loadgen.process.returncode != 0:
            raise BenchError(f"the load generator failed:\n{loadgen.tail(40)}")
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        cpu["redis"] = redis_cpu(client) - redis0
        window_s = window()
        cpu["machine"] = machine_busy_seconds() - busy0
        lag_at_end = lag.messages()
        applied_rate = (int(client.hget(keys.ops_counters, "events_applied") or 0) - applied0) / window_s
        if ingest.alive():
            assert ingest.process is not None
            ingest.process.send_signal(signal.SIGTERM)
        wait_until(lambda: not ingest.alive(), 60, "the ingest producer to stop", flow)
        ingest_result = orjson.loads((logs / "ingest-result.json").read_bytes())
        timer = _Timer()
        catch_up = None
        with contextlib.suppress(BenchError):
            wait_until(lambda: lag.messages() == 0, CATCH_UP_WAIT_S, "the flow to catch up", flow,
                       interval_s=0.05)
            catch_up = timer()
        lag_after_wait = lag.messages()
        lag.close()
        load = orjson.loads((logs / "load-result.json").read_bytes())
        cpu["loadgen"] = sum(phase["cpu_s"] for phase in load["phases"])
        ours = sum(cpu[name] for name in ("api", "flow", "redis", "broker", "ingest", "loadgen"))
        cpu["other"] = max(0.0, cpu["machine"] - ours)  # the kernel, and work that is not this benchmark's
        report = PhaseReport(
            label=spec.label, tracks=spec.size, synthetic=spec.synthetic, catalog_how=how,
            catalog_s=catalog_s, users=args.users, history_events=n_history, history_s=history_s,
            api_ready_s=api_ready_s, api_rss=read_proc_status(api.pid, "VmRSS"),
            api_peak_rss=read_proc_status(api.pid, "VmHWM"), load=load["phases"], ingest=ingest_result,
            lag_at_end=lag_at_end, catch_up_s=catch_up, cpu_s=cpu, window_s=window_s,
            flow_applied_rate=applied_rate, lag_after_wait=lag_after_wait)
        return report
    finally:
        for process in reversed(started):
            with contextlib.suppress(Exception):
                process.stop()
            with contextlib.suppress(ValueError):
                processes.remove(process)


# --------------------------------------------------------------------------------------------------
# Report


def mib(n: float | None) -> str:
    return "?" if n is None else f"{n / 2**20:,.0f} MiB"


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    array = np.asarray(values)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)),
            "p99": float(np.percentile(array, 99)), "max": float(array.max())}


def endpoint_rows(phase: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per request label and one for all of them: target and achieved rates, latency
    percentiles of the 200s, and every other outcome by code."""
    labels = [label for label in ([lbl for lbl, _ in MIX] + ["healthz"]) if label in phase["statuses"]]
    shares = dict(MIX)
    rows = []
    every_latency: list[float] = []
    every_status: dict[str, int] = {}
    for label in labels:
        statuses = phase["statuses"].get(label, {})
        latencies = phase["latencies_ms"].get(label, [])
        every_latency += latencies
        for code, count in statuses.items():
            every_status[code] = every_status.get(code, 0) + count
        rows.append(_row(label, phase["rate"] * shares.get(label, 1.0), statuses, latencies, phase))
    if len(labels) > 1:
        rows.append(_row("all", phase["rate"], every_status, every_latency, phase))
    return rows


def _row(label: str, target: float, statuses: dict[str, int], latencies: Sequence[float],
         phase: dict[str, Any]) -> dict[str, Any]:
    answered = sum(count for code, count in statuses.items()
                   if code not in ("timeout", "conn-error", "unfinished"))
    errors = {code: count for code, count in statuses.items() if code != "200"}
    return {"endpoint": label, "target_rps": target, "achieved_rps": answered / phase["duration_s"],
            "ok": statuses.get("200", 0), "errors": errors, **percentiles(latencies)}


def fmt_errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{code}: {count:,}" for code, count in sorted(errors.items())) or "-"


def phase_json(report: PhaseReport) -> dict[str, Any]:
    return {
        "catalog": report.label, "tracks": report.tracks, "synthetic": report.synthetic,
        "catalog_how": report.catalog_how, "catalog_s": report.catalog_s, "users": report.users,
        "history_events": report.history_events, "history_s": report.history_s,
        "api_ready_s": report.api_ready_s, "api_rss_bytes": report.api_rss,
        "api_peak_rss_bytes": report.api_peak_rss,
        "loads": [{"name": p["name"], "rate": p["rate"], "duration_s": p["duration_s"],
                   "connections": p["connections"], "client_cpu_s": p["cpu_s"],
                   "send_lag_ms": percentiles(p["send_lag_ms"]), "rows": endpoint_rows(p)}
                  for p in report.load],
        "ingest": report.ingest, "lag_at_end_messages": report.lag_at_end, "catch_up_s": report.catch_up_s,
        "cpu_s": report.cpu_s, "window_s": report.window_s, "flow_applied_per_s": report.flow_applied_rate,
        "lag_after_wait_messages": report.lag_after_wait,
    }


def render(command: str, settings_rows: Sequence[tuple[str, str]], reports: Sequence[PhaseReport]) -> str:
    lines = ["=" * 100, f"Encore serving latency benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"command: {command}"]
    width = max(len(name) for name, _ in settings_rows)
    lines += [f"  {name:<{width}}  {value}" for name, value in settings_rows]
    for number, report in enumerate(reports, 1):
        lines += ["", f"phase {number}: catalog {report.label}, {report.tracks:,} tracks "
                      f"({report.catalog_how}; in Redis after {report.catalog_s:.1f} s)",
                  f"  warm-up: {report.history_events:,} events for {report.users:,} users, applied in "
                  f"{report.history_s:.1f} s",
                  f"  API: serving the whole catalog {report.api_ready_s:.1f} s after its start; RSS "
                  f"{mib(report.api_rss)} at the end (peak {mib(report.api_peak_rss)})"]
        for load in report.load:
            send = percentiles(load["send_lag_ms"])
            lines += ["", f"  {load['name']}: {load['rate']:g} requests/s for {load['duration_s']:g} s, "
                          f"{load['connections']} connections opened, load generator CPU "
                          f"{load['cpu_s']:.1f} s "
                          f"(due -> written p50 {send['p50']:.2f} / p99 {send['p99']:.2f} ms)",
                      f"  {'endpoint':<30}{'target/s':>9}{'done/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
                      f"{'max ms':>9}{'200':>8}  errors"]
            for row in endpoint_rows(load):
                lines.append(f"  {row['endpoint']:<30}{row['target_rps']:>9.1f}{row['achieved_rps']:>9.1f}"
                             f"{row['p50']:>9.2f}{row['p95']:>9.2f}{row['p99']:>9.2f}{row['max']:>9.1f}"
                             f"{row['ok']:>8,}  {fmt_errors(row['errors'])}")
        ingest = report.ingest
        catch = (f"still {report.lag_after_wait:,} behind {CATCH_UP_WAIT_S:.0f} s later"
                 if report.catch_up_s is None else f"caught up {report.catch_up_s:.1f} s later")
        rate = ingest.get("target_rate", 0) or 0
        behind = f" (~{report.lag_at_end / rate:.1f} s of ingest)" if rate else ""
        lines += ["", f"  ingest: target {ingest.get('target_rate', 0):,.0f} events/s, achieved "
                      f"{ingest.get('rate', 0):,.0f}/s over {ingest.get('seconds', 0):.1f} s "
                      f"({ingest.get('acked', 0):,} acknowledged, {ingest.get('failed', 0):,} failed)",
                  f"  flow: applied {report.flow_applied_rate:,.0f} events/s during the load; lag when it "
                  f"ended {report.lag_at_end:,} messages{behind}; {catch}"]
        cpu = report.cpu_s
        parts = ", ".join(f"{name} {cpu[name]:.1f}" for name in
                          ("api", "flow", "redis", "broker", "ingest", "loadgen", "other") if name in cpu)
        answered = sum(row["ok"] + sum(n for code, n in row["errors"].items()
                                       if code not in ("timeout", "conn-error", "unfinished"))
                       for load in report.load for row in endpoint_rows(load) if row["endpoint"] != "all")
        per_request = f"{cpu['api'] / answered * 1000:.1f} ms" if answered and "api" in cpu else "-"
        lines.append(f"  CPU seconds over the {report.window_s:.0f} s load window: {parts}; whole machine "
                     f"{cpu.get('machine', float('nan')):.1f} (of {report.window_s * os.cpu_count():.0f} "
                     f"available); API CPU per answered request {per_request}")
        if report.window_s > 0:
            # The same as shares of the machine: what the broker and the load generator took from the API.
            names = ("api", "flow", "redis", "broker", "ingest", "loadgen", "other")
            shares = ", ".join(f"{LABELS.get(name, name)} {cpu[name] / report.window_s:.2f}"
                               for name in names if name in cpu)
            lines.append(f"  cores busy on average: {shares} (of {os.cpu_count()})")
    return "\n".join(lines)


LABELS = {"loadgen": "load generator"}


# --------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="encore bench serve", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="See docs/benchmarks.md, section 'Serving latency'.")
    parser.add_argument("--rate", default=None,
                        help="requests per second, one or several (comma-separated) (default 500)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per rate (default 60)")
    parser.add_argument("--ingest-rate", type=float, default=None,
                        help="events per second produced during the load (default 5000; 0: none)")
    parser.add_argument("--catalog-sizes", default=None,
                        help="catalogs, comma-separated: 28k (or real) = the real catalog, a larger size "
                             "(1m) = synthetic (default 28k,1m; --quick: real)")
    parser.add_argument("--users", type=int, default=None, help="listeners with a profile (default 5000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=None,
                        help=f"Spotify songs CSV (default {DEFAULT_DATA}; --quick: the shipped sample)")
    parser.add_argument("--calibration", type=float, default=None,
                        help="seconds of GET /healthz at the top rate before the mix (default 10; 0: none)")
    parser.add_argument("--connections", type=int, default=128,
                        help="most connections the load generator opens (default 128)")
    parser.add_argument("--api-workers", type=int, default=1,
                        help="uvicorn worker processes of the API (default 1; with more, the API's RSS "
                             "line shows only the supervising process)")
    parser.add_argument("--auth", choices=("demo", "key"), default="demo",
                        help="API without keys (demo mode) or with one key sent as a bearer token")
    parser.add_argument("--synthetic-load", choices=("direct", "kafka"), default="direct",
                        help="synthetic catalogs: straight into Redis (default) or through Kafka and "
                             "the flow")
    parser.add_argument("--quick", action="store_true",
                        help="a small, short run (shipped sample, 50 requests/s for 3 s): a smoke test")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    defaults = {"rate": "500", "duration": 60.0, "ingest_rate": 5000.0, "users": 5000, "calibration": 10.0}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, QUICK[name] if args.quick else value)
    if args.catalog_sizes is None:
        args.catalog_sizes = "real" if args.quick else "28k,1m"
    if args.data is None:
        args.data = DEFAULT_SAMPLE if args.quick else DEFAULT_DATA
    try:
        args.rates = [float(r) for r in str(args.rate).split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rate: not a number list: {args.rate!r}")
    if not args.rates or min(args.rates) <= 0 or args.duration <= 0 or args.users < 1 or args.ingest_rate < 0:
        parser.error("--rate, --duration and --users must be positive, --ingest-rate at least 0")
    if not args.data.exists():
        parser.error(f"no such catalog CSV: {args.data} (give --data)")
    return args


def run(args: argparse.Namespace,
        say: Callable[[str], None]) -> tuple[list[PhaseReport], list[tuple[str, str]]]:
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    try:
        return _run(args, say)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)  # called from a test: leave the handler as found


def _run(args: argparse.Namespace,
         say: Callable[[str], None]) -> tuple[list[PhaseReport], list[tuple[str, str]]]:
    run_id = uuid.uuid4().hex[:6]
    busy0 = machine_busy_seconds()
    time.sleep(1.0)
    idle_load = machine_busy_seconds() - busy0
    real = read_spotify_csv(args.data)
    specs = catalog_specs(args.catalog_sizes, len(real))
    workdir = Path(tempfile.mkdtemp(prefix="encore-serve-bench-"))
    processes: list[ManagedProcess] = []
    reports: list[PhaseReport] = []
    ok = False
    say(f"run {run_id}, logs in {workdir}; {len(real):,} real tracks in {args.data}")
    try:
        broker, bootstrap = start_broker(workdir / "logs")
        processes.append(broker)
        redis_server, redis_url = start_redis(workdir / "redis")
        processes.append(redis_server)
        client = redis.Redis.from_url(redis_url)
        for spec in specs:
            reports.append(run_phase(spec, args, real, args.data, bootstrap, redis_url, client, workdir,
                                     run_id, processes, say, broker.pid))
        machine = machine_info(client)
        ok = True
    finally:
        tear_down(processes, workdir, finished=ok)
    rows = [
        *machine,
        ("cores", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable); {idle_load:.2f} busy with "
                  "other work in the second before the run"),
        ("uvicorn", f"{version_of('uvicorn')} (1 worker; uvloop {version_of('uvloop')}, httptools "
                    f"{version_of('httptools')}), fastapi {version_of('fastapi')}"),
        ("stack", "broker, redis-server, `encore flow` (1 process), `encore serve` (1 worker), ingest "
                  "producer and load generator: each its own process, all on loopback"),
        ("api auth", "demo mode (no API keys)" if args.auth == "demo" else "one API key, bearer token"),
        ("api workers", str(args.api_workers)),
        ("load", f"{', '.join(f'{r:g}' for r in args.rates)} requests/s, open loop, {args.duration:g} s "
                 f"each, after {args.calibration:g} s of GET /healthz; up to {args.connections} keep-alive "
                 "connections"),
        ("mix", ", ".join(f"{share:.0%} {label}" for label, share in MIX)
                + f"; k={K}; rank bodies: {RANK_CANDIDATES} catalog ids + {RANK_UNKNOWN} unknown"),
        ("listeners", f"{args.users:,} with a profile ({HISTORY_PER_USER} warm-up events each on average)"),
        ("ingest", f"{args.ingest_rate:,.0f} events/s during the load (power-law users and tracks)"),
        ("seed", str(args.seed)),
    ]
    return reports, rows


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line("benchmarks.serve_bench", argv)
    print(f"$ {command}", flush=True)
    try:
        reports, rows = run(args, lambda line: print(line, flush=True))
    except BenchError as exc:
        print(f"\nencore bench serve: {exc}", file=sys.stderr)
        return 1
    print(render(command, rows, reports), flush=True)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps({"command": command, "settings": dict(rows),
                                            "phases": [phase_json(r) for r in reports]},
                                           option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    return 0


if __name__ == "__main__":
    run_as_script(main, "encore bench serve")
