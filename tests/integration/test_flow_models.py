"""The models in the live flow, on a real broker and a real Redis: each listener's engagement model in
their profile, and per-track statistics, trending, rates and co-listening neighbours in their keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from online_models.artist_memory import pair_weight
from online_models.co_listening import CoListeningStore, ListeningWindow
from online_models.drift import STATE_BYTES
from online_models.item_stats import ItemStats
from online_models.user_model import WEIGHTS_BYTES, UserModel
from ranking.ranker import FEATURES, prior_weights
from schemas.events import Event
from schemas.keys import NEIGHBOURS_KEPT, KeyLayout
from schemas.tracks import Track
from schemas.values import RankerState, decode_ranker
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration

MINUTE = 60_000


# --------------------------------------------------------------------------------------------------
# What the track keys must hold: the models fed event by event, the reference the flow must match.


@dataclass
class TrackReference:
    stats: dict[str, ItemStats]
    newest: dict[str, int]
    store: CoListeningStore
    genres: dict[str, tuple[str, ...]]
    _rows: dict[str, tuple[dict[str, float], int, float]] | None = None

    def row(self, track_id: str) -> tuple[dict[str, float], int, float]:
        """A track's reference neighbour counts, how many are kept, and the count just below the cut."""
        if self._rows is None:
            self._rows = {}
            for t, row in self.store.rows.items():
                ranked = self.store.neighbours(t, len(row))
                cut = ranked[NEIGHBOURS_KEPT][1] if len(ranked) > NEIGHBOURS_KEPT else 0.0
                self._rows[t] = dict(ranked), min(len(ranked), NEIGHBOURS_KEPT), cut
        return self._rows[track_id]


def track_reference(events: Iterable[dict[str, Any]], genres: dict[str, tuple[str, ...]]) -> TrackReference:
    """Item stats and co-listening of a stream, learned one event at a time (duplicates skipped)."""
    ref = TrackReference({}, {}, CoListeningStore(), genres)
    windows: dict[str, ListeningWindow] = {}
    seen: set[str] = set()
    for raw in events:
        if raw["event_id"] in seen:
            continue
        seen.add(raw["event_id"])
        e = Event(**raw)
        ref.stats.setdefault(e.track_id, ItemStats()).learn_one(e)
        ref.newest[e.track_id] = max(ref.newest.get(e.track_id, e.ts), e.ts)
        ref.store.learn_many(windows.setdefault(e.user_id, ListeningWindow()).learn_one(e))
    return ref


@dataclass
class StoredTracks:
    stats: dict[str, dict[bytes, bytes]]
    neighbours: dict[str, list[tuple[bytes, float]]]
    trending: dict[str, float]
    trending_by_genre: dict[str, dict[str, float]]
    rates: dict[str, str]


def stored_tracks(client: redis.Redis, keys: KeyLayout, track_ids: list[str], genres: Iterable[str]
                  ) -> StoredTracks:
    pipe = client.pipeline(transaction=False)
    for track_id in track_ids:
        pipe.hgetall(keys.track_stats(track_id))
        pipe.zrevrange(keys.track_neighbours(track_id), 0, -1, withscores=True)
    genres = sorted(set(genres))
    for genre in genres:
        pipe.zrange(keys.trending_in_genre(genre), 0, -1, withscores=True)
    pipe.zrange(keys.trending, 0, -1, withscores=True)
    pipe.hgetall(keys.item_rates)
    values = pipe.execute()
    n = len(track_ids)
    by_genre = values[2 * n : 2 * n + len(genres)]
    return StoredTracks(
        stats=dict(zip(track_ids, values[0 : 2 * n : 2], strict=True)),
        neighbours=dict(zip(track_ids, values[1 : 2 * n : 2], strict=True)),
        trending={m.decode(): s for m, s in values[-2]},
        trending_by_genre={g: {m.decode(): s for m, s in z} for g, z in zip(genres, by_genre, strict=True)},
        rates={k.decode(): v.decode() for k, v in values[-1].items()},
    )


def _close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-12


