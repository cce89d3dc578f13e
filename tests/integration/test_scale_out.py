"""Scale-out on the real components: the flow as several Bytewax processes gives the same profiles.

The same fixed stream goes through a one-process flow (the reference) and through
`encore flow --processes 2` over topics of 4 partitions. Each process reads its share of the
partitions, and events are exchanged between the processes to whichever process owns the user's
state, so the profiles match only if every user's events are still applied in partition order.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from confluent_kafka import Producer

from encore.local import ManagedProcess, create_topics
from encore.settings import Settings
from schemas.keys import KeyLayout
from schemas.profile_codec import UserProfile
from schemas.topics import Topics
from tests.integration.conftest import Env, Services, wait_for
from tests.integration.streams import listening_stream
from tests.integration.test_delivery import _assert_same_profiles, _load_catalog, _produce, _wait_complete

pytestmark = pytest.mark.integration

EVENTS = 6_000
USERS = 150
PARTITIONS = 4


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return listening_stream(EVENTS, USERS, seed=23)


def _partitioned_env(services: Services, partitions: int = PARTITIONS) -> Env:
    """A namespace of its own whose topics have `partitions` partitions."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({}).with_(
        kafka_bootstrap=services.bootstrap, redis_url=services.redis_url, namespace=namespace,
        partitions=partitions, catalog_refresh_s=0.2, data_dir=services.workdir / namespace)
    create_topics(services.bootstrap, Topics(namespace).all(), partitions=partitions)
    return Env(services, settings, Topics(namespace), KeyLayout(namespace),
               redis.Redis.from_url(services.redis_url),
               Producer({"bootstrap.servers": services.bootstrap, "linger.ms": 5}))


def _two_free_ports() -> int:
    """A port p with p and p + 1 both free (Bytewax's API of process 0 and 1)."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports")


def _start_flow(env: Env, processes: int, api_port: int | None = None) -> ManagedProcess:
    api = ({"BYTEWAX_DATAFLOW_API_ENABLED": "true", "BYTEWAX_DATAFLOW_API_PORT": str(api_port)}
           if api_port else {"BYTEWAX_DATAFLOW_API_ENABLED": "false"})
    log_path = env.services.workdir / "logs" / f"flow-{env.settings.namespace}-{processes}.log"
    return ManagedProcess(
        "flow", [sys.executable, "-m", "encore.cli", "flow", "--processes", str(processes)], log_path,
        env={**env.settings.to_env(), **api},
    ).start()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited, only its parent has not collected it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _bytewax_processes(flow: ManagedProcess, count: int) -> list[int]:
    return wait_for(lambda: (c if len(c := _children(flow.pid)) == count else None), 30,
                    f"{count} Bytewax processes under `encore flow`")


def _events_applied_by_process(api_port: int, processes: int) -> list[float]:
    """Per process: the items its profile step took in (Bytewax's own metrics)."""
    applied = []
    for process_id in range(processes):
        text = httpx.get(f"http://127.0.0.1:{api_port + process_id}/metrics", timeout=5).text
        applied.append(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith("bytewax_item_inp_count_total{")
                           and 'step_id="encore.update_profile"' in line))
    return applied


@pytest.fixture(scope="module")
def one_process_run(services: Services, stream: list[dict[str, Any]]) -> dict[str, UserProfile]:
    """The reference: the stream through a flow of one process."""
    env = _partitioned_env(services)
    flow = _start_flow(env, processes=1)
    try:
        _load_catalog(env)
        _produce(env, stream)
        return _wait_complete(env, stream, timeout_s=90)
    finally:
        flow.stop()


@pytest.fixture
def scaled_env(services: Services) -> Iterator[Env]:
    env = _partitioned_env(services)
    try:
        yield env
    finally:
        env.producer.flush(5)
        env.redis.close()


