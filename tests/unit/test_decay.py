"""Commutative decayed sums in event time: online_models/decay.py."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.decay import Decay, DecayedSums, prune_eras

H = 1_000
D = Decay(half_life_ms=H, era_half_lives=8)  # short eras, so the tests cross many of them

contributions = st.lists(
    st.tuples(st.floats(0.0, 100.0), st.integers(0, 100 * H)), min_size=1, max_size=60
)


def direct(items, at_ms: int, decay: Decay = D) -> float:
    return math.fsum(c * 2.0 ** (-(at_ms - t) / decay.half_life_ms) for c, t in items)


@settings(max_examples=200, deadline=None)
@given(contributions, st.randoms())
def test_stored_sums_read_as_the_direct_decayed_sum_in_any_order(items, rnd) -> None:
    at = max(t for _, t in items)
    sums = DecayedSums(D)
    for c, t in items:
        sums.add(c, t)
    # Contributions more than an era behind the newest are dropped: they are below 2^-8 here.
    floor = (D.era(at) - 1) * D.era_ms
    kept = [(c, t) for c, t in items if t >= floor]
    assert sums.value_at(at) == pytest.approx(direct(kept, at), rel=1e-9, abs=1e-12)
    # What was dropped had decayed to ≤ 2^-8 of itself (2^-64 with the default 64-half-life eras).
    dropped = math.fsum(c for c, t in items if t < floor)
    assert abs(sums.value_at(at) - direct(items, at)) <= dropped * 2.0**-8 + 1e-9

    shuffled = items[:]
    rnd.shuffle(shuffled)
    half = len(shuffled) // 2
    worker_a, worker_b = DecayedSums(D), DecayedSums(D)
    for c, t in shuffled[:half]:
        worker_a.add(c, t)
    for c, t in shuffled[half:]:
        worker_b.add(c, t)
    worker_b.merge(worker_a)
    assert sorted(worker_b.eras) == sorted(sums.eras)
    for era in sums.eras:
        assert worker_b.eras[era] == pytest.approx(sums.eras[era], rel=1e-12)


def test_scaled_values_stay_finite_far_from_1970() -> None:
    short = Decay(half_life_ms=3_600_000)  # one hour
    year_2200 = 7_258_118_400_000
    _, value = short.scaled(1.0, year_2200 - 1)
    assert 1.0 <= value < 2.0**64
    sums = DecayedSums(short)
    sums.add(1.0, year_2200 - 1)
    assert sums.value_at(year_2200 - 1) == pytest.approx(1.0)
    assert sums.value_at(year_2200 - 1 + 3_600_000) == pytest.approx(0.5)
    assert sums.value_at(year_2200 + 10_000 * 3_600_000) == 0.0


def test_half_life_halves() -> None:
    sums = DecayedSums(Decay(half_life_ms=H))
    sums.add(8.0, ts_ms=0)
    assert [sums.value_at(k * H) for k in range(4)] == [8.0, 4.0, 2.0, 1.0]


def test_prune_keeps_the_newest_two_eras() -> None:
    eras = {1: 1.0, 5: 1.0, 6: 1.0, 7: 1.0}
    prune_eras(eras, 7)
    assert eras == {6: 1.0, 7: 1.0}


def test_merge_refuses_another_half_life() -> None:
    with pytest.raises(ValueError):
        DecayedSums(Decay(H)).merge(DecayedSums(Decay(2 * H)))
    with pytest.raises(ValueError):
        Decay(0)