def track_differences(ref: TrackReference, stored: StoredTracks) -> list[str]:
    """How the stored track keys differ from the reference (empty when they match, up to the float
    rounding that summing per batch instead of one by one brings)."""
    out: list[str] = []
    for track_id, expected in ref.stats.items():
        got = ItemStats.from_fields(stored.stats.get(track_id, {}))
        fields = {k.decode() for k in stored.stats.get(track_id, {})}
        want = expected.to_fields()
        if fields != set(want) or not all(_close(got.to_fields()[f], v) for f, v in want.items()):
            out.append(f"{track_id}: stats hash")
            continue
        at = ref.newest[track_id]
        trending = expected.trending(at)
        if not _close(stored.trending.get(track_id, float("nan")), trending, 1e-6):
            out.append(f"{track_id}: trending {stored.trending.get(track_id)} != {trending}")
        for genre in ref.genres.get(track_id, ()):
            in_genre = stored.trending_by_genre.get(genre, {}).get(track_id, float("nan"))
            if not _close(in_genre, trending, 1e-6):
                out.append(f"{track_id}: trending in {genre}")
        rates = [float(x) for x in stored.rates.get(track_id, "nan,nan,nan").split(",")]
        want_rates = [expected.like_rate(at), expected.skip_rate(at), expected.listens(at)]
        if not all(_close(g, w, 1e-5) for g, w in zip(rates, want_rates, strict=True)):
            out.append(f"{track_id}: rates {rates} != {want_rates}")
    for track_id in ref.store.rows:
        out.extend(_row_differences(track_id, ref, stored.neighbours.get(track_id, [])))
    return out


def _row_differences(track_id: str, ref: TrackReference, got: list[tuple[bytes, float]]) -> list[str]:
    counts, kept, cut = ref.row(track_id)
    if len(got) != kept:
        return [f"{track_id}: {len(got)} neighbours, expected {kept}"]
    # The kept set is the reference's top N; at the cut, a near-tie may go either way.
    for member, score in got:
        neighbour = member.decode()
        if neighbour not in counts or not _close(score, counts[neighbour]):
            return [f"{track_id}: neighbour {neighbour} scored {score}, expected {counts.get(neighbour)}"]
        if score < cut and not _close(score, cut):
            return [f"{track_id}: neighbour {neighbour} ({score}) is below the top {NEIGHBOURS_KEPT}"]
    return []


def wait_for_tracks(env: Env, ref: TrackReference, timeout_s: float = 60) -> StoredTracks:
    """Wait until the track keys hold the reference's state; fail with the differences if they never do."""
    track_ids = sorted(set(ref.stats) | set(ref.store.rows))
    genres = [g for gs in ref.genres.values() for g in gs]
    last: list[list[str]] = [[]]

    def matches() -> StoredTracks | None:
        stored = stored_tracks(env.redis, env.keys, track_ids, genres)
        last[0] = track_differences(ref, stored)
        return None if last[0] else stored

    try:
        return wait_for(matches, timeout_s, "the track keys to hold every event")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {len(last[0])} differences, e.g. {last[0][:5]}") from None


# --------------------------------------------------------------------------------------------------


LOUD = [track(f"loud-{i}", "rock", 0.85 + 0.03 * i, valence=0.7) for i in range(4)]
QUIET = [track(f"quiet-{i}", "jazz", 0.1 + 0.03 * i, valence=0.3) for i in range(4)]


def _load_tracks(env: Env, tracks: list[dict[str, Any]]) -> None:
    for t in tracks:
        env.produce(env.topics.tracks, t, key=t["track_id"])
    env.flush()
    wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == len(tracks), 30, "the catalog")


