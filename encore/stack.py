"""`encore up`: the whole local stack in one command, stopped cleanly on Ctrl-C or SIGTERM.

Starts what is not configured (an embedded Tansu broker, a redis-server), creates the topics, runs
the dataflow and the API as child processes exactly as `encore flow` and `encore serve` run them,
and with `--demo` loads a real catalog and runs simulated listeners.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from encore.local import ManagedProcess, create_topics, free_port, start_broker, start_redis, wait_for_port
from encore.settings import Settings, redact_url
from schemas.topics import Topics


class StackFailed(RuntimeError):
    pass


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_healthy(api_url: str, processes: list[ManagedProcess], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in processes:
            if not process.alive():
                raise StackFailed(f"{process.name} exited during start-up:\n{process.tail()}")
        try:
            if httpx.get(f"{api_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise StackFailed(f"the API did not answer at {api_url} within {timeout_s:.0f}s")


def run_stack(settings: Settings, args: argparse.Namespace) -> int:
    port = args.port or settings.api_port
    if not _port_is_free(port):
        print(f"encore up: port {port} is taken; choose another with --port", file=sys.stderr)
        return 2
    run_dir = settings.data_dir.resolve()
    log_dir = run_dir / "logs"
    processes: list[ManagedProcess] = []
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if not settings.kafka_bootstrap:
            # The embedded broker keeps its log in memory: state derived from an earlier run's
            # log (recovery snapshots, the embedded Redis) would describe events that are gone.
            for stale in (run_dir / "recovery", run_dir / "redis"):
                shutil.rmtree(stale, ignore_errors=True)
            broker, bootstrap = start_broker(log_dir)
            processes.append(broker)
            settings = settings.with_(kafka_bootstrap=bootstrap)
        if not settings.redis_url:
            redis_server, redis_url = start_redis(run_dir / "redis")
            processes.append(redis_server)
            settings = settings.with_(redis_url=redis_url)
        partitions = args.partitions or settings.partitions
        settings = settings.with_(partitions=partitions, api_port=port,
                                  api_url=f"http://127.0.0.1:{port}", data_dir=run_dir)
        assert settings.kafka_bootstrap is not None
        create_topics(settings.kafka_bootstrap, Topics(settings.namespace).all(), partitions,
                      settings.kafka_config)

        env = settings.to_env()
        flow_processes = args.processes or settings.flow_processes
        flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow",
                                       "--processes", str(flow_processes)],
                              log_dir / "flow.log", env=env).start()
        processes.append(flow)
        api = ManagedProcess("api", [sys.executable, "-m", "encore.cli", "serve", "--port", str(port)],
                             log_dir / "api.log", env=env).start()
        processes.append(api)
        _wait_healthy(settings.api_url, processes)
        _print_endpoints(settings, log_dir, flow_processes)

        demo: threading.Thread | None = None
        if args.demo:
            demo = threading.Thread(target=_run_demo, args=(settings, args, stop), name="demo", daemon=True)
            demo.start()
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop.is_set():
            for process in processes:
                if not process.alive():
                    raise StackFailed(f"{process.name} stopped unexpectedly:\n{process.tail()}")
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.5)
        stop.set()
        if demo is not None:
            demo.join(timeout=15)
        return 0
    except StackFailed as exc:
        print(f"encore up: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        print("\nstopping ...", flush=True)
        for process in reversed(processes):
            code = process.stop()
            how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
            print(f"  {process.name} stopped ({how})", flush=True)


def _print_endpoints(settings: Settings, log_dir: Path, processes: int = 1) -> None:
    topics = Topics(settings.namespace)
    rows = [
        ("API", settings.api_url),
        ("API docs", f"{settings.api_url}/docs"),
        ("Kafka", f"{settings.kafka_bootstrap}  (topics {', '.join(topics.all())})"),
        ("Redis", redact_url(settings.redis_url)),
        ("Flow", f"{processes} Bytewax process{'es' if processes > 1 else ''}"),
        ("logs", str(log_dir)),
    ]
    print("\nEncore is up:")
    for name, where in rows:
        print(f"  {name:<9} {where}")
    print("Stop with Ctrl-C.\n", flush=True)


def _run_demo(settings: Settings, args: argparse.Namespace, stop: threading.Event) -> None:
    from encore.catalog_csv import DEFAULT_SAMPLE, read_playlists, read_spotify_csv
    from encore.catalog_loader import load_catalog
    from encore.simulate import ListenerSimulation

    catalog = args.catalog or DEFAULT_SAMPLE
    assert settings.kafka_bootstrap is not None
    count = load_catalog(settings.kafka_bootstrap, settings.namespace, catalog,
                         kafka_config=settings.kafka_config)
    print(f"demo: loaded {count} tracks from {catalog}", flush=True)
    _wait_for_catalog(settings.api_url, stop)
    simulation = ListenerSimulation(read_spotify_csv(catalog), args.users, playlists=read_playlists(catalog))
    watched = simulation.users[0]
    print(f"demo: {args.users} simulated listeners at {args.rate:.0f} events/s; watching "
          f"{watched.user_id} (favourite genre: {watched.genre})", flush=True)
    watcher = threading.Thread(target=_watch_user, args=(settings.api_url, watched.user_id, stop),
                               daemon=True)
    watcher.start()
    duration = args.duration or float("inf")
    report = simulation.run(settings.api_url, args.rate, duration, stop)
    print(f"demo: {report.summary()}", flush=True)


def _wait_for_catalog(api_url: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            response = httpx.get(f"{api_url}/v1/users/nobody/recommendations", params={"k": 1}, timeout=2)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        stop.wait(0.3)


def _watch_user(api_url: str, user_id: str, stop: threading.Event) -> None:
    """Print how one listener's recommendations change as their events arrive."""
    last_version = -1
    while not stop.wait(5.0):
        try:
            response = httpx.get(f"{api_url}/v1/users/{user_id}/recommendations", params={"k": 3}, timeout=2)
        except httpx.HTTPError:
            continue
        if response.status_code != 200:
            continue
        body = response.json()
        if body["profile_version"] == last_version:
            continue
        last_version = body["profile_version"]
        top = "; ".join(f"{i['title'][:32]} ({', '.join(i['genres'][:1])}: {i['reasons'][0]})"
                        for i in body["items"])
        print(f"demo: {user_id} v{last_version}: {top}", flush=True)


__all__ = ["free_port", "run_stack", "wait_for_port"]
