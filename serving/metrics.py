"""Prometheus metrics of the API: `GET /metrics`.

Flow and lag metrics are read from Kafka and Redis at scrape time by a custom collector, so every
API replica reports the same numbers and a restarted replica loses nothing. Lag gauges carry the
names and labels of kafka-lag-exporter (`kafka_consumergroup_group_lag{group,topic,partition}`, ...),
so dashboards and alerts written for it work unchanged. What the replica itself measures (request
latency by route template, answers per experiment variant, its catalog's size, generation and
update times) lives in the process's own registry (`registries`).

**Several workers** (`encore serve --workers N`): each worker is a process with its own memory, so
`encore serve` sets `PROMETHEUS_MULTIPROC_DIR` to a fresh directory and prometheus_client keeps every
worker's counters, histograms and gauges in files there; `/metrics`, whichever worker answers it,
sums counters and histograms over all workers (`MultiProcessCollector`), so a scrape sees every
request once. Gauges say how they combine: `encore_catalog_tracks` is the smallest catalog a live
worker serves (`livemin`: it equals each worker's once all caught up), `encore_catalog_generation`
is per worker (`liveall`, labelled `pid`). A worker marks itself dead when it stops
(`forget_this_process`), so its gauges leave the scrape; its counts stay in the sums.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from prometheus_client import CollectorRegistry, Gauge, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ranking.experiments import Experiment, report
from schemas.keys import KeyLayout
from schemas.values import decode_outcomes
from serving.lag import LagMonitor, LagReport, LagUnavailable
from serving.ops_stats import FlowStats, read_stats

if TYPE_CHECKING:
    from ranking.catalog_view import CatalogView

log = logging.getLogger(__name__)

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own switch: set before it is imported, every metric value lives in a file."""

CATALOG_UPDATE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                            120.0)

REQUEST_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

COUNTER_METRICS = {
    "events_applied": ("encore_events_processed", "Listening events applied to profiles."),
    "events_duplicate": ("encore_events_duplicate", "Events skipped as repeats of an applied event_id."),
    "profile_writes": ("encore_profile_writes", "Profile writes to Redis (one per touched user per batch)."),
    "tracks_upserted": ("encore_tracks_upserted", "Catalog tracks upserted by the flow."),
    "events_held": ("encore_events_held", "Events held because the catalog did not know their track yet."),
    "events_released": ("encore_events_released",
                        "Held events applied (their track arrived, or they waited too long)."),
    "events_forgotten": ("encore_events_forgotten", "Events dropped as older than their listener's forget."),
    "users_forgotten": ("encore_users_forgotten", "Forget requests (tombstones) applied by the flow."),
}


def _format_le(bound_s: float) -> str:
    return "+Inf" if math.isinf(bound_s) else repr(bound_s)