def test_the_profile_carries_an_engagement_model_that_learned_the_listener(env: Env, flow) -> None:
    _load_tracks(env, LOUD + QUIET)
    events = []
    for i in range(40):
        loud, quiet = LOUD[i % 4]["track_id"], QUIET[i % 4]["track_id"]
        ts = T0 + 2 * i * MINUTE
        events.append(event(f"a{i}", "ana", loud, "like" if i % 3 == 0 else "complete", ts=ts,
                            position_ms=200_000, duration_ms=200_000))
        events.append(event(f"b{i}", "ana", quiet, "dislike" if i % 3 == 0 else "skip", ts=ts + MINUTE,
                            position_ms=4_000, duration_ms=200_000))
    for e in events:
        env.produce(env.topics.events, e, key="ana")
    env.flush()

    profile = env.wait_for_version("ana", len(events))
    assert len(profile.model_weights) == WEIGHTS_BYTES == 312
    assert len(profile.drift) == STATE_BYTES == 24
    model = UserModel.from_bytes(profile.model_weights)
    probe = Event(event_id="probe", user_id="ana", track_id="x", type="play", ts=T0 + 100 * MINUTE)
    liked_style = Track(**track("new-loud", "rock", 0.9, valence=0.7))
    disliked_style = Track(**track("new-quiet", "jazz", 0.15, valence=0.3))
    p_liked, p_disliked = model.predict_event(probe, liked_style), model.predict_event(probe, disliked_style)
    assert p_liked > 0.5 > p_disliked, (p_liked, p_disliked)


def test_track_stats_trending_rates_and_neighbours_reach_redis(env: Env, flow) -> None:
    _load_tracks(env, LOUD + QUIET)
    genres = {t["track_id"]: tuple(t["genres"]) for t in LOUD + QUIET}
    # Three listeners complete the same three loud tracks in a session; one also skips a quiet one,
    # and a retried event must not count twice.
    events = []
    for u, user in enumerate(["ana", "bo", "cy"]):
        for i, t in enumerate(LOUD[:3]):
            events.append(event(f"{user}-{i}", user, t["track_id"], "complete",
                                ts=T0 + (10 * u + i) * MINUTE, position_ms=200_000, duration_ms=200_000))
    events.append(event("cy-skip", "cy", QUIET[0]["track_id"], "skip", ts=T0 + 40 * MINUTE,
                        position_ms=3_000, duration_ms=200_000))
    events.append(event("ana-like", "ana", LOUD[3]["track_id"], "like", ts=T0 + 41 * MINUTE))
    events.append(dict(events[0]))  # a duplicate
    for e in events:
        env.produce(env.topics.events, e, key=e["user_id"])
    env.flush()

    ref = track_reference(events, genres)
    stored = wait_for_tracks(env, ref)

    loud0, loud1, loud2, loud3 = (t["track_id"] for t in LOUD)
    # Each pair of the three was co-listened by three listeners; loud-3 with ana's three.
    row0 = {m.decode(): s for m, s in stored.neighbours[loud0]}
    assert set(row0) == {loud1, loud2, loud3}
    assert row0[loud1] == pytest.approx(dict(ref.store.neighbours(loud0))[loud1])
    assert row0[loud1] > row0[loud3]
    assert 2.9 < row0[loud1] <= 3.0  # three co-listens, barely decayed (30-day half-life)
    assert stored.neighbours[QUIET[0]["track_id"]] == []  # a skip makes no pairs
    # Stats: three completes of loud-0 (the duplicate not counted), a skip of quiet-0.
    stats0 = ItemStats.from_fields(stored.stats[loud0])
    assert stats0.value("completes", ref.newest[loud0]) == pytest.approx(3.0, rel=1e-3)
    like, skip, listens = (float(x) for x in stored.rates[QUIET[0]["track_id"]].split(","))
    assert listens == pytest.approx(1.0) and skip > 0.3 > like  # the priors moved by one skip
    assert stored.trending[loud0] > 0 and stored.trending_by_genre["rock"][loud0] == stored.trending[loud0]
    assert QUIET[0]["track_id"] in stored.trending_by_genre["jazz"]
    counters = env.redis.hgetall(env.keys.ops_counters)
    assert int(counters[b"track_stat_writes"]) >= len(ref.stats)
    assert int(counters[b"events_duplicate"]) == 1


