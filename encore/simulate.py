"""Simulated listeners: users with a taste who behave like listeners, through the real client.

Each simulated user's taste is a real playlist of the catalog's table (`read_playlists`): its genre,
its tracks, and the centre of their audio features. They listen to their playlist, to tracks of its
genre, to anything in the catalog, and to their own live recommendations; how they react depends on
the track: a track of their playlist, or of its artists, is enjoyed; otherwise it depends on how far
it sits from the playlist's sound and whether it shares its genre: far tracks are skipped early
(sometimes disliked), near ones completed (sometimes liked). Without playlists, a taste is one real
track of a genre, blurred.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from encore.catalog_csv import Playlist
from encore.client import EncoreClient
from schemas.tracks import Track


@dataclass
class SimulatedUser:
    user_id: str
    genre: str
    centre: list[float]
    recommended: list[str] = field(default_factory=list)
    recommended_at: float = 0.0
    playlist: tuple[str, ...] = ()
    """The real playlist this listener's taste comes from (empty: a blurred track)."""
    artists: frozenset[str] = frozenset()


def _across_genres(playlists: Sequence[Playlist]) -> list[Playlist]:
    """The playlists in turns across genres (first of each genre, then second...)."""
    by_genre: dict[str, list[Playlist]] = {}
    for playlist in playlists:
        by_genre.setdefault(playlist.genre, []).append(playlist)
    out: list[Playlist] = []
    for depth in range(max((len(v) for v in by_genre.values()), default=0)):
        out.extend(group[depth] for _, group in sorted(by_genre.items()) if depth < len(group))
    return out


@dataclass
class SimulationReport:
    events: int
    seconds: float
    sent: int
    rejected: int
    failed: int
    retries: int
    outcomes: dict[str, int]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (f"{self.events} events in {self.seconds:.1f}s ({self.rate:.0f}/s): acknowledged "
                f"{self.sent}, rejected {self.rejected}, failed {self.failed}, retries {self.retries}; "
                f"{outcomes}")


