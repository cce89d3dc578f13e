"""The Spotify-songs CSV loader and the shipped sample."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from encore.catalog_csv import (
    DEFAULT_SAMPLE,
    iter_tracks_json,
    parse_release_year,
    read_spotify_csv,
)
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, decode_track

REPO_ROOT = Path(__file__).resolve().parents[2]
FULL_CSV = REPO_ROOT.parent / "shared" / "data" / "spotify-songs-tidytuesday" / "spotify_songs.csv"
GENRES = {"edm", "rap", "pop", "r&b", "latin", "rock"}

HEADER = [
    *("track_id", "track_name", "track_artist", "track_popularity", "track_album_id"),
    *("track_album_name", "track_album_release_date", "playlist_name", "playlist_id"),
    *("playlist_genre", "playlist_subgenre", "danceability", "energy", "key", "loudness", "mode"),
    *("speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo"),
    "duration_ms",
]

FEATURES = {
    "danceability": "0.748",
    "energy": "0.916",
    "loudness": "-2.634",
    "speechiness": "0.0583",
    "acousticness": "0.102",
    "instrumentalness": "0",
    "liveness": "0.0653",
    "valence": "0.518",
    "tempo": "122.036",
}


def row(track_id: str, **fields: str) -> dict[str, str]:
    values = {
        "track_id": track_id,
        "track_name": f"Song {track_id}",
        "track_artist": "Artist",
        "track_popularity": "66",
        "track_album_id": "album",
        "track_album_name": "Album",
        "track_album_release_date": "2019-06-14",
        "playlist_name": "Playlist",
        "playlist_id": "playlist",
        "playlist_genre": "pop",
        "playlist_subgenre": "dance pop",
        "key": "6",
        "mode": "1",
        "duration_ms": "194754",
        **FEATURES,
    }
    values.update(fields)
    return values


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- the shipped sample ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> list:
    return read_spotify_csv(DEFAULT_SAMPLE)


def test_sample_is_shipped_with_attribution() -> None:
    assert DEFAULT_SAMPLE.is_file()
    notes = (DEFAULT_SAMPLE.parent / "SAMPLE_SOURCE.md").read_text(encoding="utf-8")
    assert "rfordatascience/tidytuesday" in notes
    assert "9902920cfe4940f0914ebb6716801a42f7f19ac88fbd6693eaae7e2822b16845" in notes
    with DEFAULT_SAMPLE.open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == HEADER


def test_sample_loads_about_600_tracks(sample: list) -> None:
    assert 550 <= len(sample) <= 650
    assert len({track.track_id for track in sample}) == len(sample)


def test_sample_tracks_have_nine_features_in_range(sample: list) -> None:
    for track in sample:
        assert track.has_features, track.track_id
        for name in AUDIO_FEATURES:
            low, high = FEATURE_RANGES[name]
            assert low <= getattr(track, name) <= high, (track.track_id, name)
        vector = track.feature_vector()
        assert vector is not None and len(vector) == 9
        assert all(0.0 <= x <= 1.0 for x in vector)


def test_sample_tracks_have_genres_led_by_a_playlist_genre(sample: list) -> None:
    for track in sample:
        assert track.genres, track.track_id
        assert track.genres[0] in GENRES
    assert {track.genres[0] for track in sample} == GENRES


def test_sample_tracks_in_several_playlists_get_several_genres(sample: list) -> None:
    with DEFAULT_SAMPLE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_id = {track.track_id: track for track in sample}
    playlist_genres: dict[str, set[str]] = {}
    for r in rows:
        playlist_genres.setdefault(r["track_id"], set()).add(r["playlist_genre"])
    multi = [tid for tid, genres in playlist_genres.items() if len(genres) > 1]
    assert multi, "the sample should hold tracks found under more than one playlist genre"
    for track_id in multi:
        genres = by_id[track_id].genres
        assert set(genres[: len(playlist_genres[track_id])]) == playlist_genres[track_id]


def test_sample_round_trips_through_kafka_pairs(sample: list) -> None:
    pairs = list(iter_tracks_json(sample))
    assert len(pairs) == len(sample)
    for (key, value), track in zip(pairs, sample, strict=True):
        assert key == track.track_id.encode("utf-8")
        assert decode_track(value) == track
        assert orjson.loads(value)["track_id"] == track.track_id


# --- exact cases on a small CSV -------------------------------------------------------------


def test_rows_of_one_track_are_aggregated(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "songs.csv",
        [
            row("a", playlist_genre="pop", playlist_subgenre="dance pop"),
            row("b", playlist_genre="rock", playlist_subgenre="hard rock"),
            row("a", playlist_genre="EDM", playlist_subgenre="electro house"),
            row("a", playlist_genre="pop", playlist_subgenre="post-teen pop"),
            row("a", playlist_genre="edm", playlist_subgenre="dance pop"),
        ],
    )
    tracks = read_spotify_csv(path)
    assert [t.track_id for t in tracks] == ["a", "b"]
    a, b = tracks
    assert a.genres == ["pop", "edm", "dance pop", "electro house", "post-teen pop"]
    assert b.genres == ["rock", "hard rock"]
    assert a.title == "Song a" and a.artist == "Artist"
    assert a.popularity == 66.0
    assert a.danceability == 0.748 and a.tempo == 122.036 and a.loudness == -2.634


def test_genres_are_capped_at_sixteen(tmp_path: Path) -> None:
    rows = [row("a", playlist_genre=f"g{i}", playlist_subgenre=f"s{i}") for i in range(12)]
    tracks = read_spotify_csv(write_csv(tmp_path / "songs.csv", rows))
    assert tracks[0].genres == [f"g{i}" for i in range(12)] + [f"s{i}" for i in range(4)]


@pytest.mark.parametrize(
    ("value", "year"),
    [
        ("2019-06-14", 2019),
        ("2019-06", 2019),
        ("2019", 2019),
        ("1957-01-01", 1957),
        ("", None),
        ("NA", None),
        ("19", None),
        ("2019-13", None),
        ("2019/06/14", None),
        ("0000", None),
        ("June 2019", None),
    ],
)
def test_release_year_formats(tmp_path: Path, value: str, year: int | None) -> None:
    assert parse_release_year(value) == year
    tracks = read_spotify_csv(
        write_csv(tmp_path / "songs.csv", [row("a", track_album_release_date=value)])
    )
    assert tracks[0].release_year == year


@pytest.mark.parametrize("bad", ["", "NA", "abc", "nan", "inf"])
def test_row_with_a_missing_feature_gives_a_track_without_features(
    tmp_path: Path, bad: str
) -> None:
    path = write_csv(tmp_path / "songs.csv", [row("a", energy=bad), row("b")])
    a, b = read_spotify_csv(path)
    assert a.track_id == "a" and not a.has_features
    assert all(getattr(a, name) is None for name in AUDIO_FEATURES)
    assert a.feature_vector() is None
    assert a.genres == ["pop", "dance pop"]
    assert b.has_features


def test_feature_outside_the_model_range_drops_features_not_the_track(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "songs.csv", [row("a", tempo="900"), row("b")])
    a, b = read_spotify_csv(path)
    assert a.track_id == "a" and not a.has_features
    assert b.has_features


def test_features_come_from_a_later_complete_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "songs.csv", [row("a", valence="NA"), row("a", valence="0.3")])
    (a,) = read_spotify_csv(path)
    assert a.has_features and a.valence == 0.3


def test_rows_without_track_id_are_skipped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "songs.csv", [row(""), row("a"), row("  "), row("b")])
    assert [t.track_id for t in read_spotify_csv(path)] == ["a", "b"]


def test_r_missing_values_become_empty_or_none(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "songs.csv",
        [row("a", track_name="NA", track_artist="NA", track_popularity="NA")],
    )
    (a,) = read_spotify_csv(path)
    assert a.title == "" and a.artist == "" and a.popularity is None


def test_limit_counts_distinct_tracks(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "songs.csv",
        [
            row("a"),
            row("a", playlist_genre="latin", playlist_subgenre="reggaeton"),
            row("b"),
            row("c"),
            row("a", playlist_genre="rap", playlist_subgenre="trap"),
        ],
    )
    assert [t.track_id for t in read_spotify_csv(path, limit=2)] == ["a", "b"]
    assert read_spotify_csv(path, limit=0) == []
    assert len(read_spotify_csv(path, limit=10)) == 3
    # A kept track still collects the genres of its later rows.
    (a,) = read_spotify_csv(path, limit=1)
    assert a.genres == ["pop", "latin", "rap", "dance pop", "reggaeton", "trap"]
    with pytest.raises(ValueError):
        read_spotify_csv(path, limit=-1)


def test_a_file_without_track_id_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="track_id"):
        read_spotify_csv(path)


def test_iter_tracks_json_keys_are_utf8(tmp_path: Path) -> None:
    (track,) = read_spotify_csv(write_csv(tmp_path / "songs.csv", [row("ñandú")]))
    ((key, value),) = list(iter_tracks_json([track]))
    assert key == "ñandú".encode()
    assert decode_track(value) == track


# --- the full shared table ------------------------------------------------------------------


@pytest.mark.skipif(not FULL_CSV.is_file(), reason=f"{FULL_CSV} is not present")
def test_full_table_has_28356_tracks() -> None:
    # How fast it loads is a benchmark's business, not a test's (a timed test flakes on a busy machine).
    tracks = read_spotify_csv(FULL_CSV)
    assert len(tracks) == 28_356
    assert all(track.has_features for track in tracks)
    assert all(track.genres and track.genres[0] in GENRES for track in tracks)
