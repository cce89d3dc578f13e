"""Kafka client options: parsing (ENCORE_KAFKA_CONFIG / _FILE), the kafka-python translation, secrets
kept out of logs and repr, and every Kafka client of Encore receiving them."""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest

from encore.settings import Settings, SettingsError
from schemas.kafka_config import KafkaClientConfig, KafkaConfigError, is_secret

SASL_SSL = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "encore-svc",
    "sasl.password": "pa55-word-never-printed",
    "ssl.ca.location": "/etc/encore/kafka/ca.pem",
}
MTLS = {
    "security.protocol": "SSL",
    "ssl.ca.location": "/certs/ca.pem",
    "ssl.certificate.location": "/certs/client.pem",
    "ssl.key.location": "/certs/client.key",
    "ssl.key.password": "key-pass-never-printed",
    "ssl.endpoint.identification.algorithm": "https",
}
SECRETS = ("pa55-word-never-printed", "key-pass-never-printed")


# ---- the translation for kafka-python ----------------------------------------------------------


def test_sasl_ssl_translates_for_kafka_python() -> None:
    assert KafkaClientConfig.parse(SASL_SSL).kafka_python() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "encore-svc",
        "sasl_plain_password": "pa55-word-never-printed",
        "ssl_cafile": "/etc/encore/kafka/ca.pem",
    }


def test_mutual_tls_translates_for_kafka_python() -> None:
    assert KafkaClientConfig.parse(MTLS).kafka_python() == {
        "security_protocol": "SSL",
        "ssl_cafile": "/certs/ca.pem",
        "ssl_certfile": "/certs/client.pem",
        "ssl_keyfile": "/certs/client.key",
        "ssl_password": "key-pass-never-printed",
        "ssl_check_hostname": True,
    }


def test_every_translated_name_is_a_kafka_python_option() -> None:
    from kafka.admin import KafkaAdminClient
    from kafka.consumer.group import KafkaConsumer

    config = KafkaClientConfig.parse({
        **MTLS, **SASL_SSL, "sasl.kerberos.service.name": "kafka", "ssl.crl.location": "/crl.pem"})
    for name in config.kafka_python():
        assert name in KafkaConsumer.DEFAULT_CONFIG, name
        assert name in KafkaAdminClient.DEFAULT_CONFIG, name


def test_protocol_and_mechanism_are_normalised_and_checked() -> None:
    config = KafkaClientConfig.parse({"security.protocol": "sasl_plaintext", "sasl.mechanisms": "plain"})
    assert config.kafka_python() == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}
    with pytest.raises(KafkaConfigError, match=r"security\.protocol must be one of"):
        KafkaClientConfig.parse({"security.protocol": "TLS"})
    with pytest.raises(KafkaConfigError, match="OAUTHBEARER"):
        KafkaClientConfig.parse({"sasl.mechanism": "OAUTHBEARER"})


def test_hostname_check_can_be_turned_off() -> None:
    off = KafkaClientConfig.parse({"ssl.endpoint.identification.algorithm": "none"})
    assert off.kafka_python() == {"ssl_check_hostname": False}
    with pytest.raises(KafkaConfigError, match="https or none"):
        KafkaClientConfig.parse({"ssl.endpoint.identification.algorithm": "dns"})


def test_no_certificate_verification_becomes_an_unverifying_context() -> None:
    options = KafkaClientConfig.parse({"security.protocol": "SSL",
                                       "enable.ssl.certificate.verification": False}).kafka_python()
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert options["ssl_check_hostname"] is False
    assert "ssl_context" not in KafkaClientConfig.parse(
        {"enable.ssl.certificate.verification": "true"}).kafka_python()


def test_librdkafka_tuning_stays_out_of_the_kafka_python_options() -> None:
    config = KafkaClientConfig.parse({"linger.ms": 5, "socket.keepalive.enable": True,
                                      "client.rack": "eu-1", "security.protocol": "SSL"})
    assert config.kafka_python() == {"security_protocol": "SSL"}
    assert config.librdkafka() == {"linger.ms": "5", "socket.keepalive.enable": "true",
                                   "client.rack": "eu-1", "security.protocol": "SSL"}


@pytest.mark.parametrize("name", ["ssl.ca.pem", "ssl.certificate.pem", "sasl.oauthbearer.method",
                                  "ssl.keystore.location", "security.whatever",
                                  "ssl.cipher.suites"])
def test_security_options_kafka_python_cannot_honour_are_refused(name: str) -> None:
    with pytest.raises(KafkaConfigError, match=f"{name} cannot be given"):
        KafkaClientConfig.parse({name: "x"})


@pytest.mark.parametrize("name", ["bootstrap.servers", "group.id", "acks", "enable.auto.commit"])
def test_options_encore_sets_itself_are_refused(name: str) -> None:
    with pytest.raises(KafkaConfigError, match="set by Encore itself"):
        KafkaClientConfig.parse({name: "x"})


@pytest.mark.parametrize("raw", [[], "SSL", {"linger.ms": [1]}, {"": "x"}, {"linger.ms": None}])
def test_malformed_options_are_refused(raw: Any) -> None:
    with pytest.raises(KafkaConfigError):
        KafkaClientConfig.parse(raw)