def test_artist_memory_reaches_redis_from_whole_histories(env: Env, flow) -> None:
    """Three listeners like the same three artists hours apart (no time window), one also a fourth;
    a skip teaches nothing and a duplicate counts once."""
    artists = [track(f"art{i}-song", "rock", 0.5 + 0.1 * i, artist=f"Band {i}") for i in range(4)]
    _load_tracks(env, artists)
    events = []
    for u, user in enumerate(["ana", "bo", "cy"]):
        for i in range(3):
            events.append(event(f"{user}-{i}", user, artists[i]["track_id"], "like",
                                ts=T0 + (u * 10 + i * 5) * 60 * MINUTE))
    events.append(event("ana-3", "ana", artists[3]["track_id"], "complete", ts=T0 + 2000 * MINUTE,
                        position_ms=200_000, duration_ms=200_000))
    events.append(event("bo-skip", "bo", artists[3]["track_id"], "skip", ts=T0 + 2001 * MINUTE,
                        position_ms=3_000, duration_ms=200_000))
    events.append(dict(events[0]))  # a duplicate
    for e in events:
        env.produce(env.topics.events, e, key=e["user_id"])
    env.flush()

    # Each listener's k-th artist pairs with the earlier ones at pair_weight(k): Band 1 with Band 0
    # as the second artist of three histories, Band 2 as the third, Band 3 as ana's fourth.
    def w(k: int) -> int:  # integer units (`schemas.values.ARTIST_COUNT_UNITS`)
        return pair_weight(k)

    def stored() -> tuple[dict[str, float], dict[str, float]] | None:
        listeners = {k.decode(): float(v) for k, v in env.redis.hgetall(env.keys.artist_listeners).items()}
        row = {m.decode(): s for m, s in env.redis.zrevrange(env.keys.artist_neighbours("Band 0"), 0, -1,
                                                             withscores=True)}
        return (listeners, row) if listeners.get("Band 3") == 1 and row.get("Band 3") == w(4) else None

    listeners, row = wait_for(stored, 60, "the artist memory in Redis")
    assert listeners == {"Band 0": 3, "Band 1": 3, "Band 2": 3, "Band 3": 1}
    assert row == {"Band 1": 3 * w(2), "Band 2": 3 * w(3), "Band 3": w(4)}


def test_the_learned_ranker_learns_every_clear_outcome_validated_progressively(env: Env, flow) -> None:
    _load_tracks(env, LOUD + QUIET)
    events = []
    for u, user in enumerate(["ana", "bo"]):
        for i in range(30):
            loud, quiet = LOUD[i % 4]["track_id"], QUIET[i % 4]["track_id"]
            ts = T0 + (100 * u + 2 * i) * MINUTE
            events.append(event(f"{user}-l{i}", user, loud, "complete", ts=ts, position_ms=200_000,
                                duration_ms=200_000))
            events.append(event(f"{user}-q{i}", user, quiet, "skip", ts=ts + MINUTE, position_ms=5_000,
                                duration_ms=200_000))
            events.append(event(f"{user}-p{i}", user, quiet, "play", ts=ts + MINUTE + 1))  # says too little
    events.insert(3, dict(events[0]))  # a duplicate teaches nothing
    for e in events:
        env.produce(env.topics.events, e, key=e["user_id"])
    env.flush()
    env.wait_for_version("ana", 90)
    env.wait_for_version("bo", 90)

    seen: list[RankerState | None] = [None]

    def published() -> RankerState | None:
        state = seen[0] = decode_ranker(env.redis.get(env.keys.ranker))
        return state if state is not None and state.examples == 120 else None

    try:
        state = wait_for(published, 60, "the learned ranker with every clear outcome")
    except AssertionError:
        raise AssertionError(f"the ranker published: {seen[0]}") from None
    assert state.features == FEATURES
    assert state.positives == 60  # the completes; the skips are the other 60
    assert set(state.metrics["auc"]) == {"learned", "prior"} == set(state.metrics["log_loss"])
    # Loud tracks are completed and quiet ones skipped: both rankers separate them; the learned one
    # has moved its weights away from the prior.
    assert state.metrics["auc"]["learned"] > 0.5
    assert state.weights != list(prior_weights())
