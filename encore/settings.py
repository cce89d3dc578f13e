"""Settings from the environment: the one place that names Encore's environment variables.

| variable | default | what |
|---|---|---|
| `ENCORE_KAFKA_BOOTSTRAP` | unset | Kafka bootstrap servers (`host:port,...`). Unset: `encore up` starts an embedded Tansu broker. |
| `ENCORE_REDIS_URL` | unset | Redis URL: `redis://host:port/db` (`rediss://` for TLS) for one server, `redis+cluster://host:port[,host:port...]` (`rediss+cluster://`) for a Redis Cluster (`schemas/redis_url.py`). Unset: `encore up` starts a local `redis-server`. |
| `ENCORE_NAMESPACE` | `encore` | Prefix of topic names (`encore.events`, ...) and of Redis keys. |
| `ENCORE_PARTITIONS` | `4` | Partitions of the topics Encore creates. |
| `ENCORE_API_HOST` | `127.0.0.1` | Address the API binds. |
| `ENCORE_API_PORT` | `8000` | Port the API binds. |
| `ENCORE_API_URL` | `http://127.0.0.1:8000` | Where `encore simulate` and the client send events. |
| `ENCORE_DATA_DIR` | `.encore` | Local state: embedded Redis data, logs. |
| `ENCORE_KAFKA_CONFIG` | unset | Kafka client options as a JSON object of librdkafka names (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`, ...), given to every Kafka client: the flow's source, sink and offset committer, the API's producer, the lag reader, the topic admin and `encore catalog load` (translated for the kafka-python ones, `schemas/kafka_config.py`). Secrets are never printed. |
| `ENCORE_KAFKA_CONFIG_FILE` | unset | A file holding such a JSON object (e.g. a mounted secret); its options win over those of `ENCORE_KAFKA_CONFIG`, so the secrets can live in the file and the rest in the environment. |
| `ENCORE_KAFKA_FETCH_WAIT_MS` | `10` | Longest the flow's Kafka fetch waits at the broker for data; low keeps latency low on brokers (like Tansu) that do not answer a waiting fetch early. |
| `ENCORE_FLOW_BATCH_SIZE` | `4000` | Most Kafka messages the flow takes per poll per partition. |
| `ENCORE_FLOW_PROCESSES` | `1` | Bytewax processes `encore flow` runs on this machine (`--processes` overrides); more than the partition count of `encore.events` leaves some idle. |
| `ENCORE_CATALOG_REFRESH_S` | `1.0` | How often the API and flow check the catalog version. |
| `ENCORE_RECOVERY` | `on` | `on`: the flow runs with Bytewax recovery in `<data dir>/recovery/<namespace>`; `off`: it restarts from the topics' beginning. |
| `ENCORE_DEDUPE_HORIZON_S` | `604800` | Event time (7 days) over which the flow remembers each listener's event ids: a repeat within it is applied once; an event older than this before the listener's newest goes to the dead letters as `too_late` (`flows/dedupe.py`). |
| `ENCORE_HOLD_EVENTS` | `64` | Events the flow keeps per listener while one waits for a track the catalog does not know yet (the held ones and those after them); `0`: such events are applied at once, without their track. |
| `ENCORE_HOLD_S` | `86400` | Event time an event ahead of the catalog waits for its track at most; then it is applied without it. |
| `ENCORE_SNAPSHOT_INTERVAL_S` | `5` | Whole seconds between the flow's recovery snapshots; after a crash at most this much is replayed. |
| `ENCORE_API_KEYS` | unset | API keys as JSON: `[{"name", "key" (or "sha256:<hex>"), "scopes": [write, read, admin], "rate_per_s", "burst"}]`. Unset (and no file): demo mode, no auth. |
| `ENCORE_API_KEYS_FILE` | unset | A file holding the same JSON (takes precedence over `ENCORE_API_KEYS`). |
| `ENCORE_JWT_SECRET` | unset | Shared secret (≥ 32 bytes) for listener tokens signed HS256 (`serving/auth.py`). |
| `ENCORE_JWT_SECRET_FILE` | unset | A file holding that secret (takes precedence). |
| `ENCORE_JWT_JWKS` | unset | A JWKS file path or `https://` URL with the public keys of listener tokens (RS/PS/ES/EdDSA; `kid` picks the key). |
| `ENCORE_JWT_ISSUER` | unset | When set, a listener token's `iss` must equal it. |
| `ENCORE_JWT_AUDIENCE` | unset | When set, a listener token's `aud` must contain it. |
| `ENCORE_JWT_RATE_PER_S` | `20` | Requests per second of one listener's tokens per API worker process (bursts of twice as many). |
| `ENCORE_MAX_BODY_BYTES` | `1048576` | Largest request body the API reads; larger answers 413. |
| `ENCORE_CORS_ORIGINS` | unset | Comma-separated origins allowed to call the API from a browser; unset: none. |
| `ENCORE_RECS_CACHE_SIZE` | `4096` | Finished answers the API keeps per process, keyed by `profile_version` (a new event is never hidden); 0 turns the cache off. |
| `ENCORE_RECS_CACHE_TTL_S` | `5` | Longest a cached answer is served: bounds how old its trending and co-listening may be. |
| `ENCORE_ITEM_STATS_REFRESH_S` | `1.0` | How often the API re-syncs the item statistics it holds in memory (rates, trending, stream popularity) from the flow's change feed: their staleness bound, shown in answers as `stats_age_ms`. |
| `ENCORE_RANKING_CONFIG` | unset | JSON overrides of any `RankingConfig` field (`ranking/config.py`: weights, quotas, sources, thresholds), e.g. `{"artist": 0.5, "quotas": {"popular": 80}}`; an unknown field refuses to start. |
| `ENCORE_REPEAT_COOLDOWN_S` | `21600` | The repeat policy, in the listener's event time: a track played, skipped or liked within this many seconds before the listener's newest event is not recommended again; disliked tracks never are; liked tracks may come back after it (`familiar` asks for some). |
| `ENCORE_EXPERIMENTS` | unset | A/B experiments of ranking variants as JSON: `[{"name", "variants": [{"name", "share", "overrides": {RankingConfig fields}}]}]` (`ranking/experiments.py`); a mistake refuses to start. |
| `ENCORE_SEARCH_EMBEDDINGS` | `on` | `on`: search compares the query with every track by sentence embedding (WordLlama, loaded from its wheel; computed per catalog version); `off`: the other search terms only. |
| `ENCORE_LOG_LEVEL` | `INFO` | Python log level. |
| `ENCORE_LOG_FORMAT` | `text` | `json`: one JSON object per log line (time, level, logger, message, and fields such as `request_id`, `route`, `status`, `latency_ms`); `text`: readable lines. |
| `ENCORE_ACCESS_LOG` | `on` | One log line per API request (method, route, status, latency, request id); `off` turns it off. |
| `ENCORE_OTEL_ENDPOINT` | unset | OTLP/HTTP endpoint for OpenTelemetry traces (e.g. `http://otel-collector:4318`; `/v1/traces` is added); `OTEL_EXPORTER_OTLP_ENDPOINT` works the same, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is taken as the full URL. Unset: no tracing, at no cost. Needs the `otel` extra. |
| `ENCORE_SERVICE_NAME` | `encore-api` / `encore-flow` | The traces' `service.name` (`OTEL_SERVICE_NAME` works too). |
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from flows.config import DEFAULT_BATCH_SIZE
from ranking.config import RANKING_CONFIG, RankingConfig
from ranking.experiments import Experiment, ExperimentConfigError, parse_experiments
from schemas.kafka_config import KafkaClientConfig, KafkaConfigError
from schemas.keys import DEFAULT_NAMESPACE
from schemas.redis_url import RedisUrlError, parse_redis_url, redact_redis_url

MAX_FLOW_PROCESSES = 256


class SettingsError(ValueError):
    """A setting that is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1,
         maximum: int = 2**31 - 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name} must be a positive number, got {raw!r}")
    return value


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _traces_endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP URL traces are posted to: ENCORE_OTEL_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
    (a base URL: `/v1/traces` is added), else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL)."""
    base = env.get("ENCORE_OTEL_ENDPOINT") or None
    if base is None and env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = base or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
    if base is None:
        return None
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def _ranking_overrides(env: Mapping[str, str]) -> str | None:
    raw = (env.get("ENCORE_RANKING_CONFIG") or "").strip()
    if not raw:
        return None
    try:
        overrides = json.loads(raw)
        if not isinstance(overrides, dict):
            raise ValueError("a JSON object of RankingConfig fields is expected")
        RankingConfig.with_overrides(overrides)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"ENCORE_RANKING_CONFIG: {exc}") from None
    return raw


def _experiments(env: Mapping[str, str], ranking: str | None) -> str | None:
    raw = (env.get("ENCORE_EXPERIMENTS") or "").strip()
    if not raw:
        return None
    base = RankingConfig.with_overrides(json.loads(ranking)) if ranking else RANKING_CONFIG
    try:
        parse_experiments(raw, base)
    except (ValueError, ExperimentConfigError) as exc:
        raise SettingsError(f"ENCORE_EXPERIMENTS: {exc}") from None
    return raw


def _api_keys(env: Mapping[str, str]) -> str | None:
    path = env.get("ENCORE_API_KEYS_FILE")
    if path:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise SettingsError(f"ENCORE_API_KEYS_FILE cannot be read: {exc.strerror}") from None
    return env.get("ENCORE_API_KEYS") or None


def _jwt_secret(env: Mapping[str, str]) -> str | None:
    path = env.get("ENCORE_JWT_SECRET_FILE")
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise SettingsError(f"ENCORE_JWT_SECRET_FILE cannot be read: {exc.strerror}") from None
    return env.get("ENCORE_JWT_SECRET") or None


def _kafka_config(env: Mapping[str, str]) -> KafkaClientConfig:
    """ENCORE_KAFKA_CONFIG's options, overridden by ENCORE_KAFKA_CONFIG_FILE's."""
    options: dict[str, object] = {}
    sources = [("ENCORE_KAFKA_CONFIG", env.get("ENCORE_KAFKA_CONFIG") or "")]
    path = env.get("ENCORE_KAFKA_CONFIG_FILE")
    if path:
        try:
            sources.append(("ENCORE_KAFKA_CONFIG_FILE", Path(path).read_text()))
        except OSError as exc:
            raise SettingsError(f"ENCORE_KAFKA_CONFIG_FILE cannot be read: {exc.strerror}") from None
    for name, text in sources:
        if not text.strip():
            continue
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            # Only the position: the text may hold a password.
            raise SettingsError(f"{name} is not valid JSON (line {getattr(exc, 'lineno', '?')}, "
                                f"column {getattr(exc, 'colno', '?')})") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{name} must be a JSON object of Kafka client options")
        options.update(loaded)
    try:
        return KafkaClientConfig.parse(options)
    except KafkaConfigError as exc:
        raise SettingsError(f"ENCORE_KAFKA_CONFIG: {exc}") from None


def redact_url(url: str | None) -> str:
    """A URL fit for logs: any password replaced by `***`.

    >>> redact_url("redis://:hunter2@cache:6379/0")
    'redis://:***@cache:6379/0'
    """
    if not url:
        return ""
    return redact_redis_url(url)


@dataclass(frozen=True)
class Settings:
    """Encore's settings. `repr` leaves out secrets (API keys, passwords in URLs)."""

    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    partitions: int = 4
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path(".encore")
    flow_batch_size: int = DEFAULT_BATCH_SIZE
    kafka_fetch_wait_ms: int = 10
    kafka_config: KafkaClientConfig = field(default_factory=KafkaClientConfig)
    """Kafka client options for every client (librdkafka names; secrets hidden from `repr`)."""
    flow_processes: int = 1
    """Bytewax processes `encore flow` runs on this machine."""
    catalog_refresh_s: float = 1.0
    recovery: bool = True
    snapshot_interval_s: int = 5
    dedupe_horizon_s: int = 7 * 24 * 3600
    hold_events: int = 64
    hold_s: int = 24 * 3600
    api_keys: str | None = None
    """The API keys' JSON (a secret: never logged)."""
    jwt_secret: str | None = None
    """The listener tokens' HS256 secret (never logged)."""
    jwt_jwks: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_rate_per_s: float = 20.0
    max_body_bytes: int = 1_048_576
    cors_origins: tuple[str, ...] = ()
    recs_cache_size: int = 4096
    recs_cache_ttl_s: float = 5.0
    item_stats_refresh_s: float = 1.0
    repeat_cooldown_s: int = 21_600
    ranking_overrides: str | None = None
    """`ENCORE_RANKING_CONFIG`: JSON overrides of `ranking.config.RankingConfig` (checked at start)."""
    search_embeddings: bool = True
    """`ENCORE_SEARCH_EMBEDDINGS`."""
    experiments_json: str | None = None
    """`ENCORE_EXPERIMENTS` (checked at start)."""
    log_level: str = "INFO"
    log_format: str = "text"
    """`text` or `json` (ENCORE_LOG_FORMAT)."""
    access_log: bool = True
    otel_endpoint: str | None = None
    """Where traces go (OTLP over HTTP); None: tracing off."""
    service_name: str | None = None

    @property
    def experiments(self) -> tuple[Experiment, ...]:
        return parse_experiments(self.experiments_json, self.ranking_config) if self.experiments_json else ()

    @property
    def ranking_config(self) -> RankingConfig:
        if not self.ranking_overrides:
            return RANKING_CONFIG
        return RankingConfig.with_overrides(json.loads(self.ranking_overrides))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        api_port = _int(env, "ENCORE_API_PORT", 8000, maximum=65535)
        api_host = env.get("ENCORE_API_HOST") or "127.0.0.1"
        redis_url = env.get("ENCORE_REDIS_URL") or None
        if redis_url:
            try:
                parse_redis_url(redis_url)
            except RedisUrlError as exc:
                raise SettingsError(f"ENCORE_REDIS_URL: {exc}") from None
        ranking_overrides = _ranking_overrides(env)
        return cls(
            kafka_bootstrap=env.get("ENCORE_KAFKA_BOOTSTRAP") or None,
            redis_url=redis_url,
            namespace=env.get("ENCORE_NAMESPACE") or DEFAULT_NAMESPACE,
            partitions=_int(env, "ENCORE_PARTITIONS", 4),
            api_host=api_host,
            api_port=api_port,
            api_url=env.get("ENCORE_API_URL") or f"http://127.0.0.1:{api_port}",
            data_dir=Path(env.get("ENCORE_DATA_DIR") or ".encore"),
            flow_batch_size=_int(env, "ENCORE_FLOW_BATCH_SIZE", DEFAULT_BATCH_SIZE),
            kafka_fetch_wait_ms=_int(env, "ENCORE_KAFKA_FETCH_WAIT_MS", 10, maximum=10_000),
            kafka_config=_kafka_config(env),
            flow_processes=_int(env, "ENCORE_FLOW_PROCESSES", 1, maximum=MAX_FLOW_PROCESSES),
            catalog_refresh_s=_float(env, "ENCORE_CATALOG_REFRESH_S", 1.0),
            recovery=_switch(env, "ENCORE_RECOVERY", True),
            snapshot_interval_s=_int(env, "ENCORE_SNAPSHOT_INTERVAL_S", 5),
            dedupe_horizon_s=_int(env, "ENCORE_DEDUPE_HORIZON_S", 7 * 24 * 3600, minimum=60),
            hold_events=_int(env, "ENCORE_HOLD_EVENTS", 64, minimum=0, maximum=10_000),
            hold_s=_int(env, "ENCORE_HOLD_S", 24 * 3600, minimum=1),
            api_keys=_api_keys(env),
            jwt_secret=_jwt_secret(env),
            jwt_jwks=env.get("ENCORE_JWT_JWKS") or None,
            jwt_issuer=env.get("ENCORE_JWT_ISSUER") or None,
            jwt_audience=env.get("ENCORE_JWT_AUDIENCE") or None,
            jwt_rate_per_s=_float(env, "ENCORE_JWT_RATE_PER_S", 20.0),
            max_body_bytes=_int(env, "ENCORE_MAX_BODY_BYTES", 1_048_576, minimum=1024),
            cors_origins=tuple(o.strip() for o in (env.get("ENCORE_CORS_ORIGINS") or "").split(",")
                               if o.strip()),
            recs_cache_size=_int(env, "ENCORE_RECS_CACHE_SIZE", 4096, minimum=0),
            recs_cache_ttl_s=_float(env, "ENCORE_RECS_CACHE_TTL_S", 5.0),
            item_stats_refresh_s=_float(env, "ENCORE_ITEM_STATS_REFRESH_S", 1.0),
            repeat_cooldown_s=_int(env, "ENCORE_REPEAT_COOLDOWN_S", 21_600, minimum=0, maximum=2**31 - 1),
            ranking_overrides=ranking_overrides,
            experiments_json=_experiments(env, ranking_overrides),
            search_embeddings=_switch(env, "ENCORE_SEARCH_EMBEDDINGS", True),
            log_level=(env.get("ENCORE_LOG_LEVEL") or "INFO").upper(),
            log_format=_choice(env, "ENCORE_LOG_FORMAT", ("text", "json"), "text"),
            access_log=_switch(env, "ENCORE_ACCESS_LOG", True),
            otel_endpoint=_traces_endpoint(env),
            service_name=env.get("ENCORE_SERVICE_NAME") or env.get("OTEL_SERVICE_NAME") or None,
        )

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for child processes."""
        env = {
            "ENCORE_NAMESPACE": self.namespace,
            "ENCORE_PARTITIONS": str(self.partitions),
            "ENCORE_API_HOST": self.api_host,
            "ENCORE_API_PORT": str(self.api_port),
            "ENCORE_API_URL": self.api_url,
            "ENCORE_DATA_DIR": str(self.data_dir),
            "ENCORE_FLOW_BATCH_SIZE": str(self.flow_batch_size),
            "ENCORE_KAFKA_FETCH_WAIT_MS": str(self.kafka_fetch_wait_ms),
            "ENCORE_FLOW_PROCESSES": str(self.flow_processes),
            "ENCORE_CATALOG_REFRESH_S": str(self.catalog_refresh_s),
            "ENCORE_RECOVERY": "on" if self.recovery else "off",
            "ENCORE_SNAPSHOT_INTERVAL_S": str(self.snapshot_interval_s),
            "ENCORE_DEDUPE_HORIZON_S": str(self.dedupe_horizon_s),
            "ENCORE_HOLD_EVENTS": str(self.hold_events),
            "ENCORE_HOLD_S": str(self.hold_s),
            "ENCORE_MAX_BODY_BYTES": str(self.max_body_bytes),
            "ENCORE_CORS_ORIGINS": ",".join(self.cors_origins),
            "ENCORE_RECS_CACHE_SIZE": str(self.recs_cache_size),
            "ENCORE_RECS_CACHE_TTL_S": str(self.recs_cache_ttl_s),
            "ENCORE_ITEM_STATS_REFRESH_S": str(self.item_stats_refresh_s),
            "ENCORE_REPEAT_COOLDOWN_S": str(self.repeat_cooldown_s),
            "ENCORE_SEARCH_EMBEDDINGS": "on" if self.search_embeddings else "off",
            "ENCORE_LOG_LEVEL": self.log_level,
            "ENCORE_LOG_FORMAT": self.log_format,
            "ENCORE_ACCESS_LOG": "on" if self.access_log else "off",
        }
        if self.otel_endpoint:
            env["ENCORE_OTEL_ENDPOINT"] = self.otel_endpoint
        if self.service_name:
            env["ENCORE_SERVICE_NAME"] = self.service_name
        if self.ranking_overrides:
            env["ENCORE_RANKING_CONFIG"] = self.ranking_overrides
        if self.experiments_json:
            env["ENCORE_EXPERIMENTS"] = self.experiments_json
        if self.kafka_bootstrap:
            env["ENCORE_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if self.redis_url:
            env["ENCORE_REDIS_URL"] = self.redis_url
        if self.api_keys:
            env["ENCORE_API_KEYS"] = self.api_keys
        env["ENCORE_JWT_RATE_PER_S"] = str(self.jwt_rate_per_s)
        for name, value in (("ENCORE_JWT_SECRET", self.jwt_secret), ("ENCORE_JWT_JWKS", self.jwt_jwks),
                            ("ENCORE_JWT_ISSUER", self.jwt_issuer), ("ENCORE_JWT_AUDIENCE", self.jwt_audience)):
            if value:
                env[name] = value
        if self.kafka_config:
            env["ENCORE_KAFKA_CONFIG"] = json.dumps(self.kafka_config.librdkafka())
        return env

    @property
    def recovery_dir(self) -> Path:
        """Bytewax recovery partitions of this namespace's flow."""
        return self.data_dir / "recovery" / self.namespace

    def __repr__(self) -> str:
        return (f"Settings(kafka={self.kafka_bootstrap!r}, kafka_config={self.kafka_config.redacted()!r}, "
                f"redis={redact_url(self.redis_url)!r}, namespace={self.namespace!r}, "
                f"api_keys={'<set>' if self.api_keys else None}, "
                f"jwt_secret={'<set>' if self.jwt_secret else None})")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap:
            raise SettingsError("ENCORE_KAFKA_BOOTSTRAP is not set (e.g. localhost:9092)")
        return self.kafka_bootstrap

    def require_redis(self) -> str:
        if not self.redis_url:
            raise SettingsError("ENCORE_REDIS_URL is not set (e.g. redis://localhost:6379/0, or "
                                "redis+cluster://node1:7000,node2:7000 for a Redis Cluster)")
        return self.redis_url