# ---- secrets ------------------------------------------------------------------------------------


def test_secret_names() -> None:
    assert all(is_secret(n) for n in ("sasl.password", "ssl.key.password", "ssl.keystore.password",
                                      "sasl.oauthbearer.client.secret", "ssl.key.pem", "sasl.jaas.config"))
    assert not any(is_secret(n) for n in ("sasl.username", "ssl.key.location", "security.protocol"))


def test_secrets_are_redacted_in_repr_str_and_settings(caplog: pytest.LogCaptureFixture) -> None:
    config = KafkaClientConfig.parse({**SASL_SSL, **MTLS})
    settings = Settings.from_env({"ENCORE_KAFKA_CONFIG": json.dumps({**SASL_SSL, **MTLS})})
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("config %s / %r / settings %r / %s", config, config, settings,
                                       settings)
    for text in (repr(config), str(config), repr(settings), str(settings), caplog.text,
                 repr(config.redacted())):
        for secret in SECRETS:
            assert secret not in text
    assert "'sasl.password': '***'" in repr(config) and "'ssl.key.password': '***'" in repr(config)
    assert "encore-svc" in repr(config)  # what is not a secret stays readable
    # The clients still get the real values.
    assert config["sasl.password"] == SECRETS[0] and config.librdkafka()["ssl.key.password"] == SECRETS[1]


def test_flow_and_serving_configs_do_not_print_secrets() -> None:
    from encore.flow_main import flow_config
    from encore.serve_main import serving_config

    settings = Settings.from_env({"ENCORE_KAFKA_BOOTSTRAP": "k:9093", "ENCORE_REDIS_URL": "redis://r:1/0",
                                  "ENCORE_KAFKA_CONFIG": json.dumps(SASL_SSL)})
    for config in (flow_config(settings), serving_config(settings)):
        assert SECRETS[0] not in repr(config)
        assert config.kafka_config["sasl.password"] == SECRETS[0]


def test_bad_json_does_not_echo_its_text() -> None:
    with pytest.raises(SettingsError, match="ENCORE_KAFKA_CONFIG is not valid JSON") as info:
        Settings.from_env({"ENCORE_KAFKA_CONFIG": '{"sasl.password": "hunter2-secret"'})
    assert "hunter2-secret" not in str(info.value)


# ---- settings ------------------------------------------------------------------------------------


def test_unset_means_no_options() -> None:
    assert Settings.from_env({}).kafka_config == {}
    assert "ENCORE_KAFKA_CONFIG" not in Settings().to_env()


def test_file_options_win_over_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "kafka.json"
    secret.write_text(json.dumps({"sasl.password": "from-the-file", "sasl.username": "file-user"}))
    settings = Settings.from_env({
        "ENCORE_KAFKA_CONFIG": json.dumps({**SASL_SSL, "sasl.password": "from-env"}),
        "ENCORE_KAFKA_CONFIG_FILE": str(secret)})
    expected = {**SASL_SSL, "sasl.password": "from-the-file", "sasl.username": "file-user"}
    assert settings.kafka_config == expected
    with pytest.raises(SettingsError, match="ENCORE_KAFKA_CONFIG_FILE cannot be read"):
        Settings.from_env({"ENCORE_KAFKA_CONFIG_FILE": str(tmp_path / "missing.json")})


def test_problems_name_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"ENCORE_KAFKA_CONFIG: bootstrap\.servers"):
        Settings.from_env({"ENCORE_KAFKA_CONFIG": '{"bootstrap.servers": "x:1"}'})
    with pytest.raises(SettingsError, match="ENCORE_KAFKA_CONFIG must be a JSON object"):
        Settings.from_env({"ENCORE_KAFKA_CONFIG": '["SSL"]'})


def test_to_env_passes_the_options_to_child_processes() -> None:
    settings = Settings.from_env({"ENCORE_KAFKA_CONFIG": json.dumps(MTLS)})
    assert Settings.from_env(settings.to_env()).kafka_config == MTLS


# ---- every client gets them ------------------------------------------------------------------------

SETTINGS_ENV = {"ENCORE_KAFKA_BOOTSTRAP": "broker-1:9093,broker-2:9093", "ENCORE_REDIS_URL": "redis://r:1/0",
                "ENCORE_KAFKA_CONFIG": json.dumps(SASL_SSL)}


def test_the_api_producer_gets_them_and_keeps_its_guarantees() -> None:
    from serving.producer import producer_config

    config = producer_config(["b:9093"], 10.0, {**SASL_SSL, "linger.ms": "7", "message.timeout.ms": "999999"})
    assert {k: config[k] for k in SASL_SSL} == SASL_SSL
    assert config["linger.ms"] == "7"  # tuning may be changed ...
    assert config["acks"] == "all" and config["message.timeout.ms"] == 9500  # ... the guarantee not
    assert config["bootstrap.servers"] == "b:9093"


