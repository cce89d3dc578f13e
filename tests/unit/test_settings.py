"""Settings from the environment: encore/settings.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from encore.settings import Settings, SettingsError, redact_url
from ranking.config import RANKING_CONFIG

ALL_VARS = {
    "ENCORE_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
    "ENCORE_REDIS_URL": "redis://r:6380/2",
    "ENCORE_NAMESPACE": "staging",
    "ENCORE_PARTITIONS": "12",
    "ENCORE_API_HOST": "0.0.0.0",
    "ENCORE_API_PORT": "9001",
    "ENCORE_API_URL": "http://api.internal:9001",
    "ENCORE_DATA_DIR": "/var/lib/encore",
    "ENCORE_FLOW_BATCH_SIZE": "250",
    "ENCORE_KAFKA_FETCH_WAIT_MS": "25",
    "ENCORE_KAFKA_CONFIG": '{"security.protocol": "SSL", "ssl.ca.location": "/ca.pem"}',
    "ENCORE_FLOW_PROCESSES": "3",
    "ENCORE_CATALOG_REFRESH_S": "2.5",
    "ENCORE_RECOVERY": "off",
    "ENCORE_SNAPSHOT_INTERVAL_S": "3",
    "ENCORE_DEDUPE_HORIZON_S": "3600",
    "ENCORE_HOLD_EVENTS": "8",
    "ENCORE_HOLD_S": "600",
    "ENCORE_API_KEYS": '[{"name": "p", "key": "0123456789abcdef", "scopes": ["write"]}]',
    "ENCORE_JWT_SECRET": "jwt-secret-jwt-secret-jwt-secret-42",
    "ENCORE_JWT_JWKS": "/etc/encore/jwks.json",
    "ENCORE_JWT_ISSUER": "https://auth.example",
    "ENCORE_JWT_AUDIENCE": "encore",
    "ENCORE_JWT_RATE_PER_S": "5",
    "ENCORE_MAX_BODY_BYTES": "2048",
    "ENCORE_CORS_ORIGINS": "https://a.example,https://b.example",
    "ENCORE_RECS_CACHE_SIZE": "0",
    "ENCORE_RECS_CACHE_TTL_S": "1.5",
    "ENCORE_ITEM_STATS_REFRESH_S": "0.5",
    "ENCORE_REPEAT_COOLDOWN_S": "10",
    "ENCORE_LOG_LEVEL": "debug",
    "ENCORE_LOG_FORMAT": "json",
    "ENCORE_ACCESS_LOG": "off",
    "ENCORE_OTEL_ENDPOINT": "http://otel:4318",
    "ENCORE_SERVICE_NAME": "encore-api-eu",
    "ENCORE_SEARCH_EMBEDDINGS": "off",
    "ENCORE_EXPERIMENTS": '[{"name": "x", "variants": [{"name": "a", "share": 0.5},'
                          ' {"name": "b", "share": 0.5, "overrides": {"artist": 1.2}}]}]',
}


def test_defaults_from_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.kafka_bootstrap is None
    assert s.redis_url is None
    assert s.namespace == "encore"
    assert s.partitions == 4
    assert s.api_host == "127.0.0.1"
    assert s.api_port == 8000
    assert s.api_url == "http://127.0.0.1:8000"
    assert s.data_dir == Path(".encore")
    assert s.flow_batch_size == 4000
    assert s.catalog_refresh_s == 1.0
    assert s.log_level == "INFO"


def test_empty_strings_mean_default() -> None:
    assert Settings.from_env(dict.fromkeys(ALL_VARS, "")) == Settings()


def test_every_variable_is_parsed() -> None:
    s = Settings.from_env(ALL_VARS)
    assert s.search_embeddings is False
    assert [v.config.artist for v in s.experiments[0].variants] == [RANKING_CONFIG.artist, 1.2]
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.redis_url == "redis://r:6380/2"
    assert s.namespace == "staging"
    assert s.partitions == 12
    assert s.api_host == "0.0.0.0"
    assert s.api_port == 9001
    assert s.api_url == "http://api.internal:9001"
    assert s.data_dir == Path("/var/lib/encore")
    assert s.flow_batch_size == 250
    assert s.flow_processes == 3
    assert s.catalog_refresh_s == 2.5
    assert (s.dedupe_horizon_s, s.hold_events, s.hold_s) == (3600, 8, 600)
    assert (s.jwt_jwks, s.jwt_issuer, s.jwt_audience, s.jwt_rate_per_s) == (
        "/etc/encore/jwks.json", "https://auth.example", "encore", 5.0)
    assert s.log_level == "DEBUG"


def test_api_url_follows_the_port_when_unset() -> None:
    assert Settings.from_env({"ENCORE_API_PORT": "9100"}).api_url == "http://127.0.0.1:9100"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENCORE_PARTITIONS", "7")
    monkeypatch.setenv("ENCORE_NAMESPACE", "from-os")
    s = Settings.from_env()
    assert s.partitions == 7
    assert s.namespace == "from-os"


@pytest.mark.parametrize("name", ["ENCORE_PARTITIONS", "ENCORE_API_PORT", "ENCORE_FLOW_BATCH_SIZE"])
@pytest.mark.parametrize("raw", ["abc", "1.5", "4x", "0x10"])
def test_bad_integer_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize("name", ["ENCORE_PARTITIONS", "ENCORE_API_PORT", "ENCORE_FLOW_BATCH_SIZE",
                                  "ENCORE_FLOW_PROCESSES"])
@pytest.mark.parametrize("raw", ["0", "-1"])
def test_integers_below_one_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value)


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"ENCORE_CATALOG_REFRESH_S": "soon"})
    assert "ENCORE_CATALOG_REFRESH_S" in str(info.value)


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_to_env_round_trips_every_variable() -> None:
    s = Settings.from_env(ALL_VARS)
    env = s.to_env()
    assert set(env) == set(ALL_VARS)
    assert all(isinstance(v, str) for v in env.values())
    assert Settings.from_env(env) == s


def test_the_jwt_secret_can_come_from_a_file(tmp_path) -> None:
    path = tmp_path / "secret"
    path.write_text("from-a-file-from-a-file-from-a-file\n")
    s = Settings.from_env({"ENCORE_JWT_SECRET": "ignored", "ENCORE_JWT_SECRET_FILE": str(path)})
    assert s.jwt_secret == "from-a-file-from-a-file-from-a-file"
    with pytest.raises(SettingsError, match="ENCORE_JWT_SECRET_FILE"):
        Settings.from_env({"ENCORE_JWT_SECRET_FILE": str(tmp_path / "missing")})


def test_to_env_round_trips_defaults_and_leaves_unset_out() -> None:
    s = Settings()
    env = s.to_env()
    assert "ENCORE_KAFKA_BOOTSTRAP" not in env
    assert "ENCORE_REDIS_URL" not in env
    assert Settings.from_env(env) == s


@pytest.mark.parametrize("refresh", [0.1, 1 / 3, 1e-6, 12345.678])
def test_to_env_round_trips_floats_exactly(refresh: float) -> None:
    s = Settings(catalog_refresh_s=refresh)
    assert Settings.from_env(s.to_env()).catalog_refresh_s == refresh


def test_with_changes_one_field() -> None:
    s = Settings().with_(partitions=9)
    assert s.partitions == 9
    assert s.namespace == "encore"
    assert Settings().partitions == 4


def test_require_kafka_and_redis() -> None:
    with pytest.raises(SettingsError, match="ENCORE_KAFKA_BOOTSTRAP"):
        Settings().require_kafka()
    with pytest.raises(SettingsError, match="ENCORE_REDIS_URL"):
        Settings().require_redis()
    s = Settings.from_env(ALL_VARS)
    assert s.require_kafka() == "k1:9092,k2:9092"
    assert s.require_redis() == "redis://r:6380/2"


def test_secrets_stay_out_of_repr_and_redacted_urls() -> None:
    s = Settings.from_env({**ALL_VARS, "ENCORE_REDIS_URL": "redis://:hunter2-secret@r:6380/2"})
    text = repr(s)
    assert "hunter2-secret" not in text and "0123456789abcdef" not in text and "jwt-secret" not in text
    assert "***" in text and "<set>" in text
    assert redact_url("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_api_keys_file_takes_precedence(tmp_path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('[{"name": "f", "key": "from-the-file-0000", "scopes": ["read"]}]')
    s = Settings.from_env({"ENCORE_API_KEYS": "[]", "ENCORE_API_KEYS_FILE": str(keys)})
    assert s.api_keys == keys.read_text()
    with pytest.raises(SettingsError, match="ENCORE_API_KEYS_FILE"):
        Settings.from_env({"ENCORE_API_KEYS_FILE": str(tmp_path / "missing.json")})


def test_recovery_switch_and_snapshot_interval() -> None:
    assert Settings.from_env({"ENCORE_RECOVERY": "OFF"}).recovery is False
    assert Settings.from_env({}).recovery is True
    with pytest.raises(SettingsError, match="ENCORE_RECOVERY"):
        Settings.from_env({"ENCORE_RECOVERY": "maybe"})
    with pytest.raises(SettingsError, match="ENCORE_SNAPSHOT_INTERVAL_S"):
        Settings.from_env({"ENCORE_SNAPSHOT_INTERVAL_S": "0.5"})


def test_flow_processes_default_and_bound() -> None:
    assert Settings.from_env({}).flow_processes == 1
    with pytest.raises(SettingsError, match="ENCORE_FLOW_PROCESSES"):
        Settings.from_env({"ENCORE_FLOW_PROCESSES": "100000"})


@pytest.mark.parametrize("url", ["redis+cluster://n1:7000,n2:7001", "rediss+cluster://:pw@n1:7000",
                                 "rediss://cache:6380/1", "unix:///run/redis.sock"])
def test_redis_urls_for_a_server_or_a_cluster_are_accepted(url: str) -> None:
    assert Settings.from_env({"ENCORE_REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize("url", ["memcached://h:1", "redis+cluster://", "redis+cluster://n1:7000/3",
                                 "redis+cluster://n1:notaport"])
def test_unusable_redis_urls_are_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(SettingsError, match="ENCORE_REDIS_URL"):
        Settings.from_env({"ENCORE_REDIS_URL": url})


def test_cluster_url_passwords_are_redacted() -> None:
    url = "redis+cluster://app:hunter2-secret@n1:7000,n2:7000"
    assert redact_url(url) == "redis+cluster://app:***@n1:7000,n2:7000"
    assert "hunter2-secret" not in repr(Settings.from_env({"ENCORE_REDIS_URL": url}))


def test_log_format_and_tracing_settings() -> None:
    s = Settings.from_env(ALL_VARS)
    assert (s.log_format, s.access_log, s.otel_endpoint, s.service_name) == (
        "json", False, "http://otel:4318/v1/traces", "encore-api-eu")
    assert Settings.from_env({}).log_format == "text" and Settings.from_env({}).otel_endpoint is None
    with pytest.raises(SettingsError, match="ENCORE_LOG_FORMAT"):
        Settings.from_env({"ENCORE_LOG_FORMAT": "xml"})
    # The standard OpenTelemetry variables count too, the traces-only one first.
    def endpoint(**env: str) -> str | None:
        return Settings.from_env(env).otel_endpoint

    assert endpoint(OTEL_EXPORTER_OTLP_ENDPOINT="http://a:4318/") == "http://a:4318/v1/traces"
    assert endpoint(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://b:4318/traces") == "http://b:4318/traces"
    assert endpoint(ENCORE_OTEL_ENDPOINT="http://c:4318", OTEL_EXPORTER_OTLP_ENDPOINT="http://a:4318"
                    ) == "http://c:4318/v1/traces"
    assert Settings.from_env({"OTEL_SERVICE_NAME": "x"}).service_name == "x"


def test_a_mistaken_experiment_refuses_to_start() -> None:
    with pytest.raises(SettingsError, match=r"ENCORE_EXPERIMENTS: .*unknown ranking setting"):
        Settings.from_env({"ENCORE_EXPERIMENTS": '[{"name": "x", "variants": [{"name": "a", "share": 0.5},'
                                                 ' {"name": "b", "share": 0.5, "overrides": {"nope": 1}}]}]'})
