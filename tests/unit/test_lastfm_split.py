"""The Last.fm scenario's join, events and split (benchmarks/lastfm.py) on a tiny synthetic listener table
(the real Last.fm data is for benchmarks only and never enters the tests)."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from benchmarks import lastfm
from benchmarks.lastfm import (
    Catalog,
    evaluation_split,
    history_matrix,
    join,
    list_metrics,
    make_scenario,
    normalise_artist,
    read_lastfm,
    validation_split,
)
from schemas.tracks import Track

# 12 catalog artists, 1 to 4 tracks each; genres alternate rock / pop.
ARTISTS = [f"Band {chr(65 + i)}" for i in range(12)]


def catalog() -> Catalog:
    tracks = []
    for a, name in enumerate(ARTISTS):
        for j in range(1 + a % 4):
            tracks.append(Track(track_id=f"t{a:02d}{j}", title=f"song {j}",
                                artist=name.upper() if a == 3 else name,  # case differs from Last.fm's
                                genres=["rock" if a % 2 else "pop"], popularity=float(10 * j)))
    return Catalog.of(tracks)


def write_table(directory: Path, users: int = 30, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = [*ARTISTS, "The Band A", "Nobody In The Catalog"]  # id 13 is Band A again, 14 unknown
    with (directory / "artists.dat").open("w", encoding="utf-8") as f:
        f.write("id\tname\turl\tpictureURL\r\n")
        for i, n in enumerate(names):
            f.write(f"{i + 1}\t{n}\thttp://x\thttp://y\r\n")
    with (directory / "user_artists.dat").open("w") as f:
        f.write("userID\tartistID\tweight\r\n")
        for u in range(2, 2 + users):
            k = 4 + u % 8  # users 2..: 6..11 artists (some with fewer than 5 after the join)
            for a in sorted(rng.choice(len(names), size=min(k, len(names)), replace=False)):
                f.write(f"{u}\t{a + 1}\t{int(rng.integers(1, 5000))}\r\n")


@pytest.fixture()
def scenario_inputs(tmp_path: Path) -> tuple[Catalog, dict[str, dict[int, float]], dict, dict]:
    write_table(tmp_path)
    names, plays = read_lastfm(tmp_path)
    cat = catalog()
    return cat, join(names, plays, cat, min_artists=5), plays, names


def test_doctests() -> None:
    assert doctest.testmod(lastfm).failed == 0


def test_normalise_artist_joins_spellings() -> None:
    assert normalise_artist("The Band A") == normalise_artist("band a") == "band a"
    assert normalise_artist("BAND D") == normalise_artist("Band D")
    assert normalise_artist("Björk") == "bjork"


def test_join_merges_ids_of_one_name_and_drops_unknown_artists(scenario_inputs) -> None:
    cat, joined, plays, names = scenario_inputs
    assert len(names) == 14 and len(plays) == 30
    band_a = cat.artist_index["band a"]
    for user, artists in joined.items():
        raw = plays[user]
        expected_a = raw.get("1", 0.0) + raw.get("13", 0.0)  # "Band A" and "The Band A"
        assert artists.get(band_a, 0.0) == expected_a
        assert band_a not in artists or expected_a > 0
    # users with fewer than 5 catalog artists are left out; "Nobody In The Catalog" (id 14) never joins
    for user, raw in plays.items():
        known = {normalise_artist(names[aid]) for aid in raw if aid != "14"}
        assert (user in joined) == (len(known) >= 5)
        if user in joined:
            assert set(joined[user]) == {cat.artist_index[key] for key in known}
    assert 0 < len(joined) < len(plays)


def test_split_holds_out_a_fifth_and_never_streams_it(scenario_inputs) -> None:
    cat, joined, _, _ = scenario_inputs
    sc = make_scenario(joined, cat, seed=3, n_eval=6, run_id="t")
    assert len(sc.evaluated) == 6 and len(sc.listeners) == len(joined)
    for i, lst in enumerate(sc.listeners):
        streamed = lst.streamed_artists(cat)
        if i in sc.evaluated:
            assert len(lst.held_out) == len(lst.artists) // 5 >= 1
            assert set(lst.held_out) <= set(lst.artists)
            assert not streamed & set(lst.held_out)
            assert streamed == set(lst.artists) - set(lst.held_out)
        else:
            assert lst.held_out == [] and streamed == set(lst.artists)


def test_events_follow_the_play_weights(scenario_inputs) -> None:
    cat, joined, _, _ = scenario_inputs
    sc = make_scenario(joined, cat, seed=3, n_eval=6, run_id="t")
    for lst in sc.listeners:
        order = sorted(lst.artists, key=lambda a: (-lst.artists[a], a))
        n = len(order)
        completes: dict[int, set[int]] = {}
        for pos, (t, kind) in enumerate(lst.events):
            a = int(cat.artist_of[t])
            if kind == "complete":
                completes.setdefault(a, set()).add(t)
            else:  # a like comes right after the complete of the same track, for a favourite only
                assert kind == "like" and lst.events[pos - 1] == (t, "complete")
                assert order.index(a) < max(1, round(n / 10))
        for a, tracks in completes.items():
            rank = order.index(a)
            assert len(tracks) == min(len(cat.artist_tracks[a]), lastfm.tracks_per_artist(rank, n))
        assert sum(kind == "like" for _, kind in lst.events) == sum(
            1 for a in order[:max(1, round(n / 10))] if a not in lst.held_out)


def test_scenario_is_deterministic_and_seeded(scenario_inputs) -> None:
    cat, joined, _, _ = scenario_inputs
    a = make_scenario(joined, cat, seed=3, n_eval=6, run_id="t")
    b = make_scenario(joined, cat, seed=3, n_eval=6, run_id="t")
    c = make_scenario(joined, cat, seed=4, n_eval=6, run_id="t")
    assert [(x.lastfm_id, x.held_out, x.events) for x in a.listeners] == \
           [(x.lastfm_id, x.held_out, x.events) for x in b.listeners]
    assert [(x.lastfm_id, x.events) for x in a.listeners] != [(x.lastfm_id, x.events) for x in c.listeners]
    assert all(x.user_id == f"lfmt-{x.lastfm_id}" for x in a.listeners)


def test_switch_goes_to_another_genre(scenario_inputs) -> None:
    cat, joined, _, _ = scenario_inputs
    sc = make_scenario(joined, cat, seed=3, n_eval=10, run_id="t", steps=(1, 2))
    switching = [i for i in sc.evaluated if sc.listeners[i].switch_to is not None]
    assert switching
    for i in switching:
        j = sc.listeners[i].switch_to
        assert j in sc.evaluated and j != i
        assert sc.listeners[j].genre != sc.listeners[i].genre


def test_new_stream_shares_are_the_switch_targets_own_first_tracks(scenario_inputs) -> None:
    cat, joined, _, _ = scenario_inputs
    sc = make_scenario(joined, cat, seed=3, n_eval=10, run_id="t", steps=(1, 2))
    shares = lastfm.new_stream_shares(sc, (1, 2))
    switching = [i for i in sc.evaluated if sc.listeners[i].switch_to is not None]
    for step in (1, 2):
        expected = []
        for i in switching:
            new = sc.listeners[sc.listeners[i].switch_to]
            tracks = list(dict.fromkeys(t for t, _ in new.events[:step]))
            expected.append(sum(cat.genre0[t] == new.genre for t in tracks) / len(tracks))
        assert shares[step]["b_genre0"] == pytest.approx(float(np.mean(expected)))
        assert shares[step]["b_artists"] == 0.0  # held-out artists are never streamed
    assert 0.0 < shares[1]["b_genre0"] <= 1.0


def test_max_listeners_keeps_every_evaluated_one(scenario_inputs) -> None:
    cat, joined, _, _ = scenario_inputs
    full = make_scenario(joined, cat, seed=3, n_eval=6, run_id="t")
    small = make_scenario(joined, cat, seed=3, n_eval=6, run_id="t", max_listeners=10)
    assert len(small.listeners) == 10
    assert [x.lastfm_id for x in small.listeners[:6]] == [x.lastfm_id for x in full.listeners[:6]]


def test_validation_split_removes_its_held_out_artists_from_training(scenario_inputs) -> None:
    cat, joined, _, _ = scenario_inputs
    sc = make_scenario(joined, cat, seed=3, n_eval=6, run_id="t")
    val = validation_split(sc, n=5, seed=3)
    ev = evaluation_split(sc)
    assert not set(val.rows.tolist()) & set(sc.evaluated)
    for row, held in zip(val.rows, val.held_out, strict=True):
        assert held
        trained = set(np.flatnonzero(val.train.X_artist[row].toarray().ravel()).tolist())
        assert not trained & held
        assert held <= set(np.flatnonzero(ev.train.X_artist[row].toarray().ravel()).tolist())


def test_history_matrix_sums_event_weights() -> None:
    H = history_matrix([[(0, "complete"), (0, "like"), (2, "complete")], [(1, "complete")]], 3)
    assert H.toarray().tolist() == [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_metrics_count_each_held_out_artist_once() -> None:
    artist_of = np.array([0, 0, 1, 2])
    m = list_metrics([0, 1, 2, 3], artist_of, {0, 2}, k=4)
    assert m["recall"] == 1.0 and m["hr"] == 1.0
    assert m["ndcg"] == pytest.approx((1 + 1 / np.log2(5)) / (1 + 1 / np.log2(3)))
    assert list_metrics([2], artist_of, {0}, k=20) == {"hr": 0.0, "ndcg": 0.0, "recall": 0.0}


def test_variants_are_ranking_overrides_checked_before_any_stack_starts(tmp_path: Path) -> None:
    from benchmarks.quality import load_variants

    good = tmp_path / "good.json"
    good.write_text('{"no artist": {"artist": 0.0}, "cap one": {"max_per_artist": 1}}')
    assert load_variants(good) == {"no artist": {"artist": 0.0}, "cap one": {"max_per_artist": 1}}
    assert load_variants(None) == {}
    bad = tmp_path / "bad.json"
    bad.write_text('{"typo": {"artsit": 0.0}}')
    with pytest.raises(ValueError, match="unknown ranking setting 'artsit'"):
        load_variants(bad)


def test_a_gap_is_reported_against_the_best_baseline_with_a_paired_interval() -> None:
    rng = np.random.default_rng(0)
    better = (rng.random(200) < 0.8).astype(float)
    worse = (rng.random(200) < 0.5).astype(float)
    mean, low, high = lastfm.paired_interval(better, worse)
    assert mean == pytest.approx(better.mean() - worse.mean())
    assert low < mean < high and low > 0  # 0.3 apart over 200 listeners: clearly not chance
    mean, low, high = lastfm.paired_interval(better, better)
    assert mean == low == high == 0.0
    metrics = lastfm.GAP_METRICS
    per = {"Encore": dict.fromkeys(metrics, better), "EASE, artists": dict.fromkeys(metrics, worse),
           "ALS, artists": dict.fromkeys(metrics, 1 - worse)}
    results = lastfm.Results({False: {}, True: {}}, {}, {False: {}, True: {}}, False, None, {},  # type: ignore[arg-type]
                             per_listener={False: per, True: {}})
    lines = lastfm.gap_lines(results, False)
    assert len(lines) == 1 + len(lastfm.GAP_METRICS)
    best = "ALS, artists" if (1 - worse).mean() > worse.mean() else "EASE, artists"
    assert all(line.endswith(f"against {best}") for line in lines[1:])
    assert lastfm.gap_lines(results, True) == []