def test_the_flow_source_sink_and_committer_get_them() -> None:
    from bytewax.connectors.kafka import KafkaSink, KafkaSource

    from encore.flow_main import flow_config
    from flows.dataflow import build_flow
    from flows.offset_commit import OffsetCommitter

    config = flow_config(Settings.from_env(SETTINGS_ENV))
    assert config.kafka_config == SASL_SSL
    flow = build_flow(config)  # Redis clients connect lazily: nothing is reached here
    connectors: list[Any] = []

    def walk(steps: Any) -> None:
        for step in steps:
            for name in ("source", "sink"):
                if isinstance(getattr(step, name, None), KafkaSource | KafkaSink):
                    connectors.append(getattr(step, name))
            walk(getattr(step, "substeps", []))

    walk(flow.substeps)
    kinds = sorted(type(c).__name__ for c in connectors)
    assert kinds == ["KafkaSink", "KafkaSource", "KafkaSource"], kinds
    for connector in connectors:
        assert {k: connector._add_config[k] for k in SASL_SSL} == SASL_SSL

    committer = OffsetCommitter(config.brokers, "g", ["t"], None, config.keys, config.kafka_config)  # type: ignore[arg-type]
    assert {k: committer._config[k] for k in SASL_SSL} == SASL_SSL
    assert committer._config["group.id"] == "g"


def test_the_lag_reader_gets_them_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.lag
    from encore.serve_main import serving_config
    from serving.lag import KafkaLogReader

    seen: dict[str, Any] = {}
    monkeypatch.setattr(serving.lag, "KafkaConsumer", lambda **kwargs: seen.update(kwargs) or object())
    config = serving_config(Settings.from_env(SETTINGS_ENV))
    options = KafkaClientConfig(config.kafka_config).kafka_python()
    reader = KafkaLogReader(config.brokers, client_options=options)
    reader._client()
    assert seen["bootstrap_servers"] == ["broker-1:9093", "broker-2:9093"]
    assert seen["security_protocol"] == "SASL_SSL" and seen["sasl_plain_password"] == SECRETS[0]
    assert seen["sasl_mechanism"] == "SCRAM-SHA-512" and seen["ssl_cafile"] == SASL_SSL["ssl.ca.location"]
    assert seen["group_id"] is None


def test_the_ops_reader_of_the_api_gets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.ops
    from encore.serve_main import serving_config

    made: list[dict[str, Any]] = []

    class Reader:
        def __init__(self, brokers: list[str], client_options: dict[str, Any]) -> None:
            made.append(client_options)

    monkeypatch.setattr(serving.ops, "KafkaLogReader", Reader)
    monkeypatch.setattr(serving.ops, "LagMonitor", lambda *a, **k: None)
    monkeypatch.setattr(serving.ops, "OpsCollector", lambda *a, **k: None)

    class App:
        class state:  # mimics FastAPI's app.state
            ops_registry = type("R", (), {"register": staticmethod(lambda c: None)})()

    serving.ops.open_ops(App(), serving_config(Settings.from_env(SETTINGS_ENV)))  # type: ignore[arg-type]
    assert made and made[0]["security_protocol"] == "SASL_SSL"


def test_the_topic_admin_gets_them_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka.admin

    from encore.local import create_topics

    seen: dict[str, Any] = {}

    class Admin:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

        def list_topics(self) -> list[str]:
            return ["a"]

        def close(self) -> None:
            seen["closed"] = True

    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", Admin)
    assert create_topics("b:9093", ["a"], 3, KafkaClientConfig.parse(MTLS)) == []
    assert seen["security_protocol"] == "SSL" and seen["ssl_keyfile"] == "/certs/client.key"
    assert seen["ssl_password"] == SECRETS[1] and seen["closed"]


def test_catalog_load_and_lag_cli_get_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from encore import catalog_loader

    made: list[dict[str, Any]] = []

    class Producer:
        def __init__(self, config: dict[str, Any]) -> None:
            made.append(config)

        def produce(self, *args: Any, **kwargs: Any) -> None:
            kwargs["on_delivery"](None, None)

        def poll(self, _timeout: float) -> int:
            return 0

        def flush(self, _timeout: float) -> int:
            return 0

    monkeypatch.setattr(catalog_loader, "Producer", Producer)
    csv = Path(__file__).resolve().parents[2] / "encore" / "data" / "spotify_sample.csv"
    config = KafkaClientConfig.parse(SASL_SSL)
    assert catalog_loader.load_catalog("b:9093", "ns", csv, limit=3, kafka_config=config) == 3
    assert {k: made[0][k] for k in SASL_SSL} == SASL_SSL and made[0]["acks"] == "all"

    import serving.lag

    seen: dict[str, Any] = {}

    class Reader:
        def __init__(self, brokers: list[str], client_options: dict[str, Any]) -> None:
            seen.update(client_options)
            raise SystemExit(0)

    monkeypatch.setattr(serving.lag, "KafkaLogReader", Reader)
    monkeypatch.setattr("serving.redis_client.connect", lambda *a, **k: None)
    from encore.lag_cli import run_lag

    with pytest.raises(SystemExit):
        run_lag(Settings.from_env(SETTINGS_ENV), type("A", (), {"watch": False, "json": True,
                                                                 "interval": 1.0})())
    assert seen["sasl_plain_password"] == SECRETS[0]
