"""The taste learner: online_models/taste.py."""

from __future__ import annotations

import copy
import math
import random

import pytest

from online_models.feedback import feedback_weight
from online_models.taste import TasteConfig, TasteLearner
from schemas.events import Event, EventType
from schemas.profile_codec import RecentTrack, UserProfile, decode_profile, encode_profile
from schemas.tracks import Track

T0 = 1_795_248_000_000
DAY = 86_400_000
HALF_LIFE = TasteConfig().affinity_half_life_ms

LOW = dict(danceability=0.1, energy=0.2, valence=0.1, acousticness=0.9, instrumentalness=0.8,
           liveness=0.1, speechiness=0.05, tempo=70.0, loudness=-30.0)
HIGH = dict(danceability=0.9, energy=0.9, valence=0.8, acousticness=0.1, instrumentalness=0.0,
            liveness=0.3, speechiness=0.1, tempo=170.0, loudness=-4.0)
MID = dict(danceability=0.5, energy=0.5, valence=0.5, acousticness=0.5, instrumentalness=0.5,
           liveness=0.5, speechiness=0.5, tempo=125.0, loudness=-30.0)


def track(track_id: str, features: dict[str, float] | None = None, genres: tuple[str, ...] = ("rock",),
          artist: str = "Band") -> Track:
    return Track(track_id=track_id, artist=artist, genres=list(genres), **(features or {}))


class Events:
    """Makes events with unique ids and increasing times."""

    def __init__(self, user_id: str = "u1", ts: int = T0) -> None:
        self.user_id = user_id
        self.ts = ts
        self.n = 0

    def __call__(self, type_: str, track_id: str = "t", *, ts: int | None = None,
                 event_id: str | None = None, **fields: int) -> Event:
        self.n += 1
        if ts is None:
            self.ts += 1_000
            ts = self.ts
        return Event(event_id=event_id or f"e{self.n}", user_id=self.user_id, track_id=track_id,
                     type=type_, ts=ts, **fields)


def vector(t: Track) -> list[float]:
    v = t.feature_vector()
    assert v is not None
    return v


def distance(a: list[float], b: list[float]) -> float:
    return math.dist(a, b)


# -- taste vector ------------------------------------------------------------------------------


def test_first_like_sets_taste_to_the_track() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    high = track("h", HIGH)
    learner.learn_one(profile, ev("like", "h"), high)
    assert profile.taste == pytest.approx(vector(high))
    assert profile.taste_weight == pytest.approx(1.0)


def test_first_positive_of_any_kind_sets_taste() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    low = track("l", LOW)
    learner.learn_one(profile, ev("play", "l"), low)
    assert profile.taste == pytest.approx(vector(low))
    assert profile.taste_weight == pytest.approx(0.1)


def test_second_like_moves_halfway_by_running_mean() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    low, high = track("l", LOW), track("h", HIGH)
    learner.learn_one(profile, ev("like", "l"), low)
    learner.learn_one(profile, ev("like", "h"), high)
    # rate = w / (taste_weight + w) = 1 / (1 + 1)
    expected = [(a + b) / 2 for a, b in zip(vector(low), vector(high), strict=True)]
    assert profile.taste == pytest.approx(expected)
    assert profile.taste_weight == pytest.approx(2.0)


def test_weak_positive_moves_by_its_share_of_the_weight() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    low, high = track("l", LOW), track("h", HIGH)
    learner.learn_one(profile, ev("like", "l"), low)
    learner.learn_one(profile, ev("complete", "h"), high)
    rate = 0.6 / (1.0 + 0.6)
    expected = [a + rate * (b - a) for a, b in zip(vector(low), vector(high), strict=True)]
    assert profile.taste == pytest.approx(expected)


def test_settled_taste_still_follows_at_min_rate() -> None:
    learner, ev = TasteLearner(), Events()
    low, high = track("l", LOW), track("h", HIGH)
    profile = UserProfile("u1", taste=vector(low), taste_weight=1000.0)
    learner.learn_one(profile, ev("like", "h"), high)
    # 1 / 1001 is below min_rate, so the step is min_rate.
    rate = learner.config.min_rate
    expected = [a + rate * (b - a) for a, b in zip(vector(low), vector(high), strict=True)]
    assert profile.taste == pytest.approx(expected)


