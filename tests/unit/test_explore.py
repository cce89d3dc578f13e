"""Exploration: slots for tracks the listener's sources rarely surface, a Thompson-sampling bandit
over candidate sources learned from those slots' outcomes, reasons, and the flow's attribution."""

from __future__ import annotations

import numpy as np

from flows.experiment_state import experiment_signals_of
from flows.progress import Position
from flows.user_state import ProfileWrite
from ranking.catalog_view import CatalogView
from ranking.config import RankingConfig
from ranking.explore import outcome_stats, slot_positions, thompson
from ranking.pipeline import RecommendRequest, gather, pick, score
from ranking.sources.base import Signals
from schemas.events import Event, EventContext, EventType
from schemas.profile_codec import RecentTrack, UserProfile
from schemas.tracks import Track
from schemas.values import EXPLORE_KEY, encode_explore, encode_request_id

T0 = 1_795_000_000_000


def catalog() -> list[Track]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(400):
        genre = ("rock", "pop", "folk", "edm", "jazz")[i % 5]
        energy = float(rng.uniform(0.05, 0.98))
        out.append(Track(track_id=f"t{i}", title=f"Song {i}", artist=f"Artist {i % 80}", genres=[genre],
                         popularity=float(rng.uniform(5, 95)), danceability=float(rng.uniform(0.2, 0.9)),
                         energy=energy, valence=float(rng.uniform(0.05, 0.95)),
                         acousticness=float(np.clip(1 - energy + rng.normal(0, 0.1), 0, 1)),
                         instrumentalness=0.0, liveness=0.1, speechiness=0.05, tempo=80 + 90 * energy,
                         loudness=-20 + 15 * energy))
    return out


VIEW = CatalogView.build(catalog())


def rock_fan() -> UserProfile:
    liked = [t.track_id for t in VIEW.index.tracks if "rock" in t.genres][:10]
    rows = [VIEW.index.position[t] for t in liked]
    recent = [RecentTrack(t, EventType.LIKE, T0 + i * 1000) for i, t in enumerate(liked)]
    return UserProfile("fan", version=len(liked), as_of_ms=T0 + 20_000,
                       taste=[float(x) for x in VIEW.index.features[rows].mean(axis=0)],
                       genres={"rock": 6.0}, recent=recent)


def recommend(config: RankingConfig, signals: Signals = Signals(), k: int = 10):  # noqa: B008
    profile = rock_fan()
    request = RecommendRequest(k=k, now_ms=T0 + 30_000, config=config)
    gathered = gather(VIEW, profile, None, signals, request)
    return pick(VIEW, profile, score(VIEW, profile, None, gathered, signals, request), request)


def test_exploration_slots_bring_tracks_the_regular_list_does_not_and_say_so() -> None:
    regular = recommend(RankingConfig())
    assert all(item.explore is None for item in regular)
    explored = recommend(RankingConfig.with_overrides({"explore_share": 0.2}))
    assert len(explored) == 10
    slots = [i for i, item in enumerate(explored) if item.explore]
    assert slots == slot_positions(10, 2) == [3, 7]
    regular_ids = [item.track_id for item in regular]
    kept = [item.track_id for item in explored if not item.explore]
    assert kept == regular_ids[:8], "the regular picks keep their order; the lowest two give way"
    for i in slots:
        item = explored[i]
        assert item.track_id not in regular_ids
        assert item.explore in ("adjacent", "new_genres", "long_tail") and item.explore in item.sources
        assert item.reasons[0].startswith("something new")
        if item.explore == "new_genres":
            track = VIEW.index.tracks[item.position]
            assert "rock" not in track.genres and item.reasons[0].endswith("a genre new to you")
    again = recommend(RankingConfig.with_overrides({"explore_share": 0.2}))
    assert [i.track_id for i in again] == [i.track_id for i in explored], "deterministic"
    short = recommend(RankingConfig.with_overrides({"explore_share": 0.2}), k=4)
    assert short == recommend(RankingConfig(), k=4), "lists shorter than explore_min_k are not explored"


def test_the_bandit_follows_the_arms_outcomes() -> None:
    config = RankingConfig.with_overrides({"explore_share": 0.1})
    arms = [item.explore for item in recommend(config) if item.explore]
    assert len(arms) == 1
    # Long-tail slots were completed and liked, the others skipped: long-tail wins nearly every draw.
    stats = outcome_stats({"long_tail": {"complete": 80, "like": 30, "skip": 10},
                           "adjacent": {"complete": 5, "skip": 90, "dislike": 10},
                           "new_genres": {"complete": 3, "skip": 70}})
    assert stats["long_tail"] == (110.0, 10.0)
    wins = 0
    for version in range(40):
        profile = rock_fan()
        profile.version += version  # a new profile version: a new draw
        request = RecommendRequest(k=10, now_ms=T0 + 30_000, config=config)
        signals = Signals(explore_stats=stats)
        gathered = gather(VIEW, profile, None, signals, request)
        items = pick(VIEW, profile, score(VIEW, profile, None, gathered, signals, request), request)
        wins += [i.explore for i in items if i.explore] == ["long_tail"]
    assert wins >= 36


def test_thompson_sampling_learns_the_better_arm_from_simulated_outcomes() -> None:
    rng = np.random.default_rng(5)
    truth = {"adjacent": 0.15, "new_genres": 0.3, "long_tail": 0.7, "trending": 0.2}
    counts = {arm: [0.0, 0.0] for arm in truth}
    picks = []
    for _ in range(600):
        arm = thompson(list(truth), {a: (c[0], c[1]) for a, c in counts.items()}, rng)
        counts[arm][0 if rng.random() < truth[arm] else 1] += 1
        picks.append(arm)
    assert picks[-200:].count("long_tail") / 200 > 0.8
    assert all(picks.count(arm) >= 2 for arm in truth), "every arm was tried"


def test_the_flow_credits_an_exploration_arm_only_for_its_slots_track() -> None:
    rid = encode_explore(encode_request_id("abc123", [("ranker", "b")]), [("long_tail", "t7")])

    def ev(i: int, track: str, kind: EventType) -> Event:
        return Event(event_id=f"e{i}", user_id="u", track_id=track, type=kind, ts=T0 + i,
                     context=EventContext(request_id=rid))

    events = [ev(0, "t7", EventType.COMPLETE), ev(1, "t7", EventType.LIKE), ev(2, "t8", EventType.SKIP)]
    write = ProfileWrite(3, None, Position("t", 0, 0, 0), 3, 0, [(e, None, []) for e in events])
    signals = dict(experiment_signals_of([("u", write)]))
    assert signals[EXPLORE_KEY] == {("long_tail", "complete"): 1, ("long_tail", "like"): 1}
    assert signals["ranker"] == {("b", "complete"): 1, ("b", "like"): 1, ("b", "skip"): 1}
