"""The feedback signal: online_models/feedback.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.feedback import (
    EARLY_SKIP_FRACTION,
    EARLY_SKIP_MS,
    feedback_weight,
    is_early_skip,
    played_fraction,
)
from schemas.events import MAX_TRACK_MS, Event, EventType


def event(type_: str, position_ms: int | None = None, duration_ms: int | None = None) -> Event:
    return Event(event_id="e", user_id="u", track_id="t", type=type_, ts=0,
                 position_ms=position_ms, duration_ms=duration_ms)


def test_like_is_plus_one() -> None:
    assert feedback_weight(event("like")) == 1.0


def test_dislike_is_minus_one() -> None:
    assert feedback_weight(event("dislike")) == -1.0


def test_complete_beats_play_beats_zero() -> None:
    complete = feedback_weight(event("complete"))
    play = feedback_weight(event("play"))
    assert complete > play > 0
    assert complete < feedback_weight(event("like"))


def test_documented_values() -> None:
    assert feedback_weight(event("complete")) == pytest.approx(0.6)
    assert feedback_weight(event("play")) == pytest.approx(0.1)


@pytest.mark.parametrize("type_", ["like", "dislike", "complete", "play"])
def test_non_skip_weight_ignores_position(type_: str) -> None:
    assert feedback_weight(event(type_, 1_000, 200_000)) == feedback_weight(event(type_))


@pytest.mark.parametrize(
    ("position", "expected"),
    [(0, -0.8), (50_000, -0.6), (100_000, -0.4), (150_000, -0.2), (200_000, 0.0)],
)
def test_skip_weight_proportional_to_how_early(position: int, expected: float) -> None:
    assert feedback_weight(event("skip", position, 200_000)) == pytest.approx(expected)


def test_skip_documented_example() -> None:
    assert feedback_weight(event("skip", 20_000, 200_000)) == pytest.approx(-0.72)


def test_skip_past_the_end_is_clipped_to_zero() -> None:
    assert feedback_weight(event("skip", 500_000, 200_000)) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("position", "duration"), [(None, None), (None, 200_000), (10_000, None)]
)
def test_skip_with_unknown_position_is_minus_point_four(position: int | None, duration: int | None) -> None:
    assert feedback_weight(event("skip", position, duration)) == pytest.approx(-0.4)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=MAX_TRACK_MS),
    st.integers(min_value=0, max_value=MAX_TRACK_MS),
    st.integers(min_value=0, max_value=MAX_TRACK_MS),
)
def test_skip_weight_monotonic_and_bounded(duration: int, a: int, b: int) -> None:
    early, late = sorted((a, b))
    w_early = feedback_weight(event("skip", early, duration))
    w_late = feedback_weight(event("skip", late, duration))
    assert -0.8 <= w_early <= w_late <= 0.0


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(list(EventType)), st.none() | st.integers(0, 10**7), st.none() | st.integers(1, 10**7))
def test_every_weight_in_minus_one_to_one(
    type_: EventType, position: int | None, duration: int | None
) -> None:
    assert -1.0 <= feedback_weight(event(type_.value, position, duration)) <= 1.0


# -- played_fraction ---------------------------------------------------------------------------


def test_played_fraction() -> None:
    assert played_fraction(event("skip", 50_000, 200_000)) == pytest.approx(0.25)
    assert played_fraction(event("skip", 300_000, 200_000)) == 1.0
    assert played_fraction(event("skip", 0, 200_000)) == 0.0
    assert played_fraction(event("skip", None, 200_000)) is None
    assert played_fraction(event("skip", 5, None)) is None


# -- early skips -------------------------------------------------------------------------------


def test_early_skip_thresholds_as_documented() -> None:
    assert EARLY_SKIP_FRACTION == 0.3
    assert EARLY_SKIP_MS == 30_000


def test_early_skip_by_fraction() -> None:
    # Long track: 60 s of 300 s is 20 % -> early, although past the 30 s rule.
    assert is_early_skip(event("skip", 60_000, 300_000))
    # 100 s of 300 s is 33 % -> not early.
    assert not is_early_skip(event("skip", 100_000, 300_000))


def test_early_skip_fraction_boundary() -> None:
    assert is_early_skip(event("skip", 89_999, 300_000))
    assert not is_early_skip(event("skip", 90_000, 300_000))


def test_early_skip_by_30_second_rule() -> None:
    # 29.999 s of a 60 s track is 50 %, but under 30 s -> early.
    assert is_early_skip(event("skip", 29_999, 60_000))
    assert not is_early_skip(event("skip", 30_000, 60_000))


def test_early_skip_by_30_second_rule_without_duration() -> None:
    assert is_early_skip(event("skip", 10_000, None))
    assert not is_early_skip(event("skip", 40_000, None))


def test_skip_without_position_is_not_early() -> None:
    assert not is_early_skip(event("skip", None, 200_000))
    assert not is_early_skip(event("skip"))


@pytest.mark.parametrize("type_", ["play", "like", "dislike", "complete"])
def test_only_skips_are_early_skips(type_: str) -> None:
    assert not is_early_skip(event(type_, 1_000, 200_000))
