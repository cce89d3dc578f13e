"""Each worker's view of the catalog: the tracks its events refer to, fetched from Redis.

Tracks are cached in the worker; a batch's misses are fetched with one HMGET. When the catalog
version in Redis changes (checked at most every `refresh_s`), the cache is dropped so changed tracks
are read again. An event whose track is not (yet) in the catalog gets None: the per-user step holds
it until `tracks` finds the track (`flows.user_state`, "Events ahead of the catalog"). A control
message (`Forget`) has no track.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from flows.decode import SourcedEvent
from flows.progress import Position
from flows.redis_io import RedisClient, with_retries
from schemas.events import Event, Message
from schemas.keys import KeyLayout
from schemas.tracks import InvalidTrack, Track, decode_track

EventWithTrack = tuple[str, tuple[Message, Track | None, Position]]


def read_catalog_tracks(
    client: RedisClient, keys: KeyLayout, track_ids: list[str]
) -> dict[str, Track | None]:
    """The catalog's tracks for `track_ids`, one HMGET; None for an unknown or unreadable one."""
    values = with_retries(lambda: client.hmget(keys.catalog_tracks, track_ids), "catalog read")
    return {track_id: _decode(raw) for track_id, raw in zip(track_ids, values, strict=True)}


def _decode(raw: bytes | None) -> Track | None:
    if raw is None:
        return None
    try:
        return decode_track(raw)
    except InvalidTrack:
        return None


class TrackLookup:
    def __init__(self, client: RedisClient, keys: KeyLayout, refresh_s: float = 1.0) -> None:
        self._client = client
        self._keys = keys
        self._refresh_s = refresh_s
        self._tracks: dict[str, Track | None] = {}
        self._version: bytes | None = None
        self._checked_at = 0.0

    def remember(self, tracks: Iterable[Track]) -> None:
        """Tracks this worker just wrote to the catalog: known here at once."""
        for track in tracks:
            self._tracks[track.track_id] = track

    def attach(self, events: list[SourcedEvent]) -> list[EventWithTrack]:
        """Each event keyed by its user, with its track (or None when the catalog lacks it)."""
        tracks = self.tracks(e.track_id for e, _ in events if isinstance(e, Event))
        return [(e.user_id, (e, tracks.get(e.track_id) if isinstance(e, Event) else None, at))
                for e, at in events]

    def tracks(self, track_ids: Iterable[str]) -> dict[str, Track | None]:
        """The catalog's track for each id (None when unknown), from the cache or one HMGET."""
        self._refresh_if_changed()
        wanted = set(track_ids)
        missing = [t for t in wanted if t not in self._tracks]
        if missing:
            self._tracks.update(read_catalog_tracks(self._client, self._keys, missing))
        return {t: self._tracks[t] for t in wanted}

    def _refresh_if_changed(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._refresh_s:
            return
        self._checked_at = now
        version = with_retries(lambda: self._client.get(self._keys.catalog_version), "catalog check")
        if version != self._version:
            self._version = version
            self._tracks.clear()
