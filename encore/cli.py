"""The `encore` command: the local stack, the production processes, catalog and simulation tools."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from encore.catalog_loader import load_catalog
from encore.logs import configure_logging
from encore.settings import Settings, SettingsError

log = logging.getLogger("encore")


BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "catalog": ("catalog_bench", "the API's catalog: whole load (time, RSS), upserts reaching it (own Redis)",
                "Runs benchmarks.catalog_bench: loads the real 28k-track and a synthetic 1M-track catalog "
                "as an API worker does, then times upserts of 1, 100 and 10,000 tracks (changed, then new) "
                "until they are in its view."),
    "ingest": ("flow_bench",
               "throughput, pass-through ratio, freshness under load, memory (own broker and Redis)",
               "Runs benchmarks.flow_bench with ingest defaults: 1,000,000 events, then freshness probes "
               "inside 10,000 events/s of load."),
    "quality": ("quality", "recommendation quality on real playlists or listeners vs baselines (own stack)",
                "Runs benchmarks.quality: --scenario playlists (default; playlist continuation and "
                "adaptation), lastfm (Last.fm listeners' held-out artists, benchmarks.lastfm) or all, "
                "through the real stack, against popularity, item-kNN, EASE and ALS baselines."),
    "search": ("search_quality", "search quality on the catalog's own labels (in process)",
               "Runs benchmarks.search_quality: mood, activity, genre, decade and artist queries (share "
               "of the top 10 that satisfies them), exact artist and title lookups, Korean queries, "
               "against sentence-embedding search alone."),
    "serve": ("serve_bench", "API latency at fixed request rates while the flow ingests (own stack)",
              "Runs benchmarks.serve_bench: recommendations and rank at 500 requests/s, open loop, while "
              "5,000 events/s are ingested, on the real 28k-track catalog and a synthetic 1M-track one."),
}
"""`encore bench NAME` → (module in benchmarks/, help line, description)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="encore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run the whole local stack: broker, Redis, flow, API")
    up.add_argument("--port", type=int, help="API port (default ENCORE_API_PORT or 8000)")
    up.add_argument("--partitions", type=int,
                    help="partitions of the topics (default ENCORE_PARTITIONS or 4)")
    up.add_argument("--demo", action="store_true",
                    help="also load a real catalog and run simulated listeners")
    up.add_argument("--catalog", type=Path, help="catalog CSV for --demo (default: the shipped sample)")
    up.add_argument("--users", type=int, default=50, help="simulated listeners with --demo")
    up.add_argument("--rate", type=float, default=50.0, help="events per second with --demo")
    up.add_argument("--duration", type=float, default=0.0,
                    help="stop after this many seconds (default: run until Ctrl-C)")
    up.add_argument("--processes", type=_positive_int, metavar="N",
                    help="Bytewax processes of the flow (default ENCORE_FLOW_PROCESSES or 1)")

    flow = commands.add_parser(
        "flow", help="run the dataflow, as production does",
        description="Run the dataflow. One machine: --processes N runs and supervises N Bytewax "
        "processes. Several machines: run `encore flow --process-id I --addresses \"h0:p0;h1:p1\"` "
        "on each, with the same addresses and I = its position in them.")
    flow.add_argument("--processes", type=_positive_int, metavar="N",
                      help="Bytewax processes on this machine (default ENCORE_FLOW_PROCESSES or 1)")
    flow.add_argument("--process-id", type=int, metavar="I",
                      help="run only process I of a flow spread over machines (needs --addresses)")
    flow.add_argument("--addresses", metavar="\"HOST:PORT;...\"",
                      help="every process's address, in process-id order (with --process-id)")

    serve = commands.add_parser("serve", help="run the API, as production does")
    serve.add_argument("--host", help="bind address (default ENCORE_API_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default ENCORE_API_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1,
                       help="uvicorn worker processes (metrics are summed over them; rate limits are "
                            "per worker)")

    topics = commands.add_parser("topics", help="Kafka topics")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    create = topics_commands.add_parser("create", help="create Encore's topics (idempotent)")
    create.add_argument("--partitions", type=int, help="default ENCORE_PARTITIONS or 4")

    catalog = commands.add_parser("catalog", help="the track catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    load = catalog_commands.add_parser("load", help="load a Spotify-songs CSV into the catalog topic")
    load.add_argument("file", type=Path)
    load.add_argument("--limit", type=int, help="load at most this many tracks")

    simulate = commands.add_parser("simulate", help="simulated listeners sending events to the API")
    simulate.add_argument("--users", type=int, default=100)
    simulate.add_argument("--rate", type=float, default=100.0, help="events per second")
    simulate.add_argument("--duration", type=float, default=30.0, help="seconds")
    simulate.add_argument("--api", help="API base URL (default ENCORE_API_URL)")
    simulate.add_argument("--catalog", type=Path, help="catalog CSV the listeners pick from")
    simulate.add_argument("--seed", type=int, default=7)

    bench = commands.add_parser("bench", help="benchmarks that print figures")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    for name, (module, summary, description) in BENCHMARKS.items():
        sub = bench_commands.add_parser(
            name, help=summary,
            description=f"{description} Any benchmarks.{module} option may follow "
                        f"(see `python -m benchmarks.{module} --help`).")
        sub.add_argument("options", nargs=argparse.REMAINDER, help=f"benchmarks.{module} options")

    from encore.lag_cli import add_arguments as add_lag_arguments

    add_lag_arguments(commands.add_parser("lag", help="the flow's lag per partition (messages, seconds)"))

    from encore.healthcheck import add_arguments as add_healthcheck_arguments

    add_healthcheck_arguments(commands.add_parser(
        "healthcheck", help="exit 0 if the flow here is alive (heartbeat, Bytewax API), else 1"))
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_help = bool({"-h", "--help"} & set(argv[2:]))
    if len(argv) >= 2 and argv[0] == "bench" and argv[1] in BENCHMARKS and not wants_help:
        # Everything after `bench NAME` belongs to the benchmark's module, options included.
        return run_bench(argv[1], argv[2:])
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"encore: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, log_format=settings.log_format)
    try:
        if args.command == "up":
            from encore.stack import run_stack

            return run_stack(settings, args)
        if args.command == "flow":
            return run_flow(settings, args)
        if args.command == "serve":
            return run_serve(settings, args)
        if args.command == "topics":
            return run_topics_create(settings, args.partitions)
        if args.command == "catalog":
            return run_catalog_load(settings, args.file, args.limit)
        if args.command == "simulate":
            return run_simulate(settings, args)
        if args.command == "bench":
            return run_bench(args.bench_command, args.options)
        if args.command == "lag":
            from encore.lag_cli import run_lag

            return run_lag(settings, args)
        if args.command == "healthcheck":
            from encore.healthcheck import run_healthcheck

            return run_healthcheck(settings, args)
    except SettingsError as exc:
        print(f"encore: {exc}", file=sys.stderr)
        return 2
    return 2


def flow_command(settings: Settings, init_recovery: bool = True, processes: int = 1) -> list[str]:
    """The Bytewax command line that runs the flow (without `-i/-a`), with recovery when it is on.

    With `init_recovery`, a recovery directory without partitions gets them first: the flow of one
    machine, whose processes all share that directory (see `encore/flow_cluster.py`)."""
    from encore.flow_cluster import has_recovery_partitions, recovery_partition_count
    from encore.flow_cluster import init_recovery as make_partitions

    argv = [sys.executable, "-m", "bytewax.run", "encore.flow_main:flow"]
    if settings.recovery:
        recovery_dir = settings.recovery_dir
        if init_recovery and not has_recovery_partitions(recovery_dir):
            make_partitions(recovery_dir, recovery_partition_count(settings, processes))
        # Snapshots older than the newest are not kept: nothing else backs these files up.
        argv += ["-r", str(recovery_dir), "-s", str(settings.snapshot_interval_s), "-b", "0"]
    return argv


def run_flow(settings: Settings, args: argparse.Namespace | None = None) -> int:
    """`encore flow`: one Bytewax process (exec'd, so signals reach it directly), N supervised ones
    (`--processes`), or one process of a flow spread over machines (`--process-id`, `--addresses`)."""
    from encore.bytewax_api import with_bytewax_api  # Bytewax's /metrics on port 3030
    from encore.flow_cluster import (
        PROCESS_ID_ENV,
        FlowArgumentError,
        parse_addresses,
        prepare_member_recovery,
        run_local_cluster,
    )

    settings.require_kafka()
    settings.require_redis()
    processes = getattr(args, "processes", None)
    process_id = getattr(args, "process_id", None)
    addresses = getattr(args, "addresses", None)
    try:
        if (process_id is None) != (addresses is None):
            raise FlowArgumentError("--process-id and --addresses go together")
        if process_id is not None and processes is not None:
            raise FlowArgumentError("--processes runs a whole flow on this machine; "
                                    "--process-id runs one process of a flow across machines")
        members = parse_addresses(addresses) if addresses is not None else []
        if process_id is not None and not 0 <= process_id < len(members):
            raise FlowArgumentError(f"--process-id must be 0 to {len(members) - 1} "
                                    f"for {len(members)} addresses, got {process_id}")
    except FlowArgumentError as exc:
        print(f"encore flow: {exc}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = with_bytewax_api({**os.environ, **settings.to_env()}, settings.data_dir)

    if process_id is not None:
        if settings.recovery:
            prepare_member_recovery(settings, process_id, len(members))
        argv = [*flow_command(settings, init_recovery=False), "-i", str(process_id),
                "-a", ";".join(members)]
        os.execvpe(argv[0], argv, {**env, PROCESS_ID_ENV: str(process_id)})
    processes = processes or settings.flow_processes
    if processes > 1:
        return run_local_cluster(settings, processes, env, flow_command(settings, processes=processes))
    argv = flow_command(settings)
    # Replace this process with Bytewax's runner: signals then reach the flow directly.
    os.execvpe(argv[0], argv, env)
    return 0  # not reached


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    settings.require_kafka()
    settings.require_redis()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    os.environ.update(settings.to_env())
    with metrics_dir(args.workers):
        # Encore's own access log (serving/request_log.py) replaces uvicorn's; log_config=None sends
        # uvicorn's lines through Encore's handler, in ENCORE_LOG_FORMAT.
        uvicorn.run("encore.serve_main:create_app_from_env", factory=True, host=host, port=port,
                    workers=args.workers, log_level=settings.log_level.lower(), access_log=False,
                    log_config=None)
    return 0


@contextlib.contextmanager
def metrics_dir(workers: int) -> Iterator[Path | None]:
    """Several workers share their Prometheus metrics through files (`serving/metrics.py`): a fresh
    temporary directory, removed afterwards; one an operator set in `PROMETHEUS_MULTIPROC_DIR` is
    emptied first instead. Set before the workers start, so each imports prometheus_client with it."""
    from serving.metrics import MULTIPROCESS_DIR_ENV, prepare_multiprocess_dir

    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    if given:
        prepare_multiprocess_dir(Path(given))
        yield Path(given)
        return
    if workers <= 1:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="encore-metrics-"))
    os.environ[MULTIPROCESS_DIR_ENV] = str(path)
    log.info("metrics of %d workers shared in %s", workers, path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def run_topics_create(settings: Settings, partitions: int | None) -> int:
    from encore.local import create_topics
    from schemas.topics import Topics

    created = create_topics(settings.require_kafka(), Topics(settings.namespace).all(),
                            partitions or settings.partitions, settings.kafka_config)
    print(f"created: {', '.join(created) or 'nothing (all topics exist)'}")
    return 0


def run_catalog_load(settings: Settings, path: Path, limit: int | None) -> int:
    if not path.exists():
        print(f"encore: no such file: {path}", file=sys.stderr)
        return 2
    started = time.monotonic()
    count = load_catalog(settings.require_kafka(), settings.namespace, path, limit, settings.kafka_config)
    print(f"loaded {count} tracks into {settings.namespace}.tracks in {time.monotonic() - started:.1f}s")
    return 0


INGEST_DEFAULTS = {"--events": "1000000", "--freshness-events": "50000", "--freshness-rate": "10000",
                   "--freshness-probe-every": "25"}


def run_bench(name: str, options: list[str]) -> int:
    """A benchmark runs as its own module (`python -m benchmarks.<module>`), in a child process."""
    argv = list(options)
    if name == "ingest":
        for flag, value in INGEST_DEFAULTS.items():
            if not any(o == flag or o.startswith(flag + "=") for o in argv):
                argv += [flag, value]
    command = [sys.executable, "-m", f"benchmarks.{BENCHMARKS[name][0]}", *argv]
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 130


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from encore.catalog_csv import DEFAULT_SAMPLE, read_playlists, read_spotify_csv
    from encore.simulate import ListenerSimulation

    catalog = args.catalog or DEFAULT_SAMPLE
    simulation = ListenerSimulation(read_spotify_csv(catalog), args.users, seed=args.seed,
                                    playlists=read_playlists(catalog))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        report = simulation.run(args.api or settings.api_url, args.rate, args.duration, stop)
    except KeyboardInterrupt:
        return 130
    print(report.summary())
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