def test_two_processes_give_the_same_profiles_as_one(
    scaled_env: Env, stream: list[dict[str, Any]], one_process_run: dict[str, UserProfile]
) -> None:
    env = scaled_env
    api_port = _two_free_ports()
    flow = _start_flow(env, processes=2, api_port=api_port)
    try:
        workers = _bytewax_processes(flow, 2)
        _load_catalog(env)
        _produce(env, stream)
        profiles = _wait_complete(env, stream, timeout_s=90)
        applied = _events_applied_by_process(api_port, 2)
        assert flow.alive() and all(_alive(pid) for pid in workers)
    finally:
        code = flow.stop()
    print(f"events into the profile step per process: {applied}")
    _assert_same_profiles(one_process_run, profiles)
    assert len(profiles) == USERS
    assert sum(applied) == len(stream)
    assert all(count > 0 for count in applied), f"a process applied nothing: {applied}"
    # SIGTERM stops the flow and both of its processes, as a clean exit.
    assert code == 0, flow.tail(20)
    assert not any(_alive(pid) for pid in workers)


def test_when_one_process_dies_the_flow_stops_the_other_and_fails(scaled_env: Env) -> None:
    flow = _start_flow(scaled_env, processes=2)
    try:
        first, second = _bytewax_processes(flow, 2)
        time.sleep(1.0)  # let them connect to each other
        os.kill(second, signal.SIGKILL)
        wait_for(lambda: not flow.alive(), 30, "`encore flow` to exit")
    finally:
        flow.stop()
    assert flow.process is not None and flow.process.returncode not in (0, None)
    assert not _alive(first), "the surviving process was left running"
    assert "process 1 ended (signal 9)" in flow.tail(40)


def test_a_flow_resumed_on_more_processes_gives_the_same_profiles(
    scaled_env: Env, stream: list[dict[str, Any]], one_process_run: dict[str, UserProfile]
) -> None:
    """Resuming is rescaling: snapshots taken by one process are routed by key to two."""
    env = scaled_env
    env.settings = env.settings.with_(snapshot_interval_s=1)
    half = len(stream) // 2
    flow = _start_flow(env, processes=1)
    try:
        _load_catalog(env)
        _produce(env, stream[:half])
        _wait_complete(env, stream[:half], timeout_s=60)
        time.sleep(1.5)  # a snapshot after the first half
    finally:
        flow.stop()
    flow = _start_flow(env, processes=2)
    try:
        _bytewax_processes(flow, 2)
        _produce(env, stream[half:])
        profiles = _wait_complete(env, stream, timeout_s=90)
    finally:
        flow.stop()
    _assert_same_profiles(one_process_run, profiles)
    counters = {k.decode(): int(v) for k, v in env.redis.hgetall(env.keys.ops_counters).items()}
    # The second run resumed from the snapshot: at most a few seconds' worth of events re-applied.
    assert len(stream) <= counters["events_applied"] < len(stream) + half // 2


def test_processes_started_one_by_one_as_on_separate_machines(
    scaled_env: Env, stream: list[dict[str, Any]], one_process_run: dict[str, UserProfile]
) -> None:
    """`encore flow --process-id I --addresses ...`, each with a data dir of its own as on its own
    machine: process 0 makes every recovery partition, process 1 holds none, and the flow works."""
    env = scaled_env
    addresses = ";".join(f"127.0.0.1:{_two_free_ports()}" for _ in range(2))
    flows = []
    for process_id in (1, 0):  # the order machines come up in does not matter
        settings = env.settings.with_(data_dir=env.settings.data_dir / f"machine-{process_id}")
        log_path = env.services.workdir / "logs" / f"flow-{settings.namespace}-member-{process_id}.log"
        flows.append(ManagedProcess(
            f"flow-{process_id}",
            [sys.executable, "-m", "encore.cli", "flow", "--process-id", str(process_id),
             "--addresses", addresses],
            log_path, env={**settings.to_env(), "BYTEWAX_DATAFLOW_API_ENABLED": "false"},
        ).start())
    try:
        _load_catalog(env)
        _produce(env, stream)
        profiles = _wait_complete(env, stream, timeout_s=90)
        assert all(flow.alive() for flow in flows)
    finally:
        for flow in flows:
            flow.stop()
    _assert_same_profiles(one_process_run, profiles)
    recovery = {i: sorted(p.name for p in (env.settings.data_dir / f"machine-{i}" / "recovery" /
                                           env.settings.namespace).glob("part-*.sqlite3"))
                for i in (0, 1)}
    assert recovery == {0: [f"part-{i}.sqlite3" for i in range(PARTITIONS)], 1: []}