@pytest.mark.parametrize(("type_", "fields"), [("dislike", {}),
                                               ("skip", {"position_ms": 5_000, "duration_ms": 200_000})])
def test_negative_pushes_taste_away_from_the_track(type_: str, fields: dict[str, int]) -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    mid, low = track("m", MID), track("l", LOW)
    learner.learn_one(profile, ev("like", "m"), mid)
    before = list(profile.taste)
    weight_before = profile.taste_weight
    negative = ev(type_, "l", **fields)
    learner.learn_one(profile, negative, low)
    assert distance(profile.taste, vector(low)) > distance(before, vector(low))
    rate = learner.config.min_rate * -feedback_weight(negative)
    expected = [t - rate * (x - t) for t, x in zip(before, vector(low), strict=True)]
    assert profile.taste == pytest.approx(expected)
    assert profile.taste_weight == weight_before
    assert all(0.0 <= v <= 1.0 for v in profile.taste)


def test_pushing_away_stays_within_unit_range() -> None:
    learner, ev = TasteLearner(), Events()
    extreme = dict(danceability=1.0, energy=0.0, valence=1.0, acousticness=0.0, instrumentalness=1.0,
                   liveness=0.0, speechiness=1.0, tempo=0.0, loudness=0.0)
    opposite = dict(danceability=0.0, energy=1.0, valence=0.0, acousticness=1.0, instrumentalness=0.0,
                    liveness=1.0, speechiness=0.0, tempo=250.0, loudness=-60.0)
    profile = UserProfile("u1")
    learner.learn_one(profile, ev("like", "x"), track("x", extreme))
    for _ in range(50):
        learner.learn_one(profile, ev("dislike", "o"), track("o", opposite))
    assert all(0.0 <= v <= 1.0 for v in profile.taste)
    assert profile.taste == pytest.approx(vector(track("x", extreme)))


def test_negatives_before_any_positive_create_no_taste() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("dislike", "l"), track("l", LOW))
    learner.learn_one(profile, ev("skip", "h", position_ms=1_000, duration_ms=100_000), track("h", HIGH))
    assert profile.taste == []
    assert profile.taste_weight == 0.0
    assert profile.version == 2


def test_zero_weight_skip_leaves_taste_alone() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "m"), track("m", MID))
    before = list(profile.taste)
    learner.learn_one(profile, ev("skip", "l", position_ms=200_000, duration_ms=200_000), track("l", LOW))
    assert profile.taste == before


def test_track_without_features_changes_affinities_but_not_taste() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "m"), track("m", MID))
    before = list(profile.taste)
    learner.learn_one(profile, ev("like", "x"), track("x", None, genres=("jazz",), artist="Other"))
    assert profile.taste == before
    assert profile.genres["jazz"] == pytest.approx(1.0)
    assert profile.artists["Other"] == pytest.approx(1.0)


# -- bookkeeping -------------------------------------------------------------------------------


def test_version_grows_by_one_and_as_of_follows_event_time() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    t = track("m", MID)
    for i, type_ in enumerate(["play", "skip", "like", "dislike", "complete", "play"], start=1):
        e = ev(type_, "m", ts=T0 + 7_777 * i)
        learner.learn_one(profile, e, t)
        assert profile.version == i
        assert profile.as_of_ms == T0 + 7_777 * i


def test_counts_per_event_type() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    for type_ in ["play", "play", "skip", "like", "complete", "play"]:
        learner.learn_one(profile, ev(type_, "m"), track("m", MID))
    assert profile.counts == {EventType.PLAY: 3, EventType.SKIP: 1, EventType.LIKE: 1,
                              EventType.DISLIKE: 0, EventType.COMPLETE: 1}


