"""Entry point for uvicorn: `uvicorn --factory encore.serve_main:create_app_from_env`."""

from __future__ import annotations

from dataclasses import replace

from fastapi import FastAPI

from encore.settings import Settings, SettingsError
from serving.app import create_app
from serving.auth import ApiKeyConfigError, TokenConfigError, TokenVerifier, parse_api_keys
from serving.config import ServingConfig


def serving_config(settings: Settings) -> ServingConfig:
    try:
        api_keys = parse_api_keys(settings.api_keys) if settings.api_keys else []
    except ApiKeyConfigError as exc:
        raise SettingsError(f"ENCORE_API_KEYS: {exc}") from None
    tokens = None
    if settings.jwt_secret or settings.jwt_jwks:
        try:
            tokens = TokenVerifier(settings.jwt_secret, settings.jwt_jwks, settings.jwt_issuer,
                                   settings.jwt_audience)
        except TokenConfigError as exc:
            raise SettingsError(str(exc)) from None
    return ServingConfig(
        brokers=settings.require_kafka().split(","),
        redis_url=settings.require_redis(),
        namespace=settings.namespace,
        catalog_refresh_s=settings.catalog_refresh_s,
        api_keys=api_keys,
        tokens=tokens,
        listener_rate_per_s=settings.jwt_rate_per_s,
        max_body_bytes=settings.max_body_bytes,
        cors_origins=list(settings.cors_origins),
        recs_cache_size=settings.recs_cache_size,
        recs_cache_ttl_s=settings.recs_cache_ttl_s,
        item_stats_refresh_s=settings.item_stats_refresh_s,
        repeat_cooldown_s=settings.repeat_cooldown_s,
        ranking=settings.ranking_config,
        kafka_config=settings.kafka_config,
        access_log=settings.access_log,
        search_embeddings=settings.search_embeddings,
        experiments=settings.experiments,
    )


def create_app_from_env() -> FastAPI:
    """The app of `encore serve` (in each uvicorn worker): logging and tracing first."""
    from encore.logs import configure_logging
    from encore.tracing import configure_tracing

    settings = Settings.from_env()
    configure_logging(settings.log_level, log_format=settings.log_format)
    config = serving_config(settings)
    if configure_tracing(settings, "encore-api"):
        config = replace(config, tracing=True)
    return create_app(config)
