"""Reasons in words: online_models/explain.py."""

from __future__ import annotations

from ranking.explain import MAX_REASONS, explain
from schemas.tracks import Track

LIKED = Track(track_id="a", title="Imagine", artist="John Lennon", genres=["rock"])
TRACK = Track(track_id="b", title="Woman", artist="John Lennon", genres=["rock", "pop"])


def test_each_reason_in_words() -> None:
    cases = {
        "co_listening": "because you liked Imagine by John Lennon",
        "taste": "matches your high-energy taste",
        "artist": "you listen to John Lennon",
        "genre": "you like pop",
        "trending": "trending in rock",
        "mood": "fits your chill mood",
        "discovery": "something new: less known but close to your taste",
        "popular": "popular in rock",
    }
    for key, text in cases.items():
        got = explain(TRACK, {key: 0.5}, via=LIKED, taste_words=["high-energy"],
                      liked_genres={"pop": 2.0, "rock": 1.0}, mood_label="fits your chill mood")
        assert got == [text], key


def test_top_three_by_contribution() -> None:
    contributions = {"taste": 0.2, "co_listening": 0.9, "trending": 0.1, "mood": 0.4, "discovery": 0.06}
    got = explain(TRACK, contributions, via=LIKED, mood_label="good for running")
    assert len(got) == MAX_REASONS
    assert got == [
        "because you liked Imagine by John Lennon", "good for running", "close to your audio taste"
    ]


def test_threshold_fallbacks_and_missing_context() -> None:
    assert explain(TRACK, {"taste": 0.01}) == ["popular in rock"]
    assert explain(Track(track_id="x"), {}) == ["popular in the catalog"]
    assert explain(TRACK, {"co_listening": 0.5}) == ["often played together with what you like"]
    assert explain(TRACK, {"mood": 0.5}) == ["popular in rock"]  # no label given: no mood reason
    assert explain(TRACK, {"genre": 0.5}, liked_genres={"jazz": 1.0}) == ["popular in rock"]
    untitled = Track(track_id="t9")
    assert explain(TRACK, {"co_listening": 0.5}, via=untitled) == ["because you liked t9"]
    assert explain(Track(track_id="y"), {"trending": 0.3}) == ["trending now"]


def test_ties_follow_a_fixed_order() -> None:
    got = explain(TRACK, {"discovery": 0.3, "taste": 0.3, "trending": 0.3}, limit=3)
    assert got == ["close to your audio taste", "trending in rock",
                   "something new: less known but close to your taste"]