def test_unknown_track_still_counts_but_learns_no_taste_or_affinity() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "m"), track("m", MID, genres=("rock",), artist="Band"))
    before = copy.deepcopy(profile)
    e = ev("like", "ghost")
    learner.learn_one(profile, e, None)
    assert profile.version == before.version + 1
    assert profile.as_of_ms == e.ts
    assert profile.counts[EventType.LIKE] == before.counts[EventType.LIKE] + 1
    assert profile.recent[-1] == RecentTrack("ghost", EventType.LIKE, profile.as_of_ms)
    assert profile.taste == before.taste
    assert profile.taste_weight == before.taste_weight
    assert profile.genres == before.genres
    assert profile.artists == before.artists
    assert profile.affinity_at_ms == before.affinity_at_ms


def test_recent_is_bounded_newest_last() -> None:
    learner = TasteLearner(TasteConfig(recent_size=5))
    profile, ev = UserProfile("u1"), Events()
    for i in range(12):
        learner.learn_one(profile, ev("play" if i % 2 else "skip", f"t{i}"), None)
    assert [r.track_id for r in profile.recent] == ["t7", "t8", "t9", "t10", "t11"]
    assert profile.recent[-1].type is EventType.PLAY
    assert profile.recent[0].type is EventType.PLAY
    assert profile.recent[1].type is EventType.SKIP


def test_default_recent_size_is_20() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    for i in range(40):
        learner.learn_one(profile, ev("play", f"t{i}"), None)
    assert len(profile.recent) == 20
    assert profile.recent[-1].track_id == "t39"
    assert profile.recent[0].track_id == "t20"


# -- affinities --------------------------------------------------------------------------------


def test_affinities_add_the_feedback_weight() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    t = track("m", MID, genres=("rock", "indie"), artist="Band")
    same_time = T0
    learner.learn_one(profile, ev("like", "m", ts=same_time), t)
    learner.learn_one(profile, ev("complete", "m", ts=same_time), t)
    skip = ev("skip", "m", ts=same_time, position_ms=20_000, duration_ms=200_000)
    learner.learn_one(profile, skip, t)
    expected = 1.0 + 0.6 - 0.72
    assert profile.genres == pytest.approx({"rock": expected, "indie": expected})
    assert profile.artists == pytest.approx({"Band": expected})
    assert profile.affinity_at_ms == same_time


def test_affinity_halves_after_one_half_life() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "a", ts=T0), track("a", MID, genres=("rock",), artist="A"))
    later = ev("like", "b", ts=T0 + HALF_LIFE)
    learner.learn_one(profile, later, track("b", MID, genres=("jazz",), artist="B"))
    assert profile.genres["rock"] == pytest.approx(0.5, rel=1e-12)
    assert profile.artists["A"] == pytest.approx(0.5, rel=1e-12)
    assert profile.genres["jazz"] == pytest.approx(1.0)
    assert profile.affinity_at_ms == T0 + HALF_LIFE


def test_affinity_decay_is_exponential_in_event_time() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "a", ts=T0), track("a", MID, genres=("rock",)))
    learner.learn_one(profile, ev("play", "b", ts=T0 + 2 * HALF_LIFE), track("b", MID, genres=("jazz",)))
    assert profile.genres["rock"] == pytest.approx(0.25, rel=1e-12)
    learner.learn_one(profile, ev("play", "b", ts=T0 + 2 * HALF_LIFE + HALF_LIFE // 2), None)
    # A track-less event does not decay the affinities.
    assert profile.genres["rock"] == pytest.approx(0.25, rel=1e-12)
    learner.learn_one(profile, ev("play", "c", ts=T0 + 3 * HALF_LIFE), track("c", MID, genres=("pop",)))
    assert profile.genres["rock"] == pytest.approx(0.125, rel=1e-12)


def test_zero_weight_event_still_decays() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "a", ts=T0), track("a", MID, genres=("rock",)))
    end_skip = ev("skip", "a", ts=T0 + HALF_LIFE, position_ms=100_000, duration_ms=100_000)
    learner.learn_one(profile, end_skip, track("a", MID, genres=("rock",)))
    assert profile.genres == pytest.approx({"rock": 0.5})


def test_out_of_order_event_does_not_decay_or_rewind() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "a", ts=T0 + DAY), track("a", MID, genres=("rock",)))
    learner.learn_one(profile, ev("like", "a", ts=T0), track("a", MID, genres=("rock",)))
    assert profile.genres == pytest.approx({"rock": 2.0})
    assert profile.affinity_at_ms == T0 + DAY


