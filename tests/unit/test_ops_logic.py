"""The operators' arithmetic without a broker: lag, freshness histogram, rates, the lag table, the
Prometheus collector's output, and the deploy files' consistency with the metrics we export."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from encore.bytewax_api import with_bytewax_api
from encore.lag_cli import render
from schemas.keys import FRESHNESS_BUCKETS_MS, KeyLayout, freshness_bucket
from schemas.topics import Topics
from serving.lag import LagMonitor, LagUnavailable, lag_of, lag_seconds_of
from serving.metrics import OpsCollector
from serving.ops_stats import BOUNDS_MS, FlowStats, Freshness, StatsHistory

ROOT = Path(__file__).resolve().parents[2]


def test_lag_is_end_minus_the_next_offset_to_process_and_seconds_are_zero_when_caught_up() -> None:
    assert lag_of(end_offset=120, processed_offset=100) == 20
    assert lag_of(end_offset=100, processed_offset=100) == 0
    assert lag_of(end_offset=100, processed_offset=130) == 0
    assert lag_seconds_of(0, now_ms=50_000, oldest_unprocessed_ms=1_000) == 0.0
    assert lag_seconds_of(3, now_ms=50_000, oldest_unprocessed_ms=20_000) == 30.0
    assert lag_seconds_of(3, now_ms=10_000, oldest_unprocessed_ms=20_000) == 0.0  # clock skew


def _freshness(samples_ms: list[float]) -> Freshness:
    raw: dict[str, Any] = {"sum_ms": sum(samples_ms), "count": len(samples_ms)}
    for sample in samples_ms:
        bucket = freshness_bucket(sample)
        raw[bucket] = raw.get(bucket, 0) + 1
    return Freshness.parse({k.encode(): str(v).encode() for k, v in raw.items()})


def test_the_freshness_histogram_becomes_cumulative_buckets_and_quantiles() -> None:
    fresh = _freshness([3, 4, 20, 20, 20, 40, 400, 900, 45_000, 2_000])
    cumulative = fresh.cumulative()
    assert [bound for bound, _ in cumulative] == [b / 1000 for b in FRESHNESS_BUCKETS_MS] + [math.inf]
    assert [count for _, count in cumulative][:3] == [2, 2, 5]
    assert cumulative[-1][1] == 10 == fresh.count
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(cumulative))
    assert 10 < fresh.quantile(0.5) <= 25  # the 5th sample sits in the 10–25 ms bucket
    assert fresh.quantile(0.99) == FRESHNESS_BUCKETS_MS[-1]  # beyond the last bound: that bound
    assert fresh.mean_ms == pytest.approx(sum([3, 4, 20, 20, 20, 40, 400, 900, 45_000, 2_000]) / 10)
    assert Freshness().quantile(0.5) is None and Freshness().mean_ms is None
    recent = _freshness([3, 4, 20, 20, 20, 40, 400, 900, 45_000, 2_000, 7, 8]).minus(fresh)
    assert recent.count == 2 and recent.quantile(0.5) <= 10


def test_rates_come_from_counter_deltas_over_the_window() -> None:
    history = StatsHistory(window_s=10)

    def reading(at_s: float, applied: int, dead: int) -> FlowStats:
        counters = {"events_applied": applied, "events_duplicate": 0, "profile_writes": applied,
                    "tracks_upserted": 0}
        return FlowStats(counters=counters,
                         dead_letters={"invalid_json": dead}, read_at_ms=int(at_s * 1000))

    assert history.add(reading(0, 0, 0)) is None
    window = history.add(reading(2, 100, 4))
    assert window is not None and window.seconds == 2
    assert window.rates["events_applied"] == 50 and window.dead_letters_per_s == 2
    for t in range(3, 30):
        window = history.add(reading(t, 50 * t, 0))
    assert window is not None and window.seconds <= 11 and window.rates["events_applied"] == 50


class FakeReader:
    """The Kafka side of lag, scripted: log offsets and the timestamp at each offset."""

    def __init__(self, log: dict[tuple[str, int], tuple[int, int]], ts: dict[tuple[str, int, int], int]):
        self.log = log
        self.ts = ts
        self.down = False

    def log_offsets(self, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
        if self.down:
            raise LagUnavailable("Kafka is unreachable")
        return {tp: v for tp, v in self.log.items() if tp[0] in topics}

    def timestamp_at(self, topic: str, partition: int, offset: int) -> int | None:
        return self.ts.get((topic, partition, offset))


class FakeRedis:
    """What the lag monitor and the collector read from Redis, as redis-py returns it."""

    def __init__(self, offsets: dict[str, float], times: dict[str, int], counters: dict[str, int]) -> None:
        self.offsets, self.times, self.counters = offsets, times, counters

    def pipeline(self, transaction: bool = False) -> FakeRedis:
        self.queued: list[Any] = []
        return self

    def zrange(self, *_: Any, **__: Any) -> None:
        self.queued.append([(k.encode(), v) for k, v in self.offsets.items()])

    def hgetall(self, key: str) -> None:
        if key.endswith("offset_times"):
            self.queued.append({k.encode(): str(v).encode() for k, v in self.times.items()})
        elif key.endswith("counters"):
            self.queued.append({k.encode(): str(v).encode() for k, v in self.counters.items()})
        elif key.endswith("dead_letters"):
            self.queued.append({b"invalid_json": b"2"})
        else:
            self.queued.append({b"le_50": b"3", b"sum_ms": b"90", b"count": b"3"})

    def get(self, _key: str) -> None:
        self.queued.append(b"1000")

    def execute(self) -> list[Any]:
        return self.queued


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def _monitor() -> tuple[LagMonitor, FakeReader, Clock]:
    topics = Topics("enc")
    reader = FakeReader(
        log={("enc.events", 0): (0, 120), ("enc.events", 1): (10, 50), ("enc.tracks", 0): (0, 7)},
        ts={("enc.events", 0, 100): 96_000, ("enc.events", 1, 10): 90_000},
    )
    client = FakeRedis(offsets={"enc.events:0": 100, "enc.tracks:0": 7}, times={"enc.events:0": 95_500},
                       counters={"events_applied": 42})
    clock = Clock()
    monitor = LagMonitor(reader, client, KeyLayout("enc"), topics.consumed,  # type: ignore[arg-type]
                         topics.consumer_group, ttl_s=1.0, clock=clock)
    return monitor, reader, clock


def test_the_lag_report_per_partition_per_topic_and_cached_for_its_ttl() -> None:
    monitor, reader, clock = _monitor()
    report = monitor.report()
    body = report.to_dict()
    assert body["group"] == "enc-flow"
    events, tracks = body["topics"]
    assert events["topic"] == "enc.events" and tracks["topic"] == "enc.tracks"
    p0, p1 = events["partitions"]
    assert (p0["end_offset"], p0["processed_offset"]) == (120, 100)
    assert (p0["lag_messages"], p0["lag_seconds"]) == (20, 4.0)
    # Nothing recorded for partition 1: the flow's position is the log start (offset 10).
    assert (p1["processed_offset"], p1["lag_messages"], p1["lag_seconds"]) == (10, 40, 10.0)
    assert events["lag_messages"] == 60 and events["lag_seconds"] == 10.0
    assert tracks["lag_messages"] == 0 and tracks["lag_seconds"] == 0.0
    assert body["lag_messages"] == 60 and body["lag_seconds"] == 10.0

    reader.down = True
    assert monitor.report() is report  # within the TTL: shared, no new reads
    clock.now += 2
    with pytest.raises(LagUnavailable):
        monitor.report()


def test_rates_per_partition_from_successive_reports() -> None:
    monitor, reader, clock = _monitor()
    monitor.report()
    clock.now += 2
    reader.log[("enc.events", 0)] = (0, 140)
    monitor._client.offsets["enc.events:0"] = 130  # type: ignore[attr-defined]
    report = monitor.report()
    rates = {(p.topic, p.partition): p.rate_per_s for p in report.partitions()}
    assert rates[("enc.events", 0)] == 15.0 and rates[("enc.events", 1)] == 0.0


def test_the_lag_table_has_a_row_per_partition_and_a_total_per_topic() -> None:
    monitor, _, _ = _monitor()
    stats = FlowStats.parse({b"events_applied": b"1234"}, {b"invalid_json": b"2"},
                            {b"le_50": b"1", b"count": b"1"}, b"99000", now_ms=100_000)
    table = render(monitor.report(), stats)
    lines = table.splitlines()
    assert lines[0].startswith("consumer group enc-flow") and "lag 60 messages, 10.00 s" in lines[0]
    assert re.search(r"^enc\.events\s+0\s+120\s+100\s+20\s+4\.00\s+-$", table, re.MULTILINE)
    assert re.search(r"^enc\.events\s+total\s+60\s+10\.00", table, re.MULTILINE)
    assert "events processed 1,234" in lines[-1] and "invalid_json 2" in lines[-1]
    assert "heartbeat 1.0 s ago" in lines[-1]


def _scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_the_collector_exports_lag_like_kafka_lag_exporter_and_the_flow_counters() -> None:
    monitor, reader, clock = _monitor()
    registry = CollectorRegistry()
    registry.register(OpsCollector(monitor, monitor._client, KeyLayout("enc"),  # type: ignore[arg-type]
                                   catalog_size=lambda: 600))
    samples = _scrape(registry)
    lag = {(s["topic"], s["partition"]): v for s, v in samples["kafka_consumergroup_group_lag"]}
    assert lag == {("enc.events", "0"): 20, ("enc.events", "1"): 40, ("enc.tracks", "0"): 0}
    assert all(s["group"] == "enc-flow" for s, _ in samples["kafka_consumergroup_group_lag_seconds"])
    assert samples["kafka_consumergroup_group_max_lag_seconds"] == [({"group": "enc-flow"}, 10.0)]
    assert samples["kafka_consumergroup_group_sum_lag"] == [({"group": "enc-flow"}, 60)]
    assert samples["encore_events_processed_total"] == [({}, 42)]
    assert samples["encore_dead_letters_total"] == [({"reason": "invalid_json"}, 2)]
    buckets = dict((s["le"], v) for s, v in samples["encore_freshness_seconds_bucket"])
    assert buckets["0.05"] == 3 and buckets["+Inf"] == 3 and buckets["0.025"] == 0
    assert samples["encore_freshness_seconds_count"] == [({}, 3)]
    assert samples["encore_freshness_seconds_sum"] == [({}, 0.09)]
    assert samples["encore_catalog_tracks"] == [({}, 600)]

    reader.down = True
    clock.now += 5
    down = _scrape(registry)  # a broken source never breaks the scrape
    assert ({"source": "kafka"}, 0.0) in down["encore_ops_source_up"]
    assert "kafka_consumergroup_group_lag" not in down and "encore_events_processed_total" in down


def test_bytewax_api_is_on_unless_switched_off() -> None:
    data = Path("/data")
    assert with_bytewax_api({"PATH": "/bin"}, data) == {
        "PATH": "/bin", "BYTEWAX_DATAFLOW_API_ENABLED": "true",
        "BYTEWAX_DATAFLOW_API_CACHE_PATH": "/data"}
    on = with_bytewax_api({"BYTEWAX_DATAFLOW_API_ENABLED": "1"}, data)
    assert on["BYTEWAX_DATAFLOW_API_ENABLED"] == "1"
    for off in ("false", "0", "off", "No", ""):
        env = with_bytewax_api({"BYTEWAX_DATAFLOW_API_ENABLED": off}, data)
        assert "BYTEWAX_DATAFLOW_API_ENABLED" not in env and "BYTEWAX_DATAFLOW_API_CACHE_PATH" not in env


def test_freshness_bounds_follow_the_key_layout() -> None:
    assert BOUNDS_MS[:-1] == tuple(float(b) for b in FRESHNESS_BUCKETS_MS) and math.isinf(BOUNDS_MS[-1])


# ---- deploy files ---------------------------------------------------------------------------------

EXPORTED = {
    "kafka_consumergroup_group_lag", "kafka_consumergroup_group_lag_seconds",
    "kafka_consumergroup_group_offset", "kafka_partition_latest_offset", "kafka_partition_earliest_offset",
    "kafka_consumergroup_group_topic_sum_lag",
    "kafka_consumergroup_group_max_lag", "kafka_consumergroup_group_max_lag_seconds",
    "kafka_consumergroup_group_sum_lag", "encore_events_processed_total", "encore_events_duplicate_total",
    "encore_profile_writes_total", "encore_tracks_upserted_total", "encore_dead_letters_total",
    "encore_freshness_seconds_bucket", "encore_freshness_seconds_sum", "encore_freshness_seconds_count",
    "encore_flow_heartbeat_age_seconds", "encore_flow_heartbeat_timestamp_seconds", "encore_ops_source_up",
    "encore_catalog_tracks", "encore_http_request_duration_seconds_bucket",
    "encore_http_request_duration_seconds_count", "encore_http_request_duration_seconds_sum", "up",
}
"""Series the API exports (plus Prometheus's own `up`); what the deploy files may query."""

def _metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(?:kafka|encore)_[a-z0-9_]+", expr))


def test_the_alert_rules_parse_and_use_only_exported_metrics() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in alerts}
    assert {"EncoreLagSecondsHigh", "EncoreFlowStalled"} <= names
    for rule in alerts:
        assert rule["expr"] and rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        unknown = _metrics_in(rule["expr"]) - EXPORTED
        assert not unknown, f"{rule['alert']} queries {unknown}"


def test_the_prometheus_config_scrapes_the_api_and_loads_the_rules() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["encore-api"].get("metrics_path", "/metrics") == "/metrics"
    assert "encore-flow" in jobs  # Bytewax's own metrics
    assert "alerts.yml" in " ".join(config["rule_files"])


def test_the_grafana_dashboard_has_the_ops_page_panels_on_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "encore-dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    titles = {p["title"] for p in panels}
    assert {"Lag per partition", "Lag in seconds", "Throughput", "Freshness", "Dead letters"} <= titles
    for panel in panels:
        for target in panel.get("targets", []):
            unknown = _metrics_in(target["expr"]) - EXPORTED
            assert not unknown, f"{panel['title']} queries {unknown}"
