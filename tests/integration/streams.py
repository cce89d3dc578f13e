"""A fixed, seeded listening stream over the shipped catalog sample, and helpers to replay it."""

from __future__ import annotations

import random
from dataclasses import fields
from typing import Any

import orjson

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from schemas.profile_codec import UserProfile

TYPES = ("play", "complete", "skip", "like", "dislike")
TYPE_WEIGHTS = (0.3, 0.3, 0.28, 0.08, 0.04)


def listening_stream(events: int, users: int, seed: int = 11) -> list[dict[str, Any]]:
    """`events` events of `users` listeners (skewed: a few listen a lot), in event-time order."""
    rng = random.Random(seed)
    tracks = [t.track_id for t in read_spotify_csv(DEFAULT_SAMPLE)]
    user_weights = [1.0 / (rank + 1) ** 0.8 for rank in range(users)]
    user_ids = [f"u{i:04d}" for i in range(users)]
    ts = 1_795_000_000_000
    stream = []
    for i in range(events):
        ts += rng.randrange(1, 5_000)
        kind = rng.choices(TYPES, TYPE_WEIGHTS)[0]
        user_id = rng.choices(user_ids, user_weights)[0]
        event: dict[str, Any] = {"event_id": f"ev{seed}-{i}", "user_id": user_id,
                                 "track_id": rng.choice(tracks), "type": kind, "ts": ts}
        if kind == "skip":
            event["duration_ms"] = 200_000
            event["position_ms"] = rng.randrange(0, 200_000)
        stream.append(event)
    return stream


def with_duplicates(stream: list[dict[str, Any]], share: float, seed: int = 5) -> list[dict[str, Any]]:
    """The stream with `share` of its events sent again a little later, as a retrying player would."""
    rng = random.Random(seed)
    out = list(stream)
    chosen = rng.sample(range(len(stream)), int(len(stream) * share))
    # Insert from the back so earlier insert positions stay valid; each copy lands a few events on.
    for index in sorted(chosen, reverse=True):
        out.insert(min(len(out), index + 1 + rng.randrange(0, 20)), dict(stream[index]))
    return out


def final_versions(stream: list[dict[str, Any]]) -> dict[str, int]:
    seen: set[str] = set()
    versions: dict[str, int] = {}
    for event in stream:
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        versions[event["user_id"]] = versions.get(event["user_id"], 0) + 1
    return versions


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def profile_differences(expected: UserProfile, actual: UserProfile) -> list[str]:
    """Field-by-field differences between two decoded profiles (empty when equal)."""
    return [f.name for f in fields(UserProfile)
            if getattr(expected, f.name) != getattr(actual, f.name)]
