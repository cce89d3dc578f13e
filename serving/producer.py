"""Producing to Kafka from async handlers: a write is confirmed only when the broker acknowledged it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaException, Producer


class BrokerUnavailable(Exception):
    """The broker did not acknowledge a write in time; nothing may be reported as accepted."""


class MessageTracing(Protocol):
    """What tracing adds to a write (serving/tracing.py): a span around it, and the trace context
    as message headers."""

    def span(self, topic: str, messages: int) -> contextlib.AbstractContextManager[Any]: ...

    def headers(self) -> list[tuple[str, bytes]] | None: ...


_tracing: MessageTracing | None = None
"""Set by serving.tracing.install_tracing; None (tracing off) adds nothing to a write."""


def set_message_tracing(tracing: MessageTracing | None) -> None:
    global _tracing
    _tracing = tracing


def producer_config(brokers: Sequence[str], timeout_s: float,
                    extra: Mapping[str, str] | None = None) -> dict[str, str | int]:
    """The producer's librdkafka options: the client options (`ENCORE_KAFKA_CONFIG`: security,
    tuning) first, then what the delivery guarantee rests on, which they cannot override."""
    return {
        "linger.ms": 2,
        "client.id": "encore-api",
        **(extra or {}),
        "bootstrap.servers": ",".join(brokers),
        "acks": "all",
        # Give up on a message a little before the handler stops waiting for it.
        "message.timeout.ms": max(1000, int(timeout_s * 1000) - 500),
    }


class AckedProducer:
    def __init__(self, brokers: Sequence[str], timeout_s: float, extra: Mapping[str, str] | None = None):
        self._timeout_s = timeout_s
        self._producer = Producer(producer_config(brokers, timeout_s, extra))
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def send(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Produce every (key, value) and wait for all acknowledgements, or raise BrokerUnavailable."""
        if _tracing is None:
            await self._send(topic, messages, {})
            return
        with _tracing.span(topic, len(messages)):
            headers = _tracing.headers()
            await self._send(topic, messages, {"headers": headers} if headers else {})

    async def _send(self, topic: str, messages: Sequence[tuple[bytes, bytes]], extra: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []

        def on_delivery(future: asyncio.Future[None]):
            def report(err, _msg) -> None:
                if err is None:
                    loop.call_soon_threadsafe(_settle, future, None)
                else:
                    loop.call_soon_threadsafe(_settle, future, BrokerUnavailable(str(err)))
            return report

        for key, value in messages:
            future = loop.create_future()
            futures.append(future)
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery(future), **extra)
            except BufferError:
                self._producer.poll(0.1)
                self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery(future), **extra)
            except KafkaException as exc:
                raise BrokerUnavailable(str(exc)) from exc
        try:
            await asyncio.wait_for(asyncio.gather(*futures), self._timeout_s)
        except TimeoutError:
            raise BrokerUnavailable(
                f"the broker did not acknowledge the write within {self._timeout_s:.0f}s"
            ) from None

    def close(self) -> None:
        self._producer.flush(5)
        self._stop.set()
        self._poller.join(2)


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
