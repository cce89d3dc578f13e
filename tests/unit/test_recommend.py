"""The recommendation pipeline, pure: `ranking.pipeline`, its sources, similar tracks, taste analysis."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from online_models.context_features import INDEX, TRACK_DIM, track_matrix
from online_models.user_model import UserModel
from ranking.catalog_view import CatalogView, catalog_track_matrix
from ranking.config import ExclusionRules, RankingConfig
from ranking.pipeline import RecommendRequest, gather, pick, rank_given, score
from ranking.seeds import SeedFavourites, effective_profile, seed_of
from ranking.similar import similar_to
from ranking.sources import Signals
from ranking.taste_analysis import analyse_taste
from schemas.events import EventType
from schemas.profile_codec import RecentTrack, UserProfile
from schemas.tracks import Track

NOW = 1_795_248_000_000


@pytest.fixture(scope="module")
def tracks() -> list[Track]:
    return read_spotify_csv(DEFAULT_SAMPLE)


@pytest.fixture(scope="module")
def view(tracks: list[Track]) -> CatalogView:
    return CatalogView.build(tracks)


NO_SIGNALS = Signals()


def recommend(view: CatalogView, profile: UserProfile | None, signals: Signals = NO_SIGNALS,
              seed=None, **request) -> list:
    req = RecommendRequest(now_ms=NOW, **request)
    gathered = gather(view, profile, seed, signals, req)
    return pick(view, profile, score(view, profile, seed, gathered, signals, req), req)


def fan_of(view: CatalogView, genre: str, n: int = 8, user: str = "fan") -> UserProfile:
    """A listener who completed and liked n tracks of one genre."""
    liked = [t for t in view.index.tracks if t.genres and t.genres[0] == genre][:n]
    rows = [view.index.position[t.track_id] for t in liked]
    taste = view.index.features[rows].mean(0).tolist()
    recent = [RecentTrack(t.track_id, EventType.LIKE) for t in liked]
    counts = dict.fromkeys(EventType, 0) | {EventType.LIKE: n, EventType.COMPLETE: n}
    return UserProfile(user, version=2 * n, as_of_ms=NOW, taste=taste, taste_weight=n,
                       genres={genre: 4.0}, recent=recent, counts=counts)


def genres_of(view: CatalogView, items: list) -> list[str]:
    return [view.index.tracks[item.position].genres[0] for item in items]


# -- the catalog view ---------------------------------------------------------------------------


def test_vectorised_track_matrix_equals_the_models_encoding(tracks: list[Track]) -> None:
    predicted = tracks[0].model_copy(update={"features_predicted": True})
    no_features = Track(track_id="bare", artist="X", genres=["rock", "indie"])
    sample = [predicted, *tracks[1:50], no_features]
    view = CatalogView.build(sample)
    expected = track_matrix(view.index.tracks)
    assert catalog_track_matrix(view.index).shape == (len(sample), TRACK_DIM)
    np.testing.assert_allclose(catalog_track_matrix(view.index), expected, atol=1e-6)


# -- what is left out ---------------------------------------------------------------------------


def test_recent_disliked_and_requested_tracks_and_disliked_artists_are_left_out(view: CatalogView) -> None:
    profile = fan_of(view, "rock")
    rock = [t for t in view.index.tracks if t.genres[0] == "rock"]
    disliked_artist = rock[20].artist
    profile.artists[disliked_artist] = -2.0
    profile.recent.append(RecentTrack(rock[12].track_id, EventType.DISLIKE))
    profile.recent.append(RecentTrack(rock[13].track_id, EventType.SKIP))
    items = recommend(view, profile, k=40, exclude=frozenset({rock[14].track_id}))
    ids = {item.track_id for item in items}
    assert len(items) == 40
    assert not ids & {r.track_id for r in profile.recent}
    assert rock[14].track_id not in ids
    assert disliked_artist not in {view.index.tracks[item.position].artist for item in items}


HOUR_MS = 3_600_000


def test_repeat_policy_is_a_cool_down_in_event_time(view: CatalogView) -> None:
    """Played within the cool-down: left out; older positives may come back (`familiar` asks for
    some); a dislike never comes back; a recent track without a time (an old profile) is left out."""
    profile = fan_of(view, "rock", n=8)
    old, fresh = profile.recent[:4], profile.recent[4:7]
    for item in old:
        item.ts_ms = NOW - 10 * HOUR_MS
    for item in fresh:
        item.ts_ms = NOW - HOUR_MS
    disliked = profile.recent[7]
    disliked.type, disliked.ts_ms = EventType.DISLIKE, NOW - 30 * HOUR_MS
    old_ids, fresh_ids = {r.track_id for r in old}, {r.track_id for r in fresh}

    default = recommend(view, profile, k=30, diversity=0.0)
    ids = {item.track_id for item in default}
    assert not ids & fresh_ids and disliked.track_id not in ids
    assert ids & old_ids  # liked a while ago: they compete again

    asked = recommend(view, profile, k=10, diversity=0.0, familiar=0.4)
    back = [item for item in asked if item.track_id in old_ids]
    assert len(back) >= 4 and len(asked) == 10
    assert all(item.reasons[0] == "one of your favourites, back after a while" for item in back)
    assert not {item.track_id for item in asked} & (fresh_ids | {disliked.track_id})

    # No cool-down: everything but the dislike may come back; no time at all: left out.
    ids = {item.track_id for item in recommend(view, profile, k=40, diversity=0.0,
                                               rules=ExclusionRules(cooldown_s=0))}
    assert ids & fresh_ids and disliked.track_id not in ids
    for item in profile.recent:
        item.ts_ms = 0
    ids = {item.track_id for item in recommend(view, profile, k=40, diversity=0.0)}
    assert not ids & {r.track_id for r in profile.recent}


# -- sources and terms --------------------------------------------------------------------------


def test_a_rock_fan_gets_rock_with_reasons_and_at_most_two_per_artist(view: CatalogView) -> None:
    items = recommend(view, fan_of(view, "rock"), k=10)
    assert genres_of(view, items).count("rock") >= 8
    artists = [view.index.tracks[item.position].artist for item in items]
    assert max(artists.count(a) for a in artists) <= 2
    assert all(item.reasons for item in items)
    assert any(r == "you like rock" for item in items for r in item.reasons)


def test_co_listened_tracks_come_in_with_because_you_liked(view: CatalogView) -> None:
    profile = fan_of(view, "rock")
    seed_track = view.index.tracks[view.index.position[profile.recent[-1].track_id]]
    # A track just outside the list (16th by relevance) that listeners play with the latest like.
    partner = view.index.tracks[recommend(view, profile, k=16, diversity=0.0)[-1].position]
    signals = Signals(neighbours={seed_track.track_id: [(partner.track_id, 9.0)]})
    items = recommend(view, profile, signals, k=10, diversity=0.0)
    hit = next((item for item in items if item.track_id == partner.track_id), None)
    assert hit is not None, "a strong co-listening neighbour makes the list"
    assert "co_listening" in hit.sources
    assert any(r.startswith(f"because you liked {seed_track.title}") for r in hit.reasons)
    assert partner.track_id not in {i.track_id for i in recommend(view, profile, k=10, diversity=0.0)}


def test_trending_tracks_are_candidates_and_say_so(view: CatalogView) -> None:
    profile = fan_of(view, "rock")
    ranked = recommend(view, profile, k=11, diversity=0.0)
    hot = view.index.tracks[ranked[-1].position]  # 11th by relevance
    assert hot.track_id not in {i.track_id for i in ranked[:10]}
    signals = Signals(trending=[(hot.track_id, 50.0), (ranked[0].track_id, 1.0)])
    items = recommend(view, profile, signals, k=10, diversity=0.0)
    hit = next(item for item in items if item.track_id == hot.track_id)
    assert "trending" in hit.sources  # (its reason, "trending in rock", is tested in test_explain.py)


def test_item_quality_lifts_what_listeners_like_and_sinks_what_they_skip(view: CatalogView) -> None:
    profile = fan_of(view, "rock")
    base = recommend(view, profile, k=10, diversity=0.0)
    loved, skipped = base[-1].track_id, base[0].track_id
    signals = Signals(rates={loved: (0.9, 0.05, 200.0), skipped: (0.02, 0.95, 200.0)})
    after = [item.track_id for item in recommend(view, profile, signals, k=10, diversity=0.0)]
    assert after.index(loved) < 9
    assert skipped not in after[:3]


def test_the_listeners_engagement_model_moves_the_ranking(view: CatalogView) -> None:
    profile = fan_of(view, "rock")
    model = UserModel()
    w = np.asarray(model.weights, dtype=np.float32)
    w[INDEX["audio:energy"]] = -8.0  # this listener's model says: quiet tracks, please
    with_model = replace(profile, model_weights=w.astype("<f4").tobytes())
    energy = INDEX["audio:energy"]

    def mean_energy(items: list) -> float:
        return float(np.mean([view.index.features[item.position][energy] for item in items]))

    plain = recommend(view, profile, k=10)
    modelled = recommend(view, with_model, k=10)
    assert mean_energy(modelled) < mean_energy(plain)
    assert all(item.engagement is not None for item in modelled)
    assert any("you tend to enjoy tracks like this" in item.reasons for item in modelled)


def test_a_new_listener_starts_from_the_global_model_and_moves_to_their_own() -> None:
    from ranking.listener import own_model_share

    weights = bytes(312)
    new = UserProfile("u", model_weights=weights, counts=dict.fromkeys(EventType, 0) | {EventType.LIKE: 1})
    settled = UserProfile("u", model_weights=weights,
                          counts=dict.fromkeys(EventType, 0) | {EventType.COMPLETE: 60, EventType.SKIP: 30})
    assert own_model_share(None) == 0.0 == own_model_share(UserProfile("u"))
    assert own_model_share(new) == pytest.approx(1 / 11)
    assert own_model_share(settled) == pytest.approx(90 / 100)


def test_the_global_model_scores_a_listener_without_their_own_but_gives_no_personal_reason(
    view: CatalogView,
) -> None:
    weights = np.zeros(78, dtype=np.float32)
    weights[INDEX["audio:energy"]] = 6.0
    items = recommend(view, fan_of(view, "rock"), Signals(global_weights=weights), k=10)
    assert all(item.engagement is not None for item in items)
    assert not any("you tend to enjoy tracks like this" in item.reasons for item in items)


def test_mood_moves_the_list_and_says_so(view: CatalogView) -> None:
    profile = fan_of(view, "pop")
    energy = INDEX["audio:energy"]
    chill = recommend(view, profile, k=10, mood="chill")
    energetic = recommend(view, profile, k=10, mood="energetic")
    mean = lambda items: float(np.mean([view.index.features[i.position][energy] for i in items]))  # noqa: E731
    assert mean(chill) < mean(energetic)
    assert any("fits your chill mood" in item.reasons for item in chill)
    assert any("good for running" in item.reasons for item in recommend(view, profile, k=10,
                                                                         activity="running"))


def test_discovery_favours_less_popular_tracks(view: CatalogView) -> None:
    profile = fan_of(view, "rock")
    popularity = lambda items: float(np.mean([view.index.popularity[i.position] for i in items]))  # noqa: E731
    discovering = recommend(view, profile, k=10, discovery=1.0)
    assert popularity(discovering) < popularity(recommend(view, profile, k=10))


def test_diversity_covers_both_tastes_of_a_two_taste_listener(view: CatalogView) -> None:
    rock = fan_of(view, "rock", n=8)
    edm = fan_of(view, "edm", n=8)
    both = replace(rock, taste=list(np.mean([rock.taste, edm.taste], axis=0)),
                   genres={"rock": 3.0, "edm": 3.0}, recent=rock.recent + edm.recent)
    items = recommend(view, both, k=10, diversity=0.6)
    clusters = {int(np.argmin([np.sum((view.space.z[i.position] - view.space.z[view.index.position[
        p.recent[0].track_id]]) ** 2) for p in (rock, edm)])) for i in items}
    assert clusters == {0, 1}


# -- cold start and seeds -----------------------------------------------------------------------


def test_cold_start_spans_genres_with_popular_reasons(view: CatalogView) -> None:
    req = RecommendRequest(k=12, now_ms=NOW)
    gathered = gather(view, None, None, Signals(), req)
    assert gathered.cold_start
    items = pick(view, None, score(view, None, None, gathered, Signals(), req), req)
    assert len(items) == 12 and len(set(genres_of(view, items))) == 6
    assert all(item.reasons[0].startswith("popular in") for item in items)


def test_a_seed_steers_a_new_listener_and_fades_with_events(view: CatalogView) -> None:
    latin = [t for t in view.index.tracks if t.genres[0] == "latin"][:3]
    seed = seed_of(view, SeedFavourites((*(t.track_id for t in latin), "nope"), ("Nobody Known",)))
    assert seed.unknown_tracks == ["nope"] and seed.unknown_artists == ["Nobody Known"]
    items = recommend(view, None, seed=seed, k=10)
    assert genres_of(view, items).count("latin") >= 6
    assert {i.track_id for i in items}.isdisjoint(t.track_id for t in latin)
    young = UserProfile("u", version=5, genres={"rock": 1.0})
    old = UserProfile("u", version=40, taste=[0.5] * 9, genres={"rock": 1.0})
    assert effective_profile(young, seed).genres["latin"] == pytest.approx(0.75)
    assert "latin" not in effective_profile(old, seed).genres


def test_a_seed_by_artist_uses_their_tracks(view: CatalogView) -> None:
    artist = view.index.tracks[0].artist
    seed = seed_of(view, SeedFavourites((), (artist.upper(),)))
    assert seed.positions and all(view.index.tracks[i].artist == artist for i in seed.positions)
    assert seed.artists == {artist: 1.0}


# -- re-rank and similar ------------------------------------------------------------------------


def test_rank_given_returns_every_known_track_once_best_first_and_reports_unknown(view: CatalogView) -> None:
    ids = [t.track_id for t in view.index.tracks[:30]]
    req = RecommendRequest(k=10, now_ms=NOW, diversity=0.0)
    items, unknown = rank_given(view, fan_of(view, "rock"), None, [*ids, ids[0], "zzz", "yyy", "zzz"],
                                Signals(), req)
    assert unknown == ["zzz", "yyy"]
    assert sorted(item.track_id for item in items) == sorted(ids)
    scores = [item.score for item in items]
    assert scores == sorted(scores, reverse=True)


def test_similar_tracks_exclude_the_track_cap_artists_and_include_co_listening(view: CatalogView) -> None:
    track = view.index.tracks[3]
    partner = view.index.tracks[400]
    req = RecommendRequest(k=10, now_ms=NOW)
    items = similar_to(view, 3, [(partner.track_id, 5.0)], req)
    ids = [item.track_id for item in items]
    assert track.track_id not in ids and partner.track_id in ids
    artists = [view.index.tracks[i.position].artist for i in items]
    assert max(artists.count(a) for a in artists) <= 2
    assert any(r.startswith("listeners play it with") for r in items[ids.index(partner.track_id)].reasons)


# -- taste analysis -----------------------------------------------------------------------------


def test_taste_analysis_finds_two_clusters_and_names_moods(view: CatalogView) -> None:
    rock = fan_of(view, "rock", n=8)
    edm = fan_of(view, "edm", n=8)
    both = replace(rock, recent=rock.recent + edm.recent, tod_counts=[0, 0, 0, 0, 1, 9])
    analysis = analyse_taste(view, both)
    assert len(analysis["clusters"]) >= 2
    assert sum(c["size"] for c in analysis["clusters"]) == 16
    assert all(c["described_as"] and c["examples"] for c in analysis["clusters"])
    assert len(analysis["moods"]) == 3 and analysis["listening_time"] == "mostly 20-24 h (UTC)"
    assert analysis["drift"] is None and analysis["engagement_model"]["own_model"] is False


def test_the_clock_sets_a_time_of_day_nudge_without_a_reason(view: CatalogView) -> None:
    from_clock = RecommendRequest(now_ms=NOW, clock_hour=23)
    assert from_clock.target is not None
    assert (from_clock.target.name, from_clock.target.label) == ("night", "")
    assert RecommendRequest(now_ms=NOW, hour=8, clock_hour=23).target.name == "morning"  # the request wins
    assert RecommendRequest(now_ms=NOW, mood="chill", clock_hour=23).target.name == "chill"
    plain = recommend(view, fan_of(view, "pop"), k=10)
    nudged = recommend(view, fan_of(view, "pop"), k=10, clock_hour=23)
    assert [i.score for i in nudged] != [i.score for i in plain]
    assert not any("fits the night" in item.reasons for item in nudged)


def test_on_a_big_catalog_the_genre_source_searches_near_cells_and_keeps_the_genre(
    tracks: list[Track], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ranking.sources.grouped as rec

    exact = CatalogView.build(tracks)
    celled = CatalogView.build(tracks, partition_min_tracks=1)
    assert celled.partition is not None
    profile = fan_of(exact, "rock")
    taste, ranked = profile.taste, [("rock", 4.0)]
    want = rec.best_within(exact, exact.genre_rows, ranked, taste, 40, set(), "genre")
    monkeypatch.setattr(rec, "WITHIN_EXACT_MAX", 10)
    monkeypatch.setattr(rec, "WITHIN_PROBE", 8)
    got = rec.best_within(celled, celled.genre_rows, ranked, taste, 40, set(), "genre")
    assert len(got) == 40
    assert all("rock" in celled.index.tracks[i].genres for i in got.positions)
    assert len(set(got.positions.tolist()) & set(want.positions.tolist())) >= 30


def test_the_learned_ranker_takes_over_the_terms_it_covers_as_it_learns(view: CatalogView) -> None:
    from ranking.ranker import FEATURES, prior_weights
    from ranking.scoring import learned_share
    from schemas.values import RankerState

    profile = fan_of(view, "rock")
    played = {r.track_id for r in profile.recent}
    liked_artist = max((name for name, rows in view.artist_rows.items()
                        if not {view.index.tracks[int(i)].track_id for i in rows} & played),
                       key=lambda name: (len(view.artist_rows[name]), name))
    profile.artists = {liked_artist: 3.0}
    # The soft artist penalty off, and a hand weight on artist affinity (the default has none): the
    # plain list may hold the liked artist up to the hard cap.
    from ranking.config import RankingConfig

    no_penalty = RankingConfig(artist_repeat_penalty=0.0, artist=0.8)
    plain = recommend(view, profile, k=20, diversity=0.0, config=no_penalty)
    cold = RankerState(FEATURES, list(prior_weights(no_penalty)), 0.0, examples=0)
    assert learned_share(cold) == 0.0
    assert [i.track_id for i in recommend(view, profile, Signals(ranker=cold), k=20, diversity=0.0,
                                          config=no_penalty)] == [i.track_id for i in plain]
    # A ranker that learned, from a million outcomes (half of them skips), that this listener's artist
    # affinity means skips, and ranks the stream's events better than the hand weights do.
    weights = dict(zip(FEATURES, prior_weights(no_penalty), strict=True)) | {"artist": -5.0}
    proved = {"auc": {"learned": 0.80, "prior": 0.75}}
    learned = RankerState(FEATURES, [weights[f] for f in FEATURES], 0.0, examples=1_000_000,
                          metrics=proved, positives=500_000)
    assert learned_share(learned) > 0.99
    items = recommend(view, profile, Signals(ranker=learned), k=20, diversity=0.0, config=no_penalty)

    def by_artist(found: list) -> int:
        return sum(view.index.tracks[i.position].artist == liked_artist for i in found)

    assert by_artist(plain) >= 2 and by_artist(items) < by_artist(plain)
    # A ranker over other features is ignored.
    other = RankerState(("x",), [1.0], 0.0, examples=1_000_000, metrics=proved, positives=500_000)
    assert learned_share(other) == 0.0


def test_the_learned_ranker_counts_only_once_it_has_seen_both_outcomes_and_beats_the_prior() -> None:
    from ranking.config import RankingConfig
    from ranking.ranker import FEATURES, prior_weights
    from ranking.scoring import learned_share
    from schemas.values import RankerState

    def ranker(positives: int, negatives: int, auc: tuple[float, float]) -> RankerState:
        return RankerState(FEATURES, list(prior_weights()), 0.0, examples=positives + negatives,
                           metrics={"auc": {"learned": auc[0], "prior": auc[1]}}, positives=positives)

    # A stream of completes alone (the Last.fm replay) teaches nothing about what ranks well.
    assert learned_share(ranker(100_000, 0, (0.0, 0.0))) == 0.0
    # Proved on the stream: the share grows with the rarer outcome, not with the total.
    config = RankingConfig(ranker_prior_examples=1_000)
    assert learned_share(ranker(9_000, 1_000, (0.9, 0.8)), config) == 0.5
    assert learned_share(ranker(1_000, 9_000, (0.9, 0.8)), config) == 0.5
    assert learned_share(ranker(90_000, 1_000, (0.9, 0.8)), config) == 0.5
    # The prior still ranks the same events better: it keeps the list.
    assert learned_share(ranker(9_000, 1_000, (0.8, 0.8)), config) == 0.0
    assert learned_share(ranker(9_000, 1_000, (0.7, 0.8)), config) == 0.0


def test_popularity_comes_from_the_stream_with_the_catalog_as_fallback(view: CatalogView) -> None:
    from ranking.scoring import stream_popularity

    by_catalog = sorted(range(len(view)), key=lambda i: float(view.index.popularity[i]))
    obscure = [view.index.tracks[i].track_id for i in by_catalog[:3]]  # the catalog's least popular
    streamed = [(obscure[0], 400.0), (obscure[1], 20.0)]
    rates = {obscure[0]: (0.1, 0.3, 400.0), obscure[1]: (0.1, 0.3, 20.0)}
    signals = Signals(stream_popular=streamed, rates=rates)
    request = RecommendRequest(k=10, now_ms=NOW)
    gathered = gather(view, None, None, signals, request)  # a listener nobody knows
    popular = [c for c in gathered.candidates if "popular" in c.sources]
    assert view.index.tracks[popular[0].position].track_id == obscure[0]
    assert popular[0].sources["popular"] == pytest.approx(1.0)
    scored = score(view, None, None, gathered, signals, request)
    j = [c.position for c in scored.candidates].index(view.index.position[obscure[0]])
    assert scored.terms["popular"][j] == pytest.approx(RankingConfig().popularity)
    values = stream_popularity(signals, obscure, view.index.popularity[by_catalog[:3]])
    assert values[0] == pytest.approx(1.0) and 0 < values[1] < 1
    assert values[2] == pytest.approx(float(view.index.popularity[by_catalog[2]]))  # not streamed: catalog