def test_affinity_decays_after_an_event_at_epoch_zero() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "a", ts=0), track("a", MID, genres=("rock",)))
    learner.learn_one(profile, ev("like", "b", ts=HALF_LIFE), track("b", MID, genres=("jazz",)))
    assert profile.genres["rock"] == pytest.approx(0.5)


def test_only_strongest_genres_kept_and_strong_negative_survives() -> None:
    learner = TasteLearner(TasteConfig(max_genres=2, max_artists=2))
    profile, ev = UserProfile("u1"), Events()
    learner.learn_one(profile, ev("dislike", "a", ts=T0), track("a", MID, genres=("metal",), artist="M"))
    learner.learn_one(profile, ev("play", "b", ts=T0), track("b", MID, genres=("pop",), artist="P"))
    learner.learn_one(profile, ev("play", "c", ts=T0), track("c", MID, genres=("jazz",), artist="J"))
    learner.learn_one(profile, ev("like", "d", ts=T0), track("d", MID, genres=("rock",), artist="R"))
    assert profile.genres == pytest.approx({"metal": -1.0, "rock": 1.0})
    assert profile.artists == pytest.approx({"M": -1.0, "R": 1.0})


def test_default_limits_on_genres_and_artists() -> None:
    config = TasteConfig()
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    for i in range(40):
        t = track(f"t{i}", MID, genres=(f"g{i}",), artist=f"artist {i}")
        learner.learn_one(profile, ev("complete" if i % 3 else "like", t.track_id, ts=T0), t)
    assert len(profile.genres) == config.max_genres == 14
    assert len(profile.artists) == config.max_artists == 32
    # The likes (every third, weight 1.0) outrank the completes (0.6).
    likes = {f"g{i}" for i in range(0, 40, 3)}
    assert likes <= set(profile.genres)


def test_artist_less_track_adds_no_artist() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("like", "a"), track("a", MID, genres=("rock",), artist=""))
    assert profile.artists == {}
    assert profile.genres == {"rock": 1.0}


# -- skip rate ---------------------------------------------------------------------------------


def test_skip_rate_is_a_running_mean_at_first() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    sequence = ["play", "skip", "skip", "complete", "skip", "play"]
    skips = 0
    for n, type_ in enumerate(sequence, start=1):
        learner.learn_one(profile, ev(type_, "m"), track("m", MID))
        skips += type_ == "skip"
        assert profile.skip_rate == pytest.approx(skips / n)


def test_likes_and_dislikes_do_not_touch_skip_rate() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("skip", "m"), None)
    learner.learn_one(profile, ev("play", "m"), None)
    learner.learn_one(profile, ev("like", "m"), None)
    learner.learn_one(profile, ev("dislike", "m"), None)
    assert profile.skip_rate == pytest.approx(0.5)


def test_skip_rate_becomes_exponentially_weighted() -> None:
    config = TasteConfig()
    learner, profile, ev = TasteLearner(config), UserProfile("u1"), Events()
    listens = round(1 / config.skip_rate_alpha)  # 20: the running mean's step reaches alpha
    for _ in range(listens):
        learner.learn_one(profile, ev("play", "m"), None)
    assert profile.skip_rate == 0.0
    learner.learn_one(profile, ev("skip", "m"), None)
    assert profile.skip_rate == pytest.approx(config.skip_rate_alpha)
    learner.learn_one(profile, ev("skip", "m"), None)
    a = config.skip_rate_alpha
    assert profile.skip_rate == pytest.approx(a + a * (1 - a))


# -- determinism -------------------------------------------------------------------------------


def _random_stream(seed: int, n: int) -> list[tuple[Event, Track | None]]:
    rng = random.Random(seed)
    catalog = [
        track(f"t{i}", rng.choice([LOW, MID, HIGH, None]), genres=(rng.choice(["rock", "jazz", "pop"]),),
              artist=rng.choice(["A", "B", "C", ""]))
        for i in range(12)
    ]
    ev = Events()
    stream: list[tuple[Event, Track | None]] = []
    for _ in range(n):
        t = rng.choice(catalog)
        type_ = rng.choice(list(EventType)).value
        fields = {"position_ms": rng.randrange(0, 200_000), "duration_ms": 200_000} if type_ == "skip" else {}
        e = ev(type_, t.track_id, ts=T0 + rng.randrange(0, 90 * DAY), **fields)
        stream.append((e, None if rng.random() < 0.1 else t))
    return stream