class ListenerSimulation:
    def __init__(self, tracks: Sequence[Track], users: int, *, seed: int = 7,
                 user_prefix: str = "sim-user-", recommendation_share: float = 0.2,
                 playlists: Sequence[Playlist] = ()) -> None:
        self._rng = random.Random(seed)
        self.tracks = [t for t in tracks if t.has_features and t.genres]
        if not self.tracks:
            raise ValueError("the catalog has no tracks with audio features and genres")
        self.by_genre: dict[str, list[Track]] = {}
        for track in self.tracks:
            self.by_genre.setdefault(track.genres[0], []).append(track)
        self.by_id = {t.track_id: t for t in self.tracks}
        genres = sorted(self.by_genre)
        usable = _across_genres([p for p in playlists if p.genre in self.by_genre
                                 and sum(t in self.by_id for t in p.track_ids) >= 3])
        self.users = []
        for i in range(users):
            if usable:
                self.users.append(self._from_playlist(f"{user_prefix}{i}", usable[i % len(usable)]))
                continue
            genre = genres[i % len(genres)]
            anchor = self._rng.choice(self.by_genre[genre]).feature_vector() or []
            centre = [min(1.0, max(0.0, x + self._rng.gauss(0, 0.05))) for x in anchor]
            self.users.append(SimulatedUser(f"{user_prefix}{i}", genre, centre))
        self.recommendation_share = recommendation_share
        self.outcomes: dict[str, int] = {}

    def _from_playlist(self, user_id: str, playlist: Playlist) -> SimulatedUser:
        known = tuple(t for t in playlist.track_ids if t in self.by_id)
        vectors = [self.by_id[t].feature_vector() or [] for t in known]
        centre = [sum(v[f] for v in vectors) / len(vectors) for f in range(len(vectors[0]))]
        artists = frozenset(self.by_id[t].artist for t in known if self.by_id[t].artist)
        return SimulatedUser(user_id, playlist.genre, centre, playlist=known, artists=artists)

    def affinity(self, user: SimulatedUser, track: Track) -> float:
        if user.playlist and (track.track_id in user.playlist or track.artist in user.artists):
            return 0.95
        vector = track.feature_vector() or user.centre
        distance2 = sum((a - b) ** 2 for a, b in zip(vector, user.centre, strict=True))
        if user.playlist:  # a playlist's sound is broader than one track's
            genre_match = 1.0 if user.genre in track.genres else 0.5
            return math.exp(-distance2 / 0.8) * genre_match
        genre_match = 1.0 if user.genre in track.genres else 0.45
        return math.exp(-distance2 / 0.6) * genre_match

    def pick_track(self, user: SimulatedUser) -> Track:
        roll = self._rng.random()
        if user.recommended and roll < self.recommendation_share:
            track = self.by_id.get(self._rng.choice(user.recommended))
            if track is not None:
                return track
        if user.playlist and roll < self.recommendation_share + 0.3:
            return self.by_id[self._rng.choice(user.playlist)]
        if roll < 0.65:
            return self._rng.choice(self.by_genre[user.genre])
        return self._rng.choice(self.tracks)

    def listen(self, client: EncoreClient, user: SimulatedUser) -> int:
        """One listening decision; returns how many events it emitted."""
        track = self.pick_track(user)
        a = self.affinity(user, track)
        duration = 180_000 + self._rng.randrange(60_000)
        session = {"context": {"source": "simulator", "device": "sim"}}
        if a < 0.3:
            if self._rng.random() < 0.1:
                client.dislike(user.user_id, track.track_id, **session)
                return self._count("dislike")
            position = self._rng.randrange(3_000, 40_000)
            client.skip(user.user_id, track.track_id, position_ms=position, duration_ms=duration, **session)
            return self._count("early skip")
        if self._rng.random() < a:
            client.complete(user.user_id, track.track_id, position_ms=duration,
                            duration_ms=duration, **session)
            if self._rng.random() < 0.3:
                client.like(user.user_id, track.track_id, **session)
                self._count("like")
                return 1 + self._count("complete")
            return self._count("complete")
        position = self._rng.randrange(duration // 2, duration)
        client.skip(user.user_id, track.track_id, position_ms=position, duration_ms=duration, **session)
        return self._count("late skip")

    def _count(self, outcome: str) -> int:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return 1

    def refresh_recommendations(self, http: httpx.Client, user: SimulatedUser) -> None:
        try:
            response = http.get(f"/v1/users/{user.user_id}/recommendations", params={"k": 20})
            if response.status_code == 200:
                user.recommended = [item["track_id"] for item in response.json()["items"]]
        except httpx.HTTPError:
            pass
        user.recommended_at = time.monotonic()

    def run(self, api_url: str, rate: float, duration_s: float,
            stop: threading.Event | None = None,
            progress: Callable[[int], None] | None = None) -> SimulationReport:
        """Emit about `rate` events per second for `duration_s` seconds (or until `stop`)."""
        stop = stop or threading.Event()
        client = EncoreClient(api_url, batch_size=max(20, min(500, int(rate / 10) or 1)),
                              flush_interval_s=0.05)
        http = httpx.Client(base_url=api_url, timeout=5)
        started = time.monotonic()
        emitted = 0
        try:
            while not stop.is_set():
                elapsed = time.monotonic() - started
                if elapsed >= duration_s:
                    break
                due = int(rate * elapsed) - emitted
                if due <= 0:
                    time.sleep(min(0.01, 1.0 / rate))
                    continue
                for _ in range(min(due, 10_000)):
                    user = self._rng.choice(self.users)
                    if time.monotonic() - user.recommended_at > 5.0 and self._rng.random() < 0.05:
                        self.refresh_recommendations(http, user)
                    emitted += self.listen(client, user)
                if progress is not None:
                    progress(emitted)
        finally:
            client.close()
            http.close()
        seconds = time.monotonic() - started
        stats = client.stats
        return SimulationReport(emitted, seconds, stats.sent, stats.rejected, stats.failed,
                                stats.retries, dict(self.outcomes))