class OpsCollector(Collector):
    """Reads the flow's progress, counters and freshness from Redis, and the log ends from Kafka,
    on each scrape. A source that cannot be read shows as `encore_ops_source_up{source} 0`."""

    def __init__(self, monitor: LagMonitor, client: redis.Redis, keys: KeyLayout,
                 catalog_size: Callable[[], int] | None = None) -> None:
        self._monitor = monitor
        self._client = client
        self._keys = keys
        self._catalog_size = catalog_size

    def describe(self) -> list[Metric]:
        return []  # read on scrape: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("encore_ops_source_up", "1 if the source could be read for this scrape.",
                               labels=["source"])
        try:
            report = self._monitor.report()
        except LagUnavailable as exc:
            log.warning("metrics: lag unavailable: %s", exc)
            report = None
        up.add_metric(["kafka"], 1.0 if report is not None else 0.0)
        try:
            stats = read_stats(self._client, self._keys)
        except redis.RedisError as exc:
            log.warning("metrics: Redis unavailable: %s", exc)
            stats = None
        up.add_metric(["redis"], 1.0 if stats is not None else 0.0)
        yield up
        if report is not None:
            yield from self._lag(report)
        if stats is not None:
            yield from self._flow(stats)
        if self._catalog_size is not None:
            yield GaugeMetricFamily("encore_catalog_tracks", "Tracks in this replica's in-memory catalog.",
                                    value=self._catalog_size())

    def _lag(self, report: LagReport) -> Iterator[Metric]:
        group = report.group
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_group_lag",
                                "Messages behind: log end offset minus the flow's processed offset.",
                                labels=labels)
        lag_s = GaugeMetricFamily("kafka_consumergroup_group_lag_seconds",
                                  "Age of the oldest unprocessed message in seconds (0 when caught up).",
                                  labels=labels)
        offset = GaugeMetricFamily("kafka_consumergroup_group_offset",
                                   "The flow's next offset to process (processed + 1), as committed.",
                                   labels=labels)
        latest = GaugeMetricFamily("kafka_partition_latest_offset", "The partition's log end offset.",
                                   labels=["topic", "partition"])
        earliest = GaugeMetricFamily("kafka_partition_earliest_offset", "The partition's log start offset.",
                                     labels=["topic", "partition"])
        for p in report.partitions():
            values = [group, p.topic, str(p.partition)]
            lag.add_metric(values, p.lag_messages)
            lag_s.add_metric(values, p.lag_seconds)
            offset.add_metric(values, p.processed_offset)
            latest.add_metric([p.topic, str(p.partition)], p.end_offset)
            earliest.add_metric([p.topic, str(p.partition)], p.beginning_offset)
        topic_sum = GaugeMetricFamily("kafka_consumergroup_group_topic_sum_lag",
                                      "Messages behind, summed over a topic's partitions.",
                                      labels=["group", "topic"])
        for topic in report.topics:
            topic_sum.add_metric([group, topic.topic], topic.lag_messages)
        yield from (lag, lag_s, offset, latest, earliest, topic_sum)
        partitions = list(report.partitions())
        for name, doc, value in (
            ("kafka_consumergroup_group_max_lag", "The largest lag in messages of any partition.",
             max((p.lag_messages for p in partitions), default=0)),
            ("kafka_consumergroup_group_max_lag_seconds", "The largest lag in seconds of any partition.",
             report.lag_seconds),
            ("kafka_consumergroup_group_sum_lag", "Messages behind, summed over all partitions.",
             report.lag_messages),
        ):
            family = GaugeMetricFamily(name, doc, labels=["group"])
            family.add_metric([group], value)
            yield family

    def _flow(self, stats: FlowStats) -> Iterator[Metric]:
        for key, (name, doc) in COUNTER_METRICS.items():
            yield CounterMetricFamily(name, doc, value=stats.counters.get(key, 0))
        dead = CounterMetricFamily("encore_dead_letters",
                                   "Messages sent to the dead-letter topic, by reason.", labels=["reason"])
        for reason, count in sorted(stats.dead_letters.items()):
            dead.add_metric([reason], count)
        yield dead
        fresh = HistogramMetricFamily(
            "encore_freshness_seconds",
            "Event to profile written: broker timestamp of the event until its profile write.")
        fresh.add_metric([], [(_format_le(b), c) for b, c in stats.freshness.cumulative()],
                         sum_value=stats.freshness.sum_ms / 1000)
        yield fresh
        if stats.ranker is not None and stats.ranker.metrics:
            for name, doc in RANKER_METRICS.items():
                family = GaugeMetricFamily(f"encore_ranker_{name}", doc, labels=["model"])
                for model, value in sorted(stats.ranker.metrics.get(name, {}).items()):
                    family.add_metric([model], value)
                yield family
            yield CounterMetricFamily("encore_ranker_examples", "Events the learned ranker has learned from.",
                                      value=stats.ranker.examples)
        if stats.heartbeat_ms is not None:
            yield GaugeMetricFamily("encore_flow_heartbeat_timestamp_seconds",
                                    "Wall-clock time of the flow's last heartbeat.",
                                    value=stats.heartbeat_ms / 1000)
            yield GaugeMetricFamily("encore_flow_heartbeat_age_seconds",
                                    "Seconds since the flow's last heartbeat.", value=stats.heartbeat_age_s)


