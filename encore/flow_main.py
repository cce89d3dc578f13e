"""Entry point for `python -m bytewax.run encore.flow_main:flow`: the dataflow from the settings.

Bytewax builds the dataflow once in every process of the flow. Each process beats the heartbeat;
only process 0 (or the only one) commits the processed offsets to the consumer group, since every
process would commit the same offsets, read from Redis.
"""

from __future__ import annotations

import gc
import os
from dataclasses import replace

from bytewax.dataflow import Dataflow

from encore.logs import configure_logging
from encore.settings import Settings
from encore.tracing import configure_tracing
from flows.config import FlowConfig
from flows.dataflow import build_flow
from flows.heartbeat import start_heartbeat
from flows.offset_commit import start_offset_committer


def flow_config(settings: Settings) -> FlowConfig:
    return FlowConfig(
        brokers=settings.require_kafka().split(","),
        redis_url=settings.require_redis(),
        namespace=settings.namespace,
        batch_size=settings.flow_batch_size,
        catalog_refresh_s=settings.catalog_refresh_s,
        fetch_wait_ms=settings.kafka_fetch_wait_ms,
        dedupe_horizon_s=settings.dedupe_horizon_s,
        hold_events=settings.hold_events,
        hold_s=settings.hold_s,
        kafka_config=settings.kafka_config,
    )


def tune_garbage_collector() -> None:
    """Make full collections rare: the flow holds long-lived state and makes many short-lived
    objects, and full collections freed nothing while costing a quarter of its CPU
    (docs/benchmarks.md). Young generations are still collected as usual."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 1_000_000)


def flow() -> Dataflow:
    settings = Settings.from_env()
    process_id = os.environ.get("BYTEWAX_PROCESS_ID")  # set by `encore flow` for a multi-process flow
    configure_logging(settings.log_level, tag=f"flow[{process_id}]" if process_id else "",
                      log_format=settings.log_format)
    config = flow_config(settings)
    if configure_tracing(settings, "encore-flow"):
        config = replace(config, tracing=True)
    start_heartbeat(config.redis_url, config.keys)
    if process_id in (None, "", "0"):
        start_offset_committer(config.brokers, config.redis_url, config.keys,
                               config.topics.consumer_group, config.topics.consumed,
                               config.kafka_config)
    dataflow = build_flow(config)
    tune_garbage_collector()
    return dataflow
