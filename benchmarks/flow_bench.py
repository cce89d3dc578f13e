"""Throughput and freshness of the Encore dataflow, on the same real parts the tests use.

    .venv/bin/python -m benchmarks.flow_bench [--events N] [--users U] [--partitions P]
        [--freshness-events M] [--freshness-rate R] [--catalog PATH] [--seed S]

What it does (all on loopback, all started and stopped here; see docs/benchmarks.md):

1. **Stack.** A Tansu broker (memory storage) and a redis-server on free ports (`encore.local`), a
   fresh namespace, its topics; the catalog CSV is produced with `encore.catalog_loader.load_catalog` and a
   first flow process (`python -m encore.cli flow`, as the tests start it) is run until the catalog
   hash in Redis holds every track. That flow is then stopped: the catalog stays in Redis.
2. **Throughput.** N valid events are pre-produced (JSON, key = user_id; users and tracks drawn from
   rank-based power laws with exponent 1.1, tracks ranked by popularity; play 35 %, complete 30 %,
   skip 25 %, like 7 %, dislike 3 %; increasing `ts`; unique `event_id`), then a second flow process
   is started on the same namespace. It reads the events from the beginning (with recovery on, it
   resumes the catalog topic from the first flow's snapshot, if one was taken; otherwise it replays
   that topic too, as a flow without recovery does on every start). Measured: flow start -> first
   profile write, and first write -> every user's profile at its final version (its number of
   events, since every event id is unique). Completion is watched cheaply: one key per partition
   (the user of the partition's last message) is read every 10 ms, all still-pending users every
   second (MGET, 1000 keys a command, reading the u64 profile_version at bytes 3..11); completion is
   only declared after a full pass over every user agrees.
3. **Freshness.** With that flow caught up, M events are produced at R per second, each for a fresh
   user (so its profile key appears exactly when the event is applied), by a producer with
   `linger.ms=0`; a poller thread MGETs the pending keys every ~1 ms. Latency = key seen - just
   before `produce()`. The same events are also read by a plain consumer with librdkafka's
   defaults: the broker's share of that latency.
4. **Footprint.** Peak RSS of the flow process (VmHWM), its memory per active listener (VmRSS when
   drained minus VmRSS at the first profile write, over the listeners), Redis `MEMORY USAGE` of
   profile keys.

Also measured: the **pass-through** rate of the same topic through the flow's own Kafka source into a
sink that only counts (`benchmarks/passthrough.py`), and the ratio of the full flow to it.
`--fetch-wait-ms MS` sets the flow's `ENCORE_KAFKA_FETCH_WAIT_MS` for the run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from benchmarks.common import (
    BenchError,
    command_line,
    cpu_seconds,
    machine_busy_seconds,
    machine_info,
    own_cpu_seconds,
    redis_cpu,
    run_as_script,
    stop_on_sigterm,
    tear_down,
    tree_cpu_seconds,
    tree_status,
)
from benchmarks.workload import (
    EVENT_TYPES,
    TYPE_MIX,
    ZIPF_EXPONENT,
    ProduceReport,
    Workload,
    make_workload,
    power_law_ranks,
    produce_all,
)
from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from encore.catalog_loader import load_catalog
from encore.local import ManagedProcess, create_topics, start_broker, start_redis
from encore.settings import Settings
from schemas.keys import KeyLayout
from schemas.profile_codec import peek_version
from schemas.topics import Topics

MGET_CHUNK = 1000
FULL_POLL_S = 1.0
FALLBACK_POLL_S = 0.1
SENTINEL_POLL_S = 0.010
FIRST_WRITE_POLL_S = 0.005
FRESH_POLL_S = 0.001

def profile_version(raw: bytes | None) -> int:
    """profile_version of a stored profile, -1 for no key or a foreign value (header only)."""
    return peek_version(raw)


# --------------------------------------------------------------------------------------------------
# Workload


# --------------------------------------------------------------------------------------------------
# Processes


def start_flow(settings: Settings, log_path: Path) -> ManagedProcess:
    """The flow as production and the tests start it: `python -m encore.cli flow`."""
    return ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"], log_path,
                          env=settings.to_env()).start()


def recovery_of(settings: Settings) -> str:
    recovery = getattr(settings, "recovery", None)
    if recovery is None:
        return "no recovery (this version has none)"
    if not recovery:
        return "recovery off"
    interval = getattr(settings, "snapshot_interval_s", None)
    return "recovery on" + (f" (snapshot every {interval} s)" if interval is not None else "")


def check_alive(flow: ManagedProcess) -> None:
    if not flow.alive():
        raise BenchError(f"the flow exited ({flow.process.returncode if flow.process else '?'}):\n"
                         f"{flow.tail(40)}")


def wait_until(probe: Callable[[], bool], timeout_s: float, what: str, flow: ManagedProcess,
               interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        check_alive(flow)
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{flow.tail(20)}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------------------------------
# Throughput


@dataclass
class ThroughputResult:
    events: int
    active_users: int
    startup_s: float  # flow start -> first profile write
    drain_s: float  # first profile write -> every profile final
    total_s: float  # flow start -> every profile final
    flow_cpu_s: float
    redis_cpu_s: float
    broker_cpu_s: float
    poller_cpu_s: float
    bench_cpu_s: float  # this whole process (poller included)
    machine_busy_s: float  # every process on the machine
    full_passes: int
    detected_by: str  # how the end was seen, and so how late it may have been seen
    rss_first_write: int | None = None  # the flow's VmRSS when its first profile write was seen


def progress_bar(done: float, width: int = 30) -> str:
    """`[#########.....]  31%`: how far the drain has come."""
    filled = round(max(0.0, min(1.0, done)) * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:4.0%}"


def versions_of(client: redis.Redis, keys: Sequence[str]) -> list[int]:
    out: list[int] = []
    for start in range(0, len(keys), MGET_CHUNK):
        out.extend(profile_version(raw) for raw in client.mget(keys[start : start + MGET_CHUNK]))
    return out


def measure_throughput(client: redis.Redis, keys: KeyLayout, workload: Workload, produced: ProduceReport,
                       settings: Settings, log_path: Path, broker: ManagedProcess,
                       started: list[ManagedProcess],
                       ) -> tuple[ManagedProcess, ThroughputResult]:
    active = [i for i in range(len(workload.users)) if workload.expected[i] > 0]
    pending: dict[str, int] = {keys.profile(workload.users[i]): int(workload.expected[i]) for i in active}
    expected_of = dict(pending)
    hottest = [keys.profile(workload.users[i]) for i in active[:512]]
    sentinels = {keys.profile(key.decode()): expected_of[keys.profile(key.decode())]
                 for _, key in produced.last_per_partition.values()}
    n_events = len(workload.events)
    timeout_s = max(300.0, n_events / 500)

    cpu0, own0, busy0 = time.thread_time(), own_cpu_seconds(), machine_busy_seconds()
    redis_cpu0, broker_cpu0 = redis_cpu(client), cpu_seconds(broker.pid)
    t_start = time.perf_counter()
    flow = start_flow(settings, log_path)
    started.append(flow)

    # Flow start -> first profile write.
    while True:
        if any(raw is not None for raw in client.mget(hottest)):
            t_first = time.perf_counter()
            rss_first = tree_status(flow.pid, "VmRSS")
            break
        check_alive(flow)
        if time.perf_counter() - t_start > 120:
            raise BenchError(f"no profile written 120s after the flow started:\n{flow.tail(20)}")
        time.sleep(FIRST_WRITE_POLL_S)
    print(f"  first profile write {t_first - t_start:.2f}s after the flow started", flush=True)

    # First write -> every profile at its final version.
    full_passes = 0
    next_full = t_first
    full_interval = FULL_POLL_S
    t_done = None
    detected_by = ""
    while t_done is None:
        now = time.perf_counter()
        if now - t_start > timeout_s:
            raise BenchError(f"{len(pending)} users not final after {timeout_s:.0f}s:\n{flow.tail(20)}")
        sentinel_keys = list(sentinels)
        sentinels_done = bool(sentinels) and all(
            v >= sentinels[k] for k, v in zip(sentinel_keys, versions_of(client, sentinel_keys), strict=True))
        if sentinels_done or now >= next_full:
            t_seen = time.perf_counter()
            pending_keys = list(pending)
            applied_missing = 0
            for key, version in zip(pending_keys, versions_of(client, pending_keys), strict=True):
                if version >= pending[key]:
                    del pending[key]
                else:
                    applied_missing += pending[key] - max(version, 0)
            full_passes += 1
            if not pending:
                # Everything final: when the sentinels said so, that was the moment; otherwise
                # the pass that found it (at worst one pass interval late).
                t_done = t_seen
                detected_by = ("per-partition sentinels (10 ms poll)" if sentinels_done else
                               f"full pass (every {full_interval * 1000:.0f} ms)")
                break
            check_alive(flow)
            applied = n_events - applied_missing
            print(f"  {now - t_first:6.1f}s {progress_bar(applied / n_events)} {applied:>9,} of {n_events:,} "
                  f"events applied, {len(pending):,} users pending", flush=True)
            if sentinels_done:  # the sentinels are final but others lag: frequent full passes
                sentinels = {}
                full_interval = FALLBACK_POLL_S
            next_full = now + full_interval
        time.sleep(SENTINEL_POLL_S)
    poller_cpu = time.thread_time() - cpu0
    own_cpu, machine_busy = own_cpu_seconds() - own0, machine_busy_seconds() - busy0
    result = ThroughputResult(
        events=n_events, active_users=len(active), startup_s=t_first - t_start,
        drain_s=t_done - t_first, total_s=t_done - t_start, flow_cpu_s=tree_cpu_seconds(flow.pid),
        redis_cpu_s=redis_cpu(client) - redis_cpu0, broker_cpu_s=cpu_seconds(broker.pid) - broker_cpu0,
        poller_cpu_s=poller_cpu, bench_cpu_s=own_cpu, machine_busy_s=machine_busy,
        full_passes=full_passes, detected_by=detected_by, rss_first_write=rss_first,
    )
    return flow, result


@dataclass
class PassThroughResult:
    events: int
    startup_s: float
    drain_s: float  # first message counted -> all counted
    cpu_s: float


def measure_passthrough(client: redis.Redis, settings: Settings, topic: str, events: int,
                        log_path: Path, started: list[ManagedProcess]) -> PassThroughResult:
    """The same topic through `benchmarks.passthrough` (Kafka source -> counting sink)."""
    count_key = f"{settings.namespace}:bench:passthrough"
    command = [sys.executable, "-m", "bytewax.run", "benchmarks.passthrough:flow"]
    process = ManagedProcess("passthrough", command, log_path, env={**settings.to_env(), "BENCH_TOPIC": topic,
                                            "BENCH_COUNT_KEY": count_key})
    t_start = time.perf_counter()
    process.start()
    started.append(process)
    t_first = None
    while True:
        counted = int(client.get(count_key) or 0)
        now = time.perf_counter()
        if counted and t_first is None:
            t_first = now
        if counted >= events:
            break
        check_alive(process)
        if now - t_start > max(300.0, events / 500):
            raise BenchError(f"pass-through counted {counted:,} of {events:,}:\n{process.tail(20)}")
        time.sleep(SENTINEL_POLL_S)
    cpu = cpu_seconds(process.pid)
    process.stop()
    started.remove(process)
    assert t_first is not None
    return PassThroughResult(events, t_first - t_start, now - t_first, cpu)


# --------------------------------------------------------------------------------------------------
# Freshness


@dataclass
class FreshnessResult:
    sent: int
    latencies_ms: list[float]  # produce -> profile key in Redis
    kafka_ms: list[float]  # produce -> delivered to a plain consumer (librdkafka defaults)
    send_seconds: float
    poller_cpu_s: float
    sent_after_s: list[float] = field(default_factory=list)  # each latency's probe: s after the first send

    def later_than(self, seconds: float) -> list[float]:
        """The latencies of probes sent at least `seconds` after the first one."""
        return [ms for ms, at in zip(self.latencies_ms, self.sent_after_s, strict=True) if at >= seconds]

    @staticmethod
    def pct(values: Sequence[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    @classmethod
    def summary(cls, values: Sequence[float]) -> str:
        if not values:
            return "-"
        return (f"{cls.pct(values, 50):.1f} / {cls.pct(values, 90):.1f} / {cls.pct(values, 99):.1f} / "
                f"{max(values):.1f} ms")


def measure_freshness(client: redis.Redis, keys: KeyLayout, bootstrap: str, topic: str, partitions: int,
                      count: int, rate: float, track_ids: Sequence[str], seed: int, run_id: str,
                      flow: ManagedProcess, probe_every: int = 1,
                      filler_users: Sequence[str] = ()) -> FreshnessResult:
    """Produce `count` events at `rate`; every `probe_every`-th goes to a fresh user and is timed
    until its profile appears, the rest load the flow as ordinary traffic of `filler_users`."""
    rng = np.random.default_rng(seed + 1)
    tracks = power_law_ranks(rng, count, len(track_ids), ZIPF_EXPONENT)
    kinds = rng.choice(len(EVENT_TYPES), size=count, p=TYPE_MIX)
    sent_at: dict[bytes, float] = {}  # user id -> perf_counter just before produce()
    pending: dict[bytes, str] = {}  # user id -> profile key, until the key is seen
    latencies: list[float] = []
    sent_after: list[float] = []
    t_start = [time.perf_counter()]
    kafka_latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    poller_cpu = [0.0]

    def poll_redis() -> None:
        cpu0 = time.thread_time()
        while not stop.is_set():
            with lock:
                waiting = list(pending.items())
            if waiting:
                values = client.mget([key for _, key in waiting])
                seen = time.perf_counter()
                with lock:
                    for (user, _), raw in zip(waiting, values, strict=True):
                        if raw is not None:
                            del pending[user]
                            latencies.append((seen - sent_at[user]) * 1000.0)
                            sent_after.append(sent_at[user] - t_start[0])
            time.sleep(FRESH_POLL_S if probe_every <= 1 else 5 * FRESH_POLL_S)
        poller_cpu[0] = time.thread_time() - cpu0

    # The broker's share: the same events read by a plain consumer with librdkafka's defaults (as
    # the flow's KafkaSource has them), positioned at the end of every partition.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{run_id}",
                         "enable.auto.commit": False})
    assignment = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p))[1])
                  for p in range(partitions)]
    consumer.assign(assignment)
    consumer.consume(100, 0.5)

    def consume_kafka() -> None:
        while not stop.is_set():
            msg = consumer.poll(0.05)  # returns as soon as one message is there
            seen = time.perf_counter()
            if msg is not None and msg.error() is None:
                with lock:
                    sent = sent_at.get(msg.key())
                if sent is not None:
                    kafka_latencies.append((seen - sent) * 1000.0)

    # Alone, probes go out unbatched (linger 0: pure latency). Under load the producer batches as a
    # real one must (linger 5 ms, included in the figures): unbatched, it cannot keep up.
    linger_ms = 0 if probe_every <= 1 else 5
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": linger_ms})
    threads = [threading.Thread(target=poll_redis, name="freshness-poller", daemon=True),
               threading.Thread(target=consume_kafka, name="kafka-baseline", daemon=True)]
    for thread in threads:
        thread.start()
    try:
        ts0 = int(time.time() * 1000)
        t0 = t_start[0] = time.perf_counter()
        for i in range(count):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            probe = probe_every <= 1 or not filler_users or i % probe_every == 0
            user = f"fresh-{run_id}-{i}" if probe else filler_users[i % len(filler_users)]
            kind = EVENT_TYPES[kinds[i]]
            event: dict[str, object] = {"event_id": f"{run_id}-fresh-{i}", "user_id": user,
                                        "track_id": track_ids[tracks[i]], "type": kind, "ts": ts0 + i}
            if kind in ("play", "skip", "complete"):
                event["duration_ms"] = 200_000
                event["position_ms"] = 200_000 if kind == "complete" else 60_000
            value, key = orjson.dumps(event), user.encode()
            if probe:
                with lock:
                    pending[key] = keys.profile(user)
                    sent_at[key] = time.perf_counter()
                    producer.produce(topic, key=key, value=value)
            else:
                while True:
                    try:
                        producer.produce(topic, key=key, value=value)
                        break
                    except BufferError:
                        producer.poll(0.01)
            producer.poll(0)
        send_seconds = time.perf_counter() - t0
        if producer.flush(30):
            raise BenchError("freshness events were not acknowledged by the broker")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if not pending and len(kafka_latencies) >= len(sent_at):
                    break
            check_alive(flow)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        consumer.close()
    return FreshnessResult(len(sent_at), latencies, kafka_latencies, send_seconds, poller_cpu[0], sent_after)


# --------------------------------------------------------------------------------------------------
# Report


def profile_memory(client: redis.Redis, keys: KeyLayout, users: Sequence[str], seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed + 2)
    sample = [users[i] for i in rng.choice(len(users), size=min(100, len(users)), replace=False)]
    out: dict[str, float] = {}
    for label, chosen in (("random", sample), ("hottest", list(users[:100]))):
        pipe = client.pipeline(transaction=False)
        for user in chosen:
            pipe.memory_usage(keys.profile(user), samples=0)
            pipe.strlen(keys.profile(user))
        values = pipe.execute()
        out[f"{label}_usage"] = float(np.mean([v for v in values[0::2] if v is not None]))
        out[f"{label}_strlen"] = float(np.mean(values[1::2]))
    return out


def fmt_rows(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def mib(n: float | None) -> str:
    return "?" if n is None else f"{n / 2**20:,.0f} MiB"


# --------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flow_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events pre-produced (default 200000)")
    parser.add_argument("--users", type=int, default=20_000, help="user population (default 20000)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topics (default 4)")
    parser.add_argument("--freshness-events", type=int, default=400, help="freshness probes (default 400)")
    parser.add_argument("--freshness-rate", type=float, default=100.0,
                        help="freshness probes per second (default 100)")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_SAMPLE,
                        help="Spotify-songs CSV (default: the shipped 600-track sample)")
    parser.add_argument("--seed", type=int, default=7, help="workload seed (default 7)")
    parser.add_argument("--recovery", choices=("on", "off"), default=None,
                        help="the flow's Bytewax recovery (ENCORE_RECOVERY; default: the settings' default)")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="flow processes (`encore flow --processes N`; default 1); CPU and memory "
                             "are summed over them")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="the flow's ENCORE_FLOW_BATCH_SIZE (most messages per partition poll; "
                             "default: the setting's default)")
    parser.add_argument("--fetch-wait-ms", type=int, default=None, metavar="MS",
                        help="the flow's ENCORE_KAFKA_FETCH_WAIT_MS (default: the settings' default)")
    parser.add_argument("--freshness-probe-every", type=int, default=1, metavar="K",
                        help="every K-th freshness event is a timed probe for a fresh user, the others "
                             "are load from the workload's users (default 1: all probes)")
    parser.add_argument("--no-passthrough", action="store_true",
                        help="skip the pass-through measurement")
    args = parser.parse_args(argv)
    if min(args.events, args.users, args.partitions) < 1 or args.freshness_rate <= 0:
        parser.error("--events, --users, --partitions and --freshness-rate must be positive")
    if args.processes < 1:
        parser.error("--processes must be >= 1")
    if args.freshness_events < 0:
        parser.error("--freshness-events must be >= 0")
    if not args.catalog.exists():
        parser.error(f"no such catalog: {args.catalog}")
    return args


def _processes(n: int) -> str:
    return "1 flow process, 1 worker" if n == 1 else f"{n} flow processes, 1 worker each"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    command = command_line("benchmarks.flow_bench", argv)
    run_id = uuid.uuid4().hex[:8]
    busy0 = machine_busy_seconds()
    time.sleep(1.0)
    idle_load = machine_busy_seconds() - busy0  # cores busy before we start anything: other work
    namespace = f"bench{run_id}"
    workdir = Path(tempfile.mkdtemp(prefix="encore-bench-"))
    processes: list[ManagedProcess] = []
    ok = False
    print(f"$ {command}\nrun {run_id}, namespace {namespace}, logs in {workdir}", flush=True)
    try:
        tracks = read_spotify_csv(args.catalog)
        print(f"building the workload: {args.events:,} events, {args.users:,} users, "
              f"{len(tracks):,} tracks, seed {args.seed}", flush=True)
        workload = make_workload(args.events, args.users, tracks, args.seed, run_id)

        broker, bootstrap = start_broker(workdir / "logs")
        processes.append(broker)
        redis_server, redis_url = start_redis(workdir / "redis")
        processes.append(redis_server)
        client = redis.Redis.from_url(redis_url)
        settings = Settings.from_env({}).with_(kafka_bootstrap=bootstrap, redis_url=redis_url,
                                               namespace=namespace, partitions=args.partitions,
                                               data_dir=workdir / namespace)
        if args.fetch_wait_ms is not None:
            settings = settings.with_(kafka_fetch_wait_ms=args.fetch_wait_ms)
        if args.batch_size is not None:
            settings = settings.with_(flow_batch_size=args.batch_size)
        if args.processes != 1:
            settings = settings.with_(flow_processes=args.processes)
        if args.recovery is not None:
            if not hasattr(settings, "recovery"):
                raise BenchError("--recovery: this version of Encore has no recovery setting")
            settings = settings.with_(recovery=args.recovery == "on")
        topics, keys = Topics(namespace), KeyLayout(namespace)
        create_topics(bootstrap, topics.all(), args.partitions)

        # 1. The catalog, applied by a first flow process, which is then stopped.
        t0 = time.perf_counter()
        loaded = load_catalog(bootstrap, namespace, args.catalog)
        catalog_flow = start_flow(settings, workdir / "logs" / "flow-catalog.log")
        processes.append(catalog_flow)
        wait_until(lambda: client.hlen(keys.catalog_tracks) >= loaded, 180,
                   f"the catalog to hold {loaded} tracks", catalog_flow)
        catalog_s = time.perf_counter() - t0
        catalog_flow.stop()
        print(f"catalog: {loaded:,} tracks produced and in Redis in {catalog_s:.1f}s", flush=True)

        # 2. Throughput: pre-produced events, then a fresh flow process drains them.
        produced = produce_all(bootstrap, topics.events, workload.events)
        print(f"produced {produced.acked:,} events in {produced.seconds:.1f}s "
              f"({produced.acked / produced.seconds:,.0f}/s); starting the flow", flush=True)
        passthrough = None
        if not args.no_passthrough:
            passthrough = measure_passthrough(client, settings, topics.events, produced.acked,
                                              workdir / "logs" / "passthrough.log", processes)
            print(f"pass-through: {passthrough.events / passthrough.drain_s:,.0f} events/s "
                  "(Kafka source -> counting sink)", flush=True)
        flow, tp = measure_throughput(client, keys, workload, produced, settings,
                                      workdir / "logs" / "flow.log", broker, processes)
        rss_drained = tree_status(flow.pid, "VmRSS")
        print(f"  done: all {tp.active_users:,} active users final", flush=True)

        # 3. Freshness with the flow caught up.
        fresh = None
        if args.freshness_events:
            print(f"freshness: {args.freshness_events} events at {args.freshness_rate:g}/s", flush=True)
            track_ids = [t.track_id for t in tracks]
            fillers = [workload.users[i] for i in range(args.users) if workload.expected[i] > 0]
            fresh = measure_freshness(client, keys, bootstrap, topics.events, args.partitions,
                                      args.freshness_events, args.freshness_rate, track_ids, args.seed,
                                      run_id, flow, args.freshness_probe_every, fillers)

        # 4. Footprint.
        peak_rss = tree_status(flow.pid, "VmHWM")
        rss_now = tree_status(flow.pid, "VmRSS")
        active_users = [workload.users[i] for i in range(args.users) if workload.expected[i] > 0]
        memory = profile_memory(client, keys, active_users, args.seed)
        redis_used = int(client.info("memory")["used_memory"])
        machine = machine_info(client)
        ok = True
    finally:
        tear_down(processes, workdir, finished=ok)

    hottest_share = workload.expected[0] / args.events
    other_cpu = max(0.0, tp.machine_busy_s - tp.flow_cpu_s - tp.redis_cpu_s - tp.broker_cpu_s
                    - tp.bench_cpu_s)
    mix = ", ".join(f"{t} {c / args.events:.1%}" for t, c in workload.type_counts.items())
    mean_size = sum(len(value) for _, value in workload.events) / len(workload.events)
    flow_how = f"`python -m encore.cli flow` (fetch wait {settings.kafka_fetch_wait_ms} ms)"
    print("\n" + "=" * 78)
    print(f"Encore flow benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"command: {command}")
    print(fmt_rows(machine))
    print("\nworkload")
    print(fmt_rows([
        ("catalog", f"{args.catalog} ({loaded:,} tracks)"),
        ("events", f"{args.events:,}, JSON {mean_size:.0f} B on average ({mix})"),
        ("users", f"{args.users:,} drawn, {tp.active_users:,} with events; hottest user "
                  f"{workload.expected[0]:,} events ({hottest_share:.1%}); Zipf a={ZIPF_EXPONENT}"),
        ("partitions", str(args.partitions)),
        ("flow", f"{flow_how}: {_processes(args.processes)}, batch {settings.flow_batch_size}, "
                 f"{recovery_of(settings)}"),
        ("seed", str(args.seed)),
    ]))
    print(f"\nthroughput (backlog of pre-produced events, {_processes(args.processes)})")
    print(fmt_rows([
        ("events/s, first write -> all final", f"{tp.events / tp.drain_s:,.0f}"),
        ("events/s, flow start -> all final", f"{tp.events / tp.total_s:,.0f}"),
        ("flow start -> first profile write", f"{tp.startup_s:.2f} s"),
        ("first write -> all profiles final", f"{tp.drain_s:.2f} s"),
        ("end seen by", f"{tp.detected_by}, {tp.full_passes} full passes"),
        ("CPU: flow (incl. start-up) / redis / broker / poller",
         f"{tp.flow_cpu_s:.1f} / {tp.redis_cpu_s:.1f} / {tp.broker_cpu_s:.1f} / {tp.poller_cpu_s:.1f} s "
         f"(flow averaged {tp.flow_cpu_s / tp.total_s:.2f} cores)"),
        ("CPU: whole machine / not attributed above",
         f"{tp.machine_busy_s:.1f} / {other_cpu:.1f} s over {tp.total_s:.1f} s (kernel, other processes; "
         f"{idle_load:.2f} cores were busy before the run)"),
        ("pre-produce (not in the figures)",
         f"{produced.seconds:.1f} s, {produced.acked / produced.seconds:,.0f}/s"),
        ("catalog load (not in the figures)", f"{catalog_s:.1f} s"),
    ]))
    if passthrough is not None:
        raw_rate = passthrough.events / passthrough.drain_s
        print("\npass-through (same topic: the flow's Kafka source -> a sink that only counts)")
        print(fmt_rows([
            ("events/s, first message -> all counted", f"{raw_rate:,.0f}"),
            ("full flow / pass-through", f"{tp.events / tp.drain_s / raw_rate:.2f}"),
            ("CPU", f"{passthrough.cpu_s:.1f} s"),
        ]))
    if fresh is not None:
        missed = fresh.sent - len(fresh.latencies_ms)
        load = (f"{args.freshness_events:,} events at {args.freshness_rate:,.0f}/s, every "
                f"{args.freshness_probe_every}th a probe" if args.freshness_probe_every > 1 else
                f"{fresh.sent} events at {args.freshness_rate:g}/s")
        producer_how = ("linger.ms=0, 1 ms poller" if args.freshness_probe_every <= 1 else
                        "linger.ms=5, 5 ms poller")
        print(f"\nfreshness (produce -> profile key in Redis of {fresh.sent} probes; {load}; {producer_how})")
        # The first snapshot after the drain covers every state the drain touched and stalls the flow
        # (docs/benchmarks.md, "Snapshot stalls"); probes after it show the steady state.
        settle_s = float(settings.snapshot_interval_s) if settings.recovery else 0.0
        later = fresh.later_than(settle_s)
        print(fmt_rows([
            ("p50 / p90 / p99 / max", fresh.summary(fresh.latencies_ms)),
            *([(f"… probes sent ≥ {settle_s:g} s in ({len(later)})", fresh.summary(later))]
              if settle_s and later else []),
            ("mean", f"{np.mean(fresh.latencies_ms) if fresh.latencies_ms else float('nan'):.1f} ms"),
            ("not seen within 30 s", str(missed)),
            ("broker alone: produce -> plain consumer", f"{fresh.summary(fresh.kafka_ms)} "
             f"(librdkafka defaults, {len(fresh.kafka_ms)} seen)"),
            ("poller CPU", f"{fresh.poller_cpu_s:.1f} s over {fresh.send_seconds:.1f} s"),
        ]))
    per_listener = ("?" if rss_drained is None or tp.rss_first_write is None else
                    f"{(rss_drained - tp.rss_first_write) / max(1, tp.active_users) / 1024:,.1f} KiB")
    print("\nfootprint")
    print(fmt_rows([
        ("flow peak RSS (VmHWM" + (", summed over its processes)" if args.processes > 1 else ")"),
         f"{mib(peak_rss)} (VmRSS when drained {mib(rss_drained)}, at the end {mib(rss_now)})"),
        ("flow memory per active listener",
         f"{per_listener} (VmRSS drained − VmRSS at the first write, over {tp.active_users:,} listeners)"),
        ("MEMORY USAGE per profile, 100 random active users",
         f"{memory['random_usage']:,.0f} B (value {memory['random_strlen']:,.0f} B)"),
        ("MEMORY USAGE per profile, 100 hottest users",
         f"{memory['hottest_usage']:,.0f} B (value {memory['hottest_strlen']:,.0f} B)"),
        ("redis used_memory (catalog + all profiles)", mib(redis_used)),
    ]))
    return 0


if __name__ == "__main__":
    run_as_script(main, "flow_bench", (BenchError,))