RANKER_METRICS = {
    "auc": "Rolling progressive ROC AUC of the ranker: each event scored before it is learned "
           "(model: learned, or the hand-weighted prior on the same events).",
    "log_loss": "Rolling progressive log loss of the ranker (model: learned, prior).",
}


class ExperimentCollector(Collector):
    """Each configured experiment's outcomes by variant, read from the flow's counts at scrape time
    (every replica reports the same numbers)."""

    def __init__(self, client: redis.Redis, keys: KeyLayout, experiments: tuple[Experiment, ...]) -> None:
        self._client = client
        self._keys = keys
        self._experiments = experiments

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if not self._experiments:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for experiment in self._experiments:
                pipe.hgetall(self._keys.experiment_outcomes(experiment.name))
            rows = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: experiment outcomes unavailable: %s", exc)
            return
        outcomes = CounterMetricFamily("encore_experiment_outcomes",
                                       "Events on tracks of an experiment variant's answers, by outcome.",
                                       labels=["experiment", "variant", "outcome"])
        plays = GaugeMetricFamily("encore_experiment_plays",
                                  "Recommended plays of a variant: max(play events, completes + skips).",
                                  labels=["experiment", "variant"])
        rates = GaugeMetricFamily("encore_experiment_rate", "Outcomes per recommended play, by variant.",
                                  labels=["experiment", "variant", "outcome"])
        for experiment, row in zip(self._experiments, rows, strict=True):
            for variant in report(experiment, decode_outcomes(row or {}))["variants"]:
                labels = [experiment.name, variant["name"]]
                for counter, n in variant["counts"].items():
                    outcomes.add_metric([*labels, counter], n)
                plays.add_metric(labels, variant["plays"])
                for name, value in variant["rates"].items():
                    if value["rate"] is not None:
                        rates.add_metric([*labels, name], value["rate"])
        yield from (outcomes, plays, rates)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


def registries() -> tuple[CollectorRegistry, CollectorRegistry]:
    """(where this process's own metrics are registered, what `/metrics` exposes).

    One registry in a single process. With several workers, the own metrics write to the shared
    directory and are exposed only through `MultiProcessCollector`, which reads every worker's
    files (registering them directly too would count this worker twice)."""
    own = CollectorRegistry()
    path = multiprocess_dir()
    if path is None:
        return own, own
    exposed = CollectorRegistry()
    multiprocess.MultiProcessCollector(exposed, path)
    return own, exposed


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty the directory of a previous run's files (they would add its counts to this run's)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def forget_this_process() -> None:
    """On a worker's exit: drop its live gauges from the shared directory (counts stay)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())


class CatalogMetrics:
    """The in-memory catalog of this worker: `LiveCatalog(on_update=CatalogMetrics(...).observe)`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.tracks = Gauge("encore_catalog_tracks", "Tracks in the in-memory catalog (several workers: "
                            "the smallest any live worker serves).", registry=registry,
                            multiprocess_mode="livemin")
        self.generation = Gauge("encore_catalog_generation", "Changes applied to the in-memory catalog "
                                "since the worker started (several workers: one series per pid).",
                                registry=registry, multiprocess_mode="liveall")
        self.updates = Histogram("encore_catalog_update_seconds", "Time to bring the in-memory catalog up "
                                 "to date, by kind: delta (from the change stream) or full (a whole load).",
                                 ["kind"], buckets=CATALOG_UPDATE_BUCKETS_S, registry=registry)

    def observe(self, kind: str, seconds: float, view: CatalogView) -> None:
        self.tracks.set(len(view))
        self.generation.set(view.generation)
        self.updates.labels(kind).observe(seconds)


def request_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("encore_http_request_duration_seconds", "API request latency by route template.",
                     ["method", "route", "status"], buckets=REQUEST_BUCKETS_S, registry=registry)


class RequestTimer:
    """ASGI middleware: observes each HTTP request's duration under its route template
    (`/v1/users/{user_id}/recommendations`, not the raw path, so series stay few)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(scope["method"], template, str(status[0])).observe(
                time.perf_counter() - started)
