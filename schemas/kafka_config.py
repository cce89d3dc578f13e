"""Kafka client options (security protocol, SASL, TLS files): one librdkafka-style mapping for every
client, translated for the kafka-python ones, redacted wherever it is printed.

Encore's Kafka clients are of two kinds: confluent-kafka (librdkafka: the flow's source and sink,
its offset committer, the API's producer, `encore catalog load`) takes the options as they are;
kafka-python (the lag reader, the topic admin) takes keyword arguments, made by
`KafkaClientConfig.kafka_python()`. Options that only tune librdkafka (`linger.ms`, ...) are left out
of the kafka-python translation; a security option kafka-python cannot honour is refused, never
dropped, so no client silently connects with less security than configured.

>>> config = KafkaClientConfig.parse({"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
...                                   "sasl.username": "encore", "sasl.password": "hunter2"})
>>> config.redacted()["sasl.password"], "hunter2" in repr(config)
('***', False)
>>> config.kafka_python()["sasl_plain_password"], config.kafka_python()["security_protocol"]
('hunter2', 'SASL_SSL')
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from typing import Any

REDACTED = "***"

RESERVED = frozenset({
    "bootstrap.servers", "metadata.broker.list", "group.id", "acks", "request.required.acks",
    "enable.auto.commit", "enable.auto.offset.store",
})
"""Options Encore sets itself: the bootstrap servers come from ENCORE_KAFKA_BOOTSTRAP, and the rest
carry its delivery guarantees (acknowledged writes, no consumer-group commits by the source)."""

_SECRET_MARKERS = ("password", "secret", "sasl.jaas.config", "sasl.oauthbearer.config", "ssl.key.pem",
                   "ssl_key", "token")
"""An option whose name contains one of these holds a secret: its value is never printed."""

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI")
"""What the kafka-python translation supports (OAUTHBEARER needs a token provider object)."""

_TRANSLATED: dict[str, str] = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "sasl.kerberos.service.name": "sasl_kerberos_service_name",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
    "ssl.crl.location": "ssl_crlfile",
}
"""librdkafka option → kafka-python keyword (same meaning, same value)."""

_SPECIAL = frozenset({"ssl.endpoint.identification.algorithm", "enable.ssl.certificate.verification"})


class KafkaConfigError(ValueError):
    """Kafka client options that cannot be used; the message says which and why."""


def is_secret(name: str) -> bool:
    """Whether an option's value is a secret (never logged).

    >>> is_secret("sasl.password"), is_secret("ssl.key.password"), is_secret("ssl.ca.location")
    (True, True, False)
    """
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _as_text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise KafkaConfigError(f"{name}: values are strings, numbers or booleans, got {type(value).__name__}")


def _truthy(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise KafkaConfigError(f"{name} must be true or false, got {value!r}")


class KafkaClientConfig(Mapping[str, str]):
    """librdkafka-style client options (string values); `repr` and `str` hide the secrets.

    A Mapping, so `{**config}` and `Producer({..., **config})` take it as it is.
    """

    __slots__ = ("_options",)

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self._options: dict[str, str] = dict(options or {})

    @classmethod
    def parse(cls, raw: object) -> KafkaClientConfig:
        """Check a JSON object of options; raises KafkaConfigError naming the first bad one.

        >>> KafkaClientConfig.parse({"bootstrap.servers": "k:9092"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        schemas.kafka_config.KafkaConfigError: bootstrap.servers is set by Encore itself ...
        """
        if not isinstance(raw, Mapping):
            raise KafkaConfigError(f"expected a JSON object of client options, got {type(raw).__name__}")
        options: dict[str, str] = {}
        for name, value in raw.items():
            if not isinstance(name, str) or not name.strip():
                raise KafkaConfigError(f"option names are non-empty strings, got {name!r}")
            if name in RESERVED:
                raise KafkaConfigError(f"{name} is set by Encore itself (ENCORE_KAFKA_BOOTSTRAP for the "
                                       "servers); leave it out")
            options[name] = _as_text(name, value)
        config = cls(options)
        config._translate(build_context=False)  # refuse now what kafka-python could not honour later
        return config

    def __getitem__(self, key: str) -> str:
        return self._options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._options) == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._options.items())))

    def redacted(self) -> dict[str, str]:
        """The options with every secret value replaced by `***`."""
        return {k: (REDACTED if is_secret(k) else v) for k, v in self._options.items()}

    def __repr__(self) -> str:
        return f"KafkaClientConfig({self.redacted()!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (KafkaClientConfig, (self._options,))

    def librdkafka(self) -> dict[str, str]:
        """The options for confluent-kafka, as a plain dict."""
        return dict(self._options)

    def kafka_python(self) -> dict[str, Any]:
        """The same options as kafka-python keyword arguments (KafkaConsumer, KafkaAdminClient).

        Security options are translated or refused; librdkafka tuning options are left out.

        >>> KafkaClientConfig({"security.protocol": "ssl", "ssl.ca.location": "/ca.pem",
        ...                    "linger.ms": "5"}).kafka_python()
        {'security_protocol': 'SSL', 'ssl_cafile': '/ca.pem'}
        >>> KafkaClientConfig({"ssl.ca.pem": "-----BEGIN..."}).kafka_python()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        schemas.kafka_config.KafkaConfigError: ssl.ca.pem cannot be given to Encore's kafka-python clients ...
        """
        return self._translate(build_context=True)

    def _translate(self, build_context: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self._options.items():
            target = _TRANSLATED.get(name)
            if target is not None:
                out[target] = value
            elif name not in _SPECIAL and name.startswith(("security.", "sasl.", "ssl.")):
                supported = ", ".join(sorted({*_TRANSLATED, *_SPECIAL}))
                raise KafkaConfigError(f"{name} cannot be given to Encore's kafka-python clients (lag "
                                       f"reader, topic admin); supported security options: {supported}")
        if "security_protocol" in out:
            protocol = out["security_protocol"].upper()
            if protocol not in PROTOCOLS:
                raise KafkaConfigError(f"security.protocol must be one of {', '.join(PROTOCOLS)}, "
                                       f"got {out['security_protocol']!r}")
            out["security_protocol"] = protocol
        if "sasl_mechanism" in out:
            mechanism = out["sasl_mechanism"].upper()
            if mechanism not in SASL_MECHANISMS:
                raise KafkaConfigError(f"sasl.mechanism {out['sasl_mechanism']!r} is not supported by "
                                       f"the kafka-python clients; use one of {', '.join(SASL_MECHANISMS)}")
            out["sasl_mechanism"] = mechanism
        algorithm = self._options.get("ssl.endpoint.identification.algorithm")
        if algorithm is not None:
            if algorithm.strip().lower() not in ("https", "none", ""):
                raise KafkaConfigError("ssl.endpoint.identification.algorithm must be https or none, "
                                       f"got {algorithm!r}")
            out["ssl_check_hostname"] = algorithm.strip().lower() == "https"
        verify = self._options.get("enable.ssl.certificate.verification")
        if verify is not None and not _truthy("enable.ssl.certificate.verification", verify):
            out["ssl_context"] = _unverified_context(out) if build_context else None
            out["ssl_check_hostname"] = False
        return out


def _unverified_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """A TLS context that does not check the broker's certificate (still presents a client
    certificate when one is configured): what `enable.ssl.certificate.verification=false` means."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"),
                                options.get("ssl_password"))
    return context
