"""Produce a catalog CSV to the tracks topic (`encore catalog load`, the demo, the benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from confluent_kafka import Producer

from encore.catalog_csv import iter_tracks_json, read_spotify_csv
from schemas.topics import Topics


def load_catalog(bootstrap: str, namespace: str, path: Path, limit: int | None = None,
                 kafka_config: Mapping[str, str] | None = None) -> int:
    """Produce every track of a CSV to the catalog topic; returns how many the broker acknowledged.

    `kafka_config`: client options (`ENCORE_KAFKA_CONFIG`: security, tuning); `acks` stays `all`."""
    tracks = read_spotify_csv(path, limit=limit)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, **(kafka_config or {}),
                         "acks": "all"})
    acked, failed = [0], [0]

    def on_delivery(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1
        else:
            failed[0] += 1

    topic = Topics(namespace).tracks
    for key, value in iter_tracks_json(tracks):
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(30)
    if failed[0]:
        raise RuntimeError(f"{failed[0]} of {len(tracks)} tracks were not acknowledged by the broker")
    return acked[0]
