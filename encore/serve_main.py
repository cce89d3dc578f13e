"""Entry point for uvicorn: `uvicorn --factory encore.serve_main:create_app_from_env`."""

from __future__ import annotations

from fastapi import FastAPI

from encore.settings import Settings
from serving.app import create_app
from serving.config import ServingConfig


def serving_config(settings: Settings) -> ServingConfig:
    return ServingConfig(
        brokers=settings.require_kafka().split(","),
        redis_url=settings.require_redis(),
        namespace=settings.namespace,
        catalog_refresh_s=settings.catalog_refresh_s,
    )


def create_app_from_env() -> FastAPI:
    return create_app(serving_config(Settings.from_env()))
