"""A fixed, seeded listening stream over the shipped catalog sample, and helpers to replay it."""

from __future__ import annotations

import bisect
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


def with_delayed_duplicates(stream: list[dict[str, Any]], share: float, min_delay_ms: int,
                            max_delay_ms: int, seed: int = 6) -> list[dict[str, Any]]:
    """The stream with `share` of its events sent again `min_delay_ms`..`max_delay_ms` of event time
    later (where the stream has reached that time), as a player retrying a batch it buffered offline
    hours ago: the copy keeps the original's id and time."""
    rng = random.Random(seed)
    times = [event["ts"] for event in stream]
    last = times[-1]
    candidates = [i for i, ts in enumerate(times) if ts + min_delay_ms <= last]
    chosen = rng.sample(candidates, min(len(candidates), int(len(stream) * share)))
    inserts: dict[int, list[dict[str, Any]]] = {}
    for index in chosen:
        due = times[index] + rng.randrange(min_delay_ms, max_delay_ms)
        at = bisect.bisect_left(times, due)  # before the first event at or after the due time
        inserts.setdefault(at, []).append(dict(stream[index]))
    out: list[dict[str, Any]] = []
    for i, event in enumerate(stream):
        out.extend(inserts.get(i, ()))
        out.append(event)
    out.extend(inserts.get(len(stream), ()))
    return out


def own_events_between(stream: list[dict[str, Any]]) -> list[int]:
    """For each repeated event id: how many of its listener's other events came between the original
    and the copy (what a dedupe that remembers the last N ids would have to span)."""
    first_at: dict[str, int] = {}
    seen_by_user: dict[str, int] = {}
    gaps = []
    for event in stream:
        user = event["user_id"]
        if event["event_id"] in first_at:
            gaps.append(seen_by_user.get(user, 0) - first_at[event["event_id"]])
            continue
        first_at[event["event_id"]] = seen_by_user.get(user, 0) + 1
        seen_by_user[user] = seen_by_user.get(user, 0) + 1
    return gaps


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
