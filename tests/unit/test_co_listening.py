"""Co-listening neighbours: online_models/co_listening.py."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.co_listening import (
    CoListeningConfig,
    CoListeningStore,
    ListeningWindow,
    PairIncrement,
)
from schemas.events import Event

T0 = 1_795_248_000_000
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def ev(track_id: str, ts: int, type_: str = "complete", **fields) -> Event:
    return Event(event_id=f"{track_id}-{ts}-{type_}", user_id="u", track_id=track_id, type=type_, ts=ts,
                 **fields)


def test_positives_within_the_span_become_pairs_once() -> None:
    window = ListeningWindow()
    assert window.learn_one(ev("b", T0)) == []
    assert window.learn_one(ev("a", T0 + MIN)) == [PairIncrement("a", "b", 1.0, T0 + MIN)]
    # A like right after the complete of the same track adds nothing.
    assert window.learn_one(ev("a", T0 + 2 * MIN, "like")) == []
    pairs = window.learn_one(ev("c", T0 + 3 * MIN, "like"))
    assert [(p.a, p.b) for p in pairs] == [("b", "c"), ("a", "c")]


@pytest.mark.parametrize(
    ("type_", "fields"),
    [("play", {}), ("skip", {"position_ms": 1000, "duration_ms": 200_000}), ("dislike", {})],
)
def test_negatives_and_plays_make_no_pairs_and_do_not_enter_the_window(type_, fields) -> None:
    window = ListeningWindow()
    window.learn_one(ev("a", T0))
    assert window.learn_one(ev("b", T0 + MIN, type_, **fields)) == []
    assert [t for t, _ in window.entries] == ["a"]


def test_tracks_older_than_the_span_fall_out() -> None:
    window = ListeningWindow()
    window.learn_one(ev("a", T0))
    window.learn_one(ev("b", T0 + HOUR))
    pairs = window.learn_one(ev("c", T0 + 2 * HOUR + 1))
    assert [(p.a, p.b) for p in pairs] == [("b", "c")]
    assert [t for t, _ in window.entries] == ["b", "c"]
    # The same track, once out of the window, can pair again in a later session.
    assert [(p.a, p.b) for p in window.learn_one(ev("a", T0 + 2 * HOUR + 2))] == [("a", "b"), ("a", "c")]


def test_window_keeps_the_last_n_positives() -> None:
    window = ListeningWindow(config=CoListeningConfig(window_size=3))
    for i in range(5):
        window.learn_one(ev(f"t{i}", T0 + i * MIN))
    assert [t for t, _ in window.entries] == ["t2", "t3", "t4"]
    assert len(window.learn_one(ev("t9", T0 + 10 * MIN))) == 3


def test_window_round_trips_through_bytes() -> None:
    window = ListeningWindow()
    for i, track_id in enumerate(["a", "bé", "c" * 40]):
        window.learn_one(ev(track_id, T0 + i * 7 * MIN + 3))
    data = window.to_bytes()
    assert ListeningWindow.from_bytes(data) == window
    assert len(data) == 9 + sum(2 + len(t.encode()) + 4 for t, _ in window.entries)
    assert ListeningWindow.from_bytes(ListeningWindow().to_bytes()) == ListeningWindow()


def test_neighbours_are_symmetric_decayed_and_ordered() -> None:
    store = CoListeningStore()
    for k in range(3):
        store.learn_one(PairIncrement("a", "b", 1.0, T0 + k))
    store.learn_one(PairIncrement("a", "c", 1.0, T0))
    store.learn_one(PairIncrement("a", "d", 1.0, T0))
    assert [n for n, _ in store.neighbours("a")] == ["b", "c", "d"]  # ties by id
    assert store.neighbours("b", at_ms=T0 + 2) == [("a", pytest.approx(3.0))]
    half_life = store.config.half_life_ms
    assert store.neighbours("a", k=1, at_ms=T0 + 2 + half_life)[0][1] == pytest.approx(1.5)
    assert store.neighbours("unknown") == []
    assert store.neighbours("a", k=0) == []


pairs_strategy = st.lists(
    st.tuples(st.sampled_from("abcdefgh"), st.sampled_from("abcdefgh"), st.integers(0, 3 * 365 * DAY),
              st.floats(0.1, 3.0)),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(pairs_strategy, st.randoms(), st.integers(0, 80))
def test_counts_do_not_depend_on_order_or_on_the_worker_split(items, rnd, cut) -> None:
    increments = [PairIncrement(*sorted((a, b)), w, T0 + t) for a, b, t, w in items if a != b]
    at = T0 + 3 * 365 * DAY
    one = CoListeningStore()
    one.learn_many(increments)
    shuffled = increments[:]
    rnd.shuffle(shuffled)
    first, second = CoListeningStore(), CoListeningStore()
    first.learn_many(shuffled[:cut])
    second.learn_many(shuffled[cut:])
    second.merge(first)
    for track in "abcdefgh":
        expected = one.neighbours(track, k=10, at_ms=at)
        got = second.neighbours(track, k=10, at_ms=at)
        assert [n for n, _ in got] == [n for n, _ in expected] or _tied(expected)
        assert dict(got) == pytest.approx(dict(expected), rel=1e-9, abs=1e-12)


def _tied(ranked: list[tuple[str, float]]) -> bool:
    values = [v for _, v in ranked]
    return any(abs(x - y) <= 1e-9 * max(abs(x), 1e-12) for x, y in itertools.pairwise(values))


def test_a_full_row_is_cut_back_to_the_strongest() -> None:
    config = CoListeningConfig(max_neighbours=2, capacity_factor=2)  # capacity 4, cut above 8
    store = CoListeningStore(config)
    for i in range(8):
        for _ in range(i + 1):  # neighbour n{i} seen i + 1 times
            store.learn_one(PairIncrement("hub", f"n{i}", 1.0, T0))
    assert len(store.rows["hub"]) == 8
    store.learn_one(PairIncrement("hub", "n9", 1.0, T0))  # the ninth: cut back to four
    assert sorted(store.rows["hub"]) == ["n4", "n5", "n6", "n7"]
    assert [n for n, _ in store.neighbours("hub")] == ["n7", "n6"]
    # The other side of each pair keeps its own row.
    assert store.neighbours("n0") == [("hub", 1.0)]


def test_a_positive_session_builds_a_neighbourhood() -> None:
    store = CoListeningStore()
    for user in range(30):
        window = ListeningWindow()
        start = T0 + user * DAY
        session = ["x", "y", "z"] if user % 3 else ["x", "y", "w"]
        for i, track_id in enumerate(session):
            store.learn_many(window.learn_one(ev(track_id, start + i * 4 * MIN, "like")))
    names = [n for n, _ in store.neighbours("x", k=3)]
    assert names == ["y", "z", "w"]