def test_replay_gives_an_identical_profile() -> None:
    stream = _random_stream(7, 400)
    first, second = UserProfile("u1"), UserProfile("u1")
    for e, t in stream:
        TasteLearner().learn_one(first, e, t)
        TasteLearner().learn_one(second, e, t)
    assert first == second
    assert first.version == len(stream)


def test_resume_from_stored_profile_equals_uninterrupted_run() -> None:
    """Crash and resume: the stored (float32) profile, fed the rest, matches within float32 precision."""
    stream = _random_stream(11, 200)
    learner = TasteLearner()
    whole = UserProfile("u1")
    for e, t in stream:
        learner.learn_one(whole, e, t)
    part = UserProfile("u1")
    for e, t in stream[:120]:
        learner.learn_one(part, e, t)
    resumed = decode_profile(encode_profile(part), "u1")
    # (Redelivered events after a crash are the flow's dedupe's to drop: flows/dedupe.py.)
    for e, t in stream[120:]:
        learner.learn_one(resumed, e, t)
    assert resumed.version == whole.version
    assert resumed.counts == whole.counts
    # Event times are stored to the second.
    assert [(r.track_id, r.type, r.ts_ms // 1000) for r in resumed.recent] == [
        (r.track_id, r.type, r.ts_ms // 1000) for r in whole.recent]
    assert resumed.taste == pytest.approx(whole.taste, abs=1e-5)
    assert resumed.genres == pytest.approx(whole.genres, abs=1e-4)
    assert resumed.artists == pytest.approx(whole.artists, abs=1e-4)


# -- time-of-day pattern -----------------------------------------------------------------------


def test_positive_events_count_in_their_utc_time_of_day_bucket() -> None:
    learner, profile, ev = TasteLearner(), UserProfile("u1"), Events()
    hour_ms = 3_600_000
    midnight = T0 - T0 % (24 * hour_ms)
    learner.learn_one(profile, ev("like", "a", ts=midnight + 1 * hour_ms), None)  # 00-04
    learner.learn_one(profile, ev("complete", "b", ts=midnight + 21 * hour_ms), None)  # 20-24
    learner.learn_one(profile, ev("skip", "c", ts=midnight + 21 * hour_ms), None)  # not positive
    learner.learn_one(profile, ev("play", "d", ts=midnight + 9 * hour_ms), None)  # a start: not counted
    assert profile.tod_counts == [1, 0, 0, 0, 0, 1]


# -- recent tracks: distinct, timed, dislikes remembered longest --------------------------------


def test_recent_tracks_are_distinct_with_the_time_of_their_latest_event() -> None:
    learner, profile, ev = TasteLearner(TasteConfig(recent_size=3)), UserProfile("u1"), Events()
    learner.learn_one(profile, ev("complete", "a", ts=T0), None)
    learner.learn_one(profile, ev("dislike", "b", ts=T0 + 1), None)
    learner.learn_one(profile, ev("play", "a", ts=T0 + 2), None)  # a replay keeps "a" a positive
    assert [(r.track_id, r.type, r.ts_ms) for r in profile.recent] == [
        ("b", EventType.DISLIKE, T0 + 1), ("a", EventType.COMPLETE, T0 + 2)]
    learner.learn_one(profile, ev("play", "b", ts=T0 + 3), None)  # a play does not undo a dislike
    assert profile.recent[-1].type is EventType.DISLIKE
    for i, track in enumerate("cde"):
        learner.learn_one(profile, ev("play", track, ts=T0 + 10 + i), None)
    # Full: the oldest track that is not disliked leaves first.
    assert [r.track_id for r in profile.recent] == ["b", "d", "e"]
    learner.learn_one(profile, ev("like", "b", ts=T0 + 20), None)  # a like does
    assert profile.recent[-1] == RecentTrack("b", EventType.LIKE, T0 + 20)
