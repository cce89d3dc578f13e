"""Helpers shared by the operators' tests (tests/integration/test_ops.py, tests/browser): the flow and
the API as real processes, and readers for what operators see (the Kafka consumer group, metrics)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from encore.local import ManagedProcess, free_port, wait_for_port
from encore.settings import Settings


def start_flow(settings: Settings, log_dir: Path) -> ManagedProcess:
    """`encore flow` as production runs it, with Bytewax's own API on a free port (not 3030, so
    parallel flows do not collide)."""
    env = {**settings.to_env(), "BYTEWAX_DATAFLOW_API_PORT": str(free_port())}
    return ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"],
                          log_dir / f"flow-{settings.namespace}.log", env=env).start()


def start_api(settings: Settings, log_dir: Path) -> tuple[ManagedProcess, str]:
    """`encore serve` on a free port; returns it and its base URL once it answers /healthz."""
    port = free_port()
    api = ManagedProcess("api", [sys.executable, "-m", "encore.cli", "serve", "--port", str(port)],
                         log_dir / f"api-{settings.namespace}.log",
                         env={**settings.to_env(), "ENCORE_API_PORT": str(port)}).start()
    wait_for_port(port, timeout_s=30)
    url = f"http://127.0.0.1:{port}"
    httpx.get(f"{url}/healthz", timeout=10).raise_for_status()
    return api, url


def encore_lag(settings: Settings, *args: str) -> str:
    """Run `encore lag` as an operator would; returns its output."""
    done = subprocess.run([sys.executable, "-m", "encore.cli", "lag", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **settings.to_env()})
    assert done.returncode == 0, done.stderr
    return done.stdout


def group_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets, read as Kafka lag tools read them (OffsetFetch)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    result = futures[group].result(10)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def scrape(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text → sample name → [(labels, value)]."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples
