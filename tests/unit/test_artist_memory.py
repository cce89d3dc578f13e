"""Artist memory: the per-user history, the per-artist rows, their flow steps, and the cosine scores."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from flows.artist_state import ArtistMemoryLogic, artist_signals_of
from flows.progress import Position
from flows.user_state import ProfileWrite
from online_models.artist_memory import ARTIST_MEMORY_CONFIG, ArtistHistory, ArtistMemoryConfig, ArtistRow
from ranking.collaborative import ArtistSpace, ScoreView, artist_scores, score_array, scores_at
from schemas.events import Event
from schemas.values import ARTIST_COUNT_UNITS


def event(kind: str, ts: int = 0) -> Event:
    return Event(event_id=f"e{ts}{kind}", user_id="u", track_id="t", type=kind, ts=ts)


def test_only_positive_events_enter_the_history() -> None:
    history = ArtistHistory()
    assert history.learn_one(event("skip"), "A") is None
    assert history.learn_one(event("play"), "A") is None
    assert history.learn_one(event("dislike"), "A") is None
    assert history.learn_one(event("complete"), "A") == []
    assert history.learn_one(event("like"), "B") == ["A"]
    assert history.learn_one(event("like"), None) is None


def test_the_history_is_bounded_and_keeps_the_most_recent() -> None:
    history = ArtistHistory(config=ArtistMemoryConfig(history_size=3))
    for name in "ABCD":
        history.learn_one(event("like"), name)
    assert list(history.artists) == ["B", "C", "D"]
    history.learn_one(event("like"), "B")  # seen again: moves to the end, no pairs
    assert list(history.artists) == ["C", "D", "B"]
    assert history.learn_one(event("like"), "E") == ["C", "D", "B"]
    assert list(history.artists) == ["D", "B", "E"]


def exact_counts(histories: list[list[str]]) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Listeners per artist, and each pair's co-occurrence: 1/k^γ of a listener (in units) for the
    pair their k-th distinct artist formed with each earlier one."""
    listeners: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    units, gamma = ARTIST_COUNT_UNITS, ARTIST_MEMORY_CONFIG.listener_weight
    for artists in histories:
        for a in set(artists):
            listeners[a] = listeners.get(a, 0) + 1
        order = list(dict.fromkeys(artists))
        for k, b in enumerate(order, start=1):
            for a in order[: k - 1]:
                pair = (min(a, b), max(a, b))
                pairs[pair] = pairs.get(pair, 0) + max(1, round(units / k**gamma))
    return listeners, pairs


def test_a_pair_counts_less_in_a_longer_history() -> None:
    from online_models.artist_memory import pair_weight

    units = ARTIST_COUNT_UNITS
    inverse = ArtistMemoryConfig(listener_weight=1.0)
    assert [pair_weight(k, inverse) for k in (1, 2, 4, 64)] == [units, units // 2, units // 4, units // 64]
    flat = ArtistMemoryConfig(listener_weight=0.0)
    assert {pair_weight(k, flat) for k in (1, 2, 50)} == {units}  # γ = 0: every pair counts one
    gamma = ARTIST_MEMORY_CONFIG.listener_weight
    assert 0 < gamma < 1 and pair_weight(16) == round(units / 16**gamma)
    # A listener's second artist forms one pair worth 1/2^γ of a listener; their third, two of 1/3^γ.
    history = ArtistHistory()
    entered = [(name, history.learn_one(event("like"), name)) for name in "ABC"]
    signals = dict(artist_signals_of([("u", write_of(entered))]))
    assert signals["C"] == (1, {"A": pair_weight(3), "B": pair_weight(3)})
    assert signals["A"] == (1, {"B": pair_weight(2), "C": pair_weight(3)})
    assert pair_weight(2) > pair_weight(3)


def write_of(entered: list[tuple[str, list[str]]]) -> ProfileWrite:
    return ProfileWrite(1, b"", Position("events", 0, 0, 0), 1, 0, [], entered)


def test_flow_steps_equal_the_exact_co_occurrence_in_any_batching() -> None:
    rng = random.Random(3)
    names = [f"artist{i}" for i in range(12)]
    histories = [[rng.choice(names) for _ in range(rng.randint(1, 8))] for _ in range(40)]
    listeners, pairs = exact_counts(histories)
    for batch_size in (1, 7, 40):
        rows: dict[str, ArtistMemoryLogic] = {}
        outputs = []
        for artists in histories:
            history = ArtistHistory()
            entered = []
            for name in artists:
                partners = history.learn_one(event("like"), name)
                if partners is not None:
                    entered.append((name, partners))
            outputs.append(("u", write_of(entered)))
        for start in range(0, len(outputs), batch_size):
            for artist, signal in artist_signals_of(outputs[start : start + batch_size]):
                logic = rows.get(artist)
                if logic is None:
                    logic = rows[artist] = ArtistMemoryLogic(None)
                else:  # a crash and resume between batches changes nothing
                    logic = rows[artist] = ArtistMemoryLogic(logic.snapshot())
                logic.on_batch([signal])
        for artist, n in listeners.items():
            assert rows[artist].row.listeners == n
        for (a, b), n in pairs.items():
            assert rows[a].row.counts[b] == n and rows[b].row.counts[a] == n
        assert sum(len(r.row.counts) for r in rows.values()) == 2 * len(pairs)


def test_a_row_snapshotted_before_weighted_pairs_resumes_in_units() -> None:
    units = ARTIST_COUNT_UNITS
    legacy = ArtistRow(3, {"Blur": 2, "Oasis": 1})  # every pair one listener, no units recorded
    logic = ArtistMemoryLogic(pickle.dumps(legacy))
    assert logic.row.listeners == 3 and logic.row.counts == {"Blur": 2 * units, "Oasis": units}
    again = ArtistMemoryLogic(logic.snapshot())  # a current snapshot resumes as it was
    assert again.row.counts == logic.row.counts and again.row.units == units


def test_a_full_row_is_cut_to_its_strongest_partners() -> None:
    row = ArtistRow(config=ArtistMemoryConfig(row_capacity=3))
    row.learn_one(1, {"a": 5, "b": 4, "c": 3, "d": 2, "e": 1})
    row.learn_one(0, {"f": 1})  # reaches 2 × 3 partners: cut to the 3 strongest
    assert row.counts == {"a": 5, "b": 4, "c": 3}
    assert row.top(2) == [("a", 5), ("b", 4)]
    assert pickle.loads(pickle.dumps(row)).counts == row.counts


def test_scores_are_cosine_over_the_liked_artists() -> None:
    rows = {"A": [("X", 2.0), ("Y", 2.0)], "B": [("X", 1.5)]}
    listeners = {"A": 4.0, "B": 1.0, "X": 4.0, "Y": 16.0}
    w = math.tanh(1.0)
    scores, via = artist_scores({"A": w, "B": w, "Z": -1.0}, rows, listeners, normalise_rows=False)
    assert scores["X"] == pytest.approx(w * 2 / math.sqrt(4 * 4) + w * 1.5 / math.sqrt(1 * 4))
    assert scores["Y"] == pytest.approx(w * 2 / math.sqrt(4 * 16))
    assert scores["X"] > scores["Y"]  # the popular partner does not win by popularity
    assert via == {"X": "B", "Y": "A"}
    assert artist_scores({"A": -2.0}, rows, listeners) == ({}, {})
    # Normalised rows: each seed artist's best partner gets its full vote.
    scores, _ = artist_scores({"A": w, "B": w}, rows, listeners)
    assert scores["X"] == pytest.approx(w + w) and scores["Y"] == pytest.approx(w * 0.5)
    # idf: a seed's vote × N^-x, so A (4 listeners) counts half as much as B (1) at x = 0.5.
    scores, via = artist_scores({"A": w, "B": w}, rows, listeners, idf=0.5)
    assert scores["X"] == pytest.approx(w / 2 + w) and scores["Y"] == pytest.approx(w * 0.5 / 2)
    assert via["X"] == "B"


def test_the_asymmetric_cosine_and_shrink_count_popular_and_rare_pairs_less() -> None:
    rows = {"A": [("X", 2.0), ("Y", 2.0)]}
    listeners = {"A": 4.0, "X": 4.0, "Y": 16.0}
    # β = ½ and no shrink is the cosine, through the general path too.
    cosine, _ = artist_scores({"A": 1.0}, rows, listeners, normalise_rows=False)
    assert cosine["Y"] == pytest.approx(2 / math.sqrt(4 * 16))
    same, _ = artist_scores({"A": 1.0}, rows, listeners, normalise_rows=False, shrink=1e-300)
    assert same == pytest.approx(cosine)
    # β: C / (N_h^(1−β) N_b^β); at 0.75 the popular Y (16 listeners) falls further behind X.
    scores, _ = artist_scores({"A": 1.0}, rows, listeners, normalise_rows=False, popularity=0.75)
    assert scores["X"] == pytest.approx(2 / (4**0.25 * 4**0.75))
    assert scores["Y"] == pytest.approx(2 / (4**0.25 * 16**0.75))
    assert scores["Y"] / scores["X"] < cosine["Y"] / cosine["X"]
    # Shrink is added to the denominator before the row is normalised.
    scores, _ = artist_scores({"A": 1.0}, rows, listeners, shrink=4.0)
    assert scores["X"] == pytest.approx(1.0)
    assert scores["Y"] == pytest.approx((2 / (8 + 4)) / (2 / (4 + 4)))


def _reference_artist_scores(seeds, rows, listeners, normalise_rows=True, idf=0.0, popularity=0.5,
                             shrink=0.0):
    """The per-entry loop `ranking.collaborative.scores_at` replaced (the formula's definition)."""
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for h, weight in seeds.items():
        row = rows.get(h)
        n_h = listeners.get(h, 0.0)
        if weight <= 0 or not row or n_h <= 0:
            continue
        scaled = []
        top = 0.0
        cosine = popularity == 0.5 and not shrink
        seed_part = n_h ** (1.0 - popularity)
        for b, count in row:
            n_b = listeners.get(b, 0.0)
            if count > 0 and n_b > 0:
                c = count / math.sqrt(n_b) if cosine else count / (seed_part * n_b**popularity + shrink)
                scaled.append((b, c))
                top = max(top, c)
        if not scaled:
            continue
        factor = weight / top if normalise_rows else weight / (math.sqrt(n_h) if cosine else 1.0)
        if idf:
            factor *= n_h**-idf
        for b, c in scaled:
            share = factor * c
            scores[b] = scores.get(b, 0.0) + share
            if share > best.get(b, (0.0, ""))[0]:
                best[b] = (share, h)
    return scores, {b: h for b, (_, h) in best.items()}


def _random_memory(rng: random.Random):
    """Seeds, rows and listeners over 60 artists: a catalog of 40, 12 others with listeners (partners
    no catalog track has), 8 without; seeds with negative weights, without rows, without listeners."""
    everyone = [f"artist {i}" for i in range(60)]
    catalog = rng.sample(everyone[:52], 40)
    listeners = {a: float(rng.choice([0, 1, 2, 3, 5, 8, 13, 40, 100])) for a in everyone[:52]}
    seeds = {a: rng.choice([-1.0, 0.0, 0.3, 0.8, 0.8, math.tanh(1.0), 2.5]) for a in rng.sample(everyone, 14)}
    rows = {}
    for h in seeds:
        if rng.random() < 0.8:
            partners = rng.sample(everyone, rng.randint(0, 30))
            rows[h] = [(b, float(rng.choice([0, 1, 1, 2, 3, 7, 2.5]))) for b in partners]
    return catalog, seeds, rows, listeners


@pytest.mark.parametrize("normalise_rows", [True, False])
@pytest.mark.parametrize(("popularity", "shrink", "idf"), [
    (0.5, 0.0, 0.0), (0.5, 0.0, 0.25), (0.6, 0.0, 0.25), (0.75, 3.0, 0.0), (0.5, 2.0, 0.5), (0.6, 0.5, 0.25)])
def test_the_arrays_equal_the_per_entry_loop_bit_for_bit(normalise_rows, popularity, shrink, idf) -> None:
    rng = random.Random(f"{normalise_rows}{popularity}{shrink}{idf}")
    params = (normalise_rows, idf, popularity, shrink)
    for _ in range(40):
        catalog, seeds, rows, listeners = _random_memory(rng)
        want, want_via = _reference_artist_scores(seeds, rows, listeners, *params)
        # The dict API, over a space of every artist named.
        got, got_via = artist_scores(seeds, rows, listeners, *params)
        assert got == want and list(got) == list(want) and got_via == want_via
        # Serving's: a catalog space, members as bytes, the others (and unknown members) dropped.
        space = ArtistSpace.build(catalog, {a.encode(): n for a, n in listeners.items()})
        columns = {h: (space.positions(b.encode() for b, _ in row), [c for _, c in row])
                   for h, row in rows.items()}
        found = scores_at(space, seeds, columns, catalog, *params)
        view = ScoreView(found)
        assert dict(view) == {a: s for a, s in want.items() if a in catalog}
        assert dict(found.via_view()) == {a: h for a, h in want_via.items() if a in catalog}
        assert found.scores.tolist() == [want.get(a, 0.0) for a in catalog]


def test_via_ties_go_to_the_earliest_seed_and_views_read_like_dicts() -> None:
    from ranking.catalog_index import CatalogIndex
    from schemas.tracks import Track

    rows = {"A": [("X", 2.0)], "B": [("X", 2.0), ("Y", 1.0)], "C": [("X", 2.0)]}
    listeners = {"A": 4.0, "B": 4.0, "C": 4.0, "X": 4.0, "Y": 1.0}
    seeds = {"C": 1.0, "A": 1.0, "B": 1.0}
    space = ArtistSpace.build(["X", "Y", "Z"], {a.encode(): n for a, n in listeners.items()})
    found = scores_at(space, seeds, {h: (space.positions(b.encode() for b, _ in r), [c for _, c in r])
                                     for h, r in rows.items()}, ["X", "Y", "Z"])
    assert dict(found.via_view()) == {"X": "C", "Y": "B"} == artist_scores(seeds, rows, listeners)[1]
    view = found.score_view()
    assert len(view) == 2 and "Z" not in view and "A" not in view and view.get("Z") is None
    index = CatalogIndex.build([Track(track_id=t, artist=a) for t, a in [("1", "Y"), ("2", "X"), ("3", "Q")]])
    assert score_array(view, index).tolist() == [view["Y"], view["X"], 0.0]  # by name: another index


def test_seed_artists_are_the_liked_ones_plus_a_switch_of_taste() -> None:
    from ranking.catalog_index import CatalogIndex
    from ranking.collaborative import seed_artists
    from ranking.config import RankingConfig
    from schemas.events import EventType
    from schemas.profile_codec import RecentTrack, UserProfile
    from schemas.tracks import Track

    index = CatalogIndex.build([Track(track_id="t0", artist="New 0", genres=["rock"]),
                                Track(track_id="t1", artist="New 1", genres=["jazz"]),
                                Track(track_id="t2", artist="New 2", genres=["jazz"])])
    profile = UserProfile("u", genres={"rock": 4.0}, artists={"Old": 4.0, "Weak": 0.1, "Hated": -3.0},
                          recent=[RecentTrack("t0", EventType.LIKE, 1), RecentTrack("t1", EventType.SKIP, 2),
                                  RecentTrack("t2", EventType.COMPLETE, 3)])
    config = RankingConfig(collaborative_session=3.0, session_recency=0.4, affinity_scale=2.0,
                           collaborative_switch=(0.4, 0.8))
    # The latest positives: t2 (jazz, never played: novel) and t0 (rock, the top genre): novelty ½,
    # a quarter of the way through the switch ramp (0.4 to 0.8): boosted and faded by ¼.
    seeds = seed_artists(profile, index, config)
    assert seeds == pytest.approx({"Old": math.tanh(2.0) * 0.75, "New 2": 3.0 * 0.25,
                                   "New 0": 3.0 * 0.25 * 0.4, "Weak": math.tanh(0.05) * 0.75})
    assert list(seeds)[:2] == ["New 2", "Old"]
    assert "Hated" not in seeds and "New 1" not in seeds  # a dislike, a skip: no seeds
    # A wander below the ramp (novelty 0.4 or less): the liked artists alone, unfaded.
    profile.genres["jazz"] = 1.6  # t2's genre at 0.4 of the top: novelty (0.6 + 0) / 2 = 0.3
    assert seed_artists(profile, index, config) == pytest.approx(
        {"Old": math.tanh(2.0), "Weak": math.tanh(0.05)})
    # A clear switch (every latest positive in a genre never played): the old taste's seeds fade out.
    switched = UserProfile("u", genres={"rock": 4.0}, artists={"Old": 4.0},
                           recent=[RecentTrack("t1", EventType.LIKE, 1),
                                   RecentTrack("t2", EventType.LIKE, 2)])
    seeds = seed_artists(switched, index, config)
    assert seeds["Old"] == 0.0 and seeds["New 2"] == pytest.approx(3.0) and seeds["New 1"] > 0
    # Listening as usual (the latest positives in the top genre): the liked artists alone.
    profile.genres["jazz"] = 4.0
    usual = seed_artists(profile, index, config)
    assert usual == pytest.approx({"Old": math.tanh(2.0), "Weak": math.tanh(0.05)})
    assert seed_artists(None, index) == {}


def test_the_ranker_features_of_the_flow_equal_the_api_s() -> None:
    import numpy as np

    from ranking.ranker import features, features_one
    from schemas.profile_codec import UserProfile

    rng = random.Random(5)
    profile = UserProfile("u", taste=[rng.random() for _ in range(9)], genres={"rock": 1.5, "pop": -2.0},
                          artists={"Muse": 0.7})
    rows, genres, artists, pops, ps = [], [], [], [], []
    for _ in range(20):
        rows.append([rng.random() for _ in range(9)])
        genres.append(rng.choice([("rock",), ("pop", "rock"), (), ("jazz",)]))
        artists.append(rng.choice(["Muse", "Blur", None]))
        pops.append(rng.random())
        ps.append(rng.random())
    vectorised = features(profile, np.array(rows, np.float32), genres, artists, np.array(pops), np.array(ps))
    for j in range(20):
        one = features_one(profile, rows[j], genres[j], artists[j], pops[j], ps[j])
        assert one == pytest.approx(vectorised[j].tolist(), abs=1e-5)


def test_serving_s_genre_and_artist_terms_are_the_ranker_s_genre_and_artist_features() -> None:
    """Serving assembles the ranker's features from the raw genre and artist terms it already has;
    they must equal what `features` (and so the flow's `features_one`) computes."""
    import numpy as np

    from ranking.catalog_index import CatalogIndex
    from ranking.ranker import features
    from ranking.scoring import squash_affinities
    from schemas.profile_codec import UserProfile
    from schemas.tracks import Track

    tracks = [Track(track_id="a", artist="Muse", genres=["rock", "indie"]),
              Track(track_id="b", artist="Blur", genres=["pop"]), Track(track_id="c", artist="X")]
    index = CatalogIndex.build(tracks)
    profile = UserProfile("u", genres={"rock": 1.5, "pop": -2.0, "jazz": 3.0}, artists={"Muse": 0.7})
    rows = np.arange(3)
    genre_fit = index.genre_matrix[rows] @ squash_affinities(profile.genres, index.genre_position, 2.0)
    artist_fit = squash_affinities(profile.artists, index.artist_position, 2.0)[index.artist_of[rows]]
    x = features(profile, np.full((3, 9), 0.5, np.float32), [t.genres for t in tracks],
                 [t.artist for t in tracks], np.zeros(3), None)
    assert x[:, 1] == pytest.approx(genre_fit, abs=1e-6) and x[:, 2] == pytest.approx(artist_fit, abs=1e-6)


def apply_artist_writes(zsets: dict[str, dict[str, float]], items: list) -> None:
    """What `fill_artist_memory` does to the sorted sets, on dicts."""
    from flows.artist_state import fill_artist_memory
    from schemas.keys import KeyLayout

    class Pipe:
        def hset(self, key, mapping):
            pass

        def delete(self, key):
            zsets.pop(key, None)

        def zrem(self, key, *members):
            for m in members:
                zsets.get(key, {}).pop(m, None)

        def zadd(self, key, mapping):
            zsets.setdefault(key, {}).update(mapping)

    fill_artist_memory(Pipe(), KeyLayout("t"), items)


def test_partial_artist_writes_leave_the_sets_a_full_rewrite_leaves() -> None:
    # More partners than are written, so partners enter and leave the top; resumes in between.
    from schemas.keys import KeyLayout

    rng = random.Random(5)
    names = [f"artist{i}" for i in range(180)]
    k = ARTIST_MEMORY_CONFIG.neighbours_written
    logics: dict[str, ArtistMemoryLogic] = {}
    zsets: dict[str, dict[str, int]] = {}
    left = 0
    for batch in range(60):
        signals: dict[str, tuple[int, dict[str, int]]] = {}
        for _ in range(rng.randint(1, 60)):
            a, b = rng.choice(names[:5]), rng.choice(names)
            if a != b:
                partners = signals.setdefault(a, (0, {}))[1]
                partners[b] = partners.get(b, 0) + rng.randint(1, 3)
        items = []
        for artist, signal in signals.items():
            logic = logics.get(artist)
            if logic is None or batch % 17 == 0:
                logic = logics[artist] = ArtistMemoryLogic(logic.snapshot() if logic else None)
            writes, _ = logic.on_batch([signal])
            items += [(artist, w) for w in writes]
            left += sum(len(w.removed) for w in writes)
        split = rng.randint(0, len(items))  # one sink batch or two: the same sets
        apply_artist_writes(zsets, items[:split])
        apply_artist_writes(zsets, items[split:])
        for artist, logic in logics.items():
            assert zsets.get(KeyLayout("t").artist_neighbours(artist), {}) == dict(logic.row.top(k))
            assert [p for _, p in logic.top] == [p for p, _ in logic.row.top(k)]
    assert left > 0  # partners did leave a top
