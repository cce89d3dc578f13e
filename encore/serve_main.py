"""Entry point for uvicorn: `uvicorn --factory encore.serve_main:create_app_from_env`."""

from __future__ import annotations

from fastapi import FastAPI

from encore.settings import Settings, SettingsError
from serving.app import create_app
from serving.auth import ApiKeyConfigError, parse_api_keys
from serving.config import ServingConfig


def serving_config(settings: Settings) -> ServingConfig:
    try:
        api_keys = parse_api_keys(settings.api_keys) if settings.api_keys else []
    except ApiKeyConfigError as exc:
        raise SettingsError(f"ENCORE_API_KEYS: {exc}") from None
    return ServingConfig(
        brokers=settings.require_kafka().split(","),
        redis_url=settings.require_redis(),
        namespace=settings.namespace,
        catalog_refresh_s=settings.catalog_refresh_s,
        api_keys=api_keys,
        max_body_bytes=settings.max_body_bytes,
        cors_origins=list(settings.cors_origins),
        recs_cache_size=settings.recs_cache_size,
        recs_cache_ttl_s=settings.recs_cache_ttl_s,
        repeat_cooldown_s=settings.repeat_cooldown_s,
        ranking=settings.ranking_config,
        search_embeddings=settings.search_embeddings,
        experiments=settings.experiments,
    )


def create_app_from_env() -> FastAPI:
    return create_app(serving_config(Settings.from_env()))
