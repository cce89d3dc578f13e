"""Catalog upserts applied to a view (`CatalogView.apply`) give what a rebuild over the same tracks,
in the same order, gives; the old view is left whole; rows of existing tracks keep their positions."""

from __future__ import annotations

import numpy as np
import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from ranking.catalog_index import CatalogIndex, feature_rows, ordered_like
from ranking.catalog_view import CatalogView
from ranking.pipeline import RecommendRequest, gather, pick, score
from ranking.sources import Signals
from schemas.events import EventType
from schemas.profile_codec import RecentTrack, UserProfile
from schemas.tracks import Track

NOW = 1_795_248_000_000


@pytest.fixture(scope="module")
def tracks() -> list[Track]:
    return read_spotify_csv(DEFAULT_SAMPLE)


def changed(track: Track, **fields) -> Track:
    return track.model_copy(update=fields)


def new_track(i: int, like: Track, **fields) -> Track:
    return like.model_copy(update={"track_id": f"new-{i}", "title": f"New {i}", **fields})


def assert_same_view(got: CatalogView, want: CatalogView) -> None:
    """Equal up to the column order of genre and artist names."""
    a, b = got.index, want.index
    assert [t.track_id for t in a.tracks] == [t.track_id for t in b.tracks]
    assert a.tracks == b.tracks and a.position == b.position
    for name in ("features", "has_features", "feature_mean", "feature_std", "popularity"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert sorted(a.genre_names) == sorted(b.genre_names)
    columns = [a.genre_position[g] for g in b.genre_names]
    np.testing.assert_array_equal(a.genre_matrix[:, columns], b.genre_matrix)
    assert [a.artist_names[i] for i in a.artist_of] == [b.artist_names[i] for i in b.artist_of]
    np.testing.assert_array_equal(got.space.z, want.space.z)
    np.testing.assert_array_equal(got.space.sq_norms, want.space.sq_norms)
    np.testing.assert_array_equal(got.track_x, want.track_x)
    np.testing.assert_array_equal(got.global_taste, want.global_taste)
    np.testing.assert_array_equal(got.popular_order, want.popular_order)
    assert got.genre_rows.keys() == want.genre_rows.keys()
    for name, rows in want.genre_rows.items():
        np.testing.assert_array_equal(got.genre_rows[name], rows, err_msg=name)
    assert got.artist_rows.keys() == want.artist_rows.keys()
    for name, rows in want.artist_rows.items():
        np.testing.assert_array_equal(got.artist_rows[name], rows, err_msg=name)
    assert ({k: [a.artist_names[i] for i in v] for k, v in got.artist_keys.items()}
            == {k: [b.artist_names[i] for i in v] for k, v in want.artist_keys.items()})


def snapshot(view: CatalogView) -> dict:
    return {"ids": [t.track_id for t in view.index.tracks], "features": view.index.features.copy(),
            "z": view.space.z.copy(), "x": view.track_x.copy(), "genres": dict(view.genre_rows),
            "popularity": view.index.popularity.copy(), "n": len(view)}


def mixed_changes(tracks: list[Track]) -> list[Track]:
    """Popularity and features moved, a genre added to a track, a track without features, new tracks
    (one with a genre and an artist the catalog does not know yet), and one id twice (last wins)."""
    return [
        changed(tracks[3], popularity=99.0),
        changed(tracks[10], energy=0.01, valence=0.99),
        changed(tracks[20], genres=[*tracks[20].genres, "polka"]),
        changed(tracks[30], popularity=None),
        new_track(1, tracks[5]),
        new_track(2, tracks[6], genres=["sea shanty"], artist="A Brand New Band"),
        changed(tracks[40], danceability=None, energy=None, valence=None, acousticness=None,
                instrumentalness=None, liveness=None, speechiness=None, tempo=None, loudness=None),
        changed(tracks[3], popularity=12.0),
    ]


def rebuilt(view: CatalogView, changes: list[Track]) -> CatalogView:
    """What a full rebuild gives over the same tracks in the view's order, changes upserted."""
    latest = {t.track_id: t for t in changes}
    order = [latest.get(t.track_id, t) for t in view.index.tracks]
    order += [t for i, t in latest.items() if i not in view.index.position]
    return CatalogView.build(order)


def test_apply_equals_a_rebuild_over_the_same_tracks_and_leaves_the_old_view_whole(tracks) -> None:
    view = CatalogView.build(tracks)
    before = snapshot(view)
    changes = mixed_changes(tracks)
    got = view.apply(changes)
    assert_same_view(got, rebuilt(view, changes))
    assert (got.generation, got.epoch) == (view.generation + 1, view.epoch)
    assert len(got) == len(view) + 2
    assert [t.track_id for t in got.index.tracks[: len(view)]] == before["ids"]  # positions kept
    assert [t.track_id for t in got.index.tracks[len(view):]] == ["new-1", "new-2"]
    after = snapshot(view)  # the old view, untouched
    assert after["ids"] == before["ids"] and after["n"] == before["n"]
    for name in ("features", "z", "x", "popularity"):
        np.testing.assert_array_equal(after[name], before[name])
    assert after["genres"].keys() == before["genres"].keys()


def test_recommendations_from_an_applied_view_equal_a_rebuilds(tracks) -> None:
    view = CatalogView.build(tracks)
    changes = mixed_changes(tracks)
    got, want = view.apply(changes), rebuilt(view, changes)
    liked = [t for t in tracks if t.genres and t.genres[0] == "rock"][:8]
    taste = want.index.features[[want.index.position[t.track_id] for t in liked]].mean(0).tolist()
    profile = UserProfile("fan", version=16, as_of_ms=NOW, taste=taste, taste_weight=8,
                          genres={"rock": 4.0, "polka": 1.0}, artists={"A Brand New Band": 2.0},
                          recent=[RecentTrack(t.track_id, EventType.LIKE) for t in liked],
                          counts=dict.fromkeys(EventType, 0) | {EventType.LIKE: 8})
    for who in (profile, None):
        answers = []
        for v in (got, want):
            req = RecommendRequest(now_ms=NOW, k=20)
            gathered = gather(v, who, None, Signals(), req)
            answers.append([(v.index.tracks[i.position].track_id, round(float(i.score), 9))
                            for i in pick(v, who, score(v, who, None, gathered, Signals(), req), req)])
        assert answers[0] == answers[1] and answers[0]


def test_unchanged_tracks_change_nothing(tracks) -> None:
    view = CatalogView.build(tracks)
    assert view.apply([tracks[0], tracks[7]]) is view
    assert view.apply([]) is view


def test_a_change_that_leaves_a_name_with_no_track_rebuilds_in_memory(tracks) -> None:
    view = CatalogView.build(tracks)
    lone = new_track(9, tracks[1], artist="Only Once", genres=["lonely genre"])
    grown = view.apply([lone])
    changes = [changed(lone, artist="Someone Else", genres=["rock"])]
    got = grown.apply(changes)
    want = rebuilt(grown, changes)
    assert_same_view(got, want)
    assert "Only Once" not in got.index.artist_position and "lonely genre" not in got.index.genre_position
    assert (got.generation, got.epoch, len(got)) == (grown.generation + 1, grown.epoch, len(grown))


def test_many_small_applies_equal_one_rebuild(tracks) -> None:
    start = CatalogView.build(tracks[:400])
    view = start
    for i in range(400, 600, 50):
        view = view.apply(tracks[i : i + 50])
    edits = [changed(tracks[450], popularity=1.0), changed(tracks[2], genres=["pop"])]
    view = view.apply(edits)
    assert view.generation == start.generation + 5 and len(view) == 600
    latest = {t.track_id: t for t in edits}
    assert_same_view(view, CatalogView.build([latest.get(t.track_id, t) for t in tracks]))


def test_big_catalog_cells_take_changed_and_new_rows(tracks) -> None:
    view = CatalogView.build(tracks, partition_min_tracks=100)
    assert view.partition is not None
    twin = new_track(1, tracks[50])
    got = view.apply([twin])
    assert got.partition is not None and got.partition.changed_since_trained == 1
    np.testing.assert_array_equal(got.partition.centroids, view.partition.centroids)
    assert sorted(got.partition.order.tolist()) == list(range(len(got)))
    found = got.taste_source(got.index.features[got.index.position["new-1"]], 5, exclude=())
    assert got.index.position["new-1"] in found.positions.tolist()
    # Past the retrain share the cells are trained afresh.
    many = got.apply([new_track(100 + i, t) for i, t in enumerate(tracks[:200])])
    assert many.partition is not None and many.partition.changed_since_trained == 0


def test_a_view_crossing_the_partition_threshold_gets_cells(tracks) -> None:
    view = CatalogView.build(tracks[:90], partition_min_tracks=100)
    assert view.partition is None
    assert view.apply(tracks[90:120]).partition is not None


def test_ordered_like_keeps_previous_positions_and_appends_the_rest(tracks) -> None:
    previous = CatalogIndex.build(tracks[:50])
    scanned = list(reversed(tracks[:60]))
    ordered, kept = ordered_like(previous, scanned)
    assert kept
    assert [t.track_id for t in ordered[:50]] == [t.track_id for t in tracks[:50]]
    assert [t.track_id for t in ordered[50:]] == [t.track_id for t in reversed(tracks[50:60])]
    ordered, kept = ordered_like(previous, tracks[1:60])
    assert not kept and [t.track_id for t in ordered] == [t.track_id for t in tracks[1:60]]


def test_popularity_only_changes_compute_only_their_rows_and_equal_a_rebuild(tracks) -> None:
    view = CatalogView.build(tracks, partition_min_tracks=100)
    changes = [changed(tracks[i], popularity=float(i % 100)) for i in (1, 50, 333)]
    changes.append(new_track(1, tracks[9]))
    got = view.apply(changes)
    want = rebuilt(view, changes)
    assert_same_view(got, want)
    # The cells keep position order within each cell, as the stable sort of a rebuild gives.
    partition = got.partition
    assert partition is not None
    labels = np.empty(len(got), dtype=np.int64)
    labels[partition.order] = np.repeat(np.arange(partition.n_cells), np.diff(partition.offsets))
    np.testing.assert_array_equal(partition.order, np.argsort(labels, kind="stable"))
    np.testing.assert_array_equal(partition.z, got.space.z[partition.order])


def test_feature_rows_equal_each_tracks_feature_vector(tracks) -> None:
    sample = [*tracks[:200], changed(tracks[0], danceability=None, energy=None, valence=None,
                                     acousticness=None, instrumentalness=None, liveness=None,
                                     speechiness=None, tempo=None, loudness=None),
              changed(tracks[1], tempo=400.0, loudness=-80.0)]
    features, has = feature_rows(sample)
    for row, track, flag in zip(features, sample, has, strict=True):
        vector = track.feature_vector()
        assert flag == (vector is not None)
        np.testing.assert_array_equal(row, np.asarray(vector if vector is not None else [0.0] * 9,
                                                      dtype=np.float32))


def test_a_popularity_change_shares_every_array_it_does_not_change(tracks) -> None:
    view = CatalogView.build(tracks, partition_min_tracks=100)
    got = view.apply([changed(tracks[7], popularity=1.0)])
    assert got.index.features is view.index.features and got.index.genre_matrix is view.index.genre_matrix
    assert got.space is view.space and got.track_x is view.track_x and got.partition is view.partition
    assert got.index.popularity is not view.index.popularity
    assert_same_view(got, rebuilt(view, [changed(tracks[7], popularity=1.0)]))
