"""Entry point for `python -m bytewax.run encore.flow_main:flow`: the dataflow from the settings."""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from encore.cli import configure_logging
from encore.settings import Settings
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
    )


def flow() -> Dataflow:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    config = flow_config(settings)
    start_heartbeat(config.redis_url, config.keys)
    start_offset_committer(config.brokers, config.redis_url, config.keys, config.topics.consumer_group,
                           config.topics.consumed, config.kafka_config)
    return build_flow(config)
