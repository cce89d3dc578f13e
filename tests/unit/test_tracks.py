"""The catalog track contract: schemas/tracks.py."""

from __future__ import annotations

import math

import orjson
import pytest
from pydantic import ValidationError

from schemas.tracks import (
    AUDIO_FEATURES,
    FEATURE_RANGES,
    InvalidTrack,
    Track,
    decode_track,
    normalise_feature,
)

FEATURES: dict[str, float] = {
    "danceability": 0.5,
    "energy": 0.9,
    "valence": 0.4,
    "acousticness": 0.1,
    "instrumentalness": 0.0,
    "liveness": 0.2,
    "speechiness": 0.05,
    "tempo": 125.0,
    "loudness": -6.0,
}


def make(**changes: object) -> Track:
    data: dict[str, object] = {"track_id": "t1", "title": "Song", "artist": "Band", **FEATURES}
    data.update(changes)
    return Track.model_validate({k: v for k, v in data.items() if v is not ...})


def error_text(exc: ValidationError) -> str:
    """The error messages alone (str(exc) would also echo the input)."""
    return "; ".join(error["msg"] for error in exc.errors(include_url=False, include_input=False))


# -- the feature set ---------------------------------------------------------------------------


def test_nine_features_in_documented_order() -> None:
    assert AUDIO_FEATURES == (
        "danceability", "energy", "valence", "acousticness", "instrumentalness",
        "liveness", "speechiness", "tempo", "loudness",
    )
    assert set(FEATURE_RANGES) == set(AUDIO_FEATURES)
    assert FEATURE_RANGES["tempo"] == (0.0, 250.0)
    assert FEATURE_RANGES["loudness"] == (-60.0, 0.0)


def test_track_with_all_features() -> None:
    track = make()
    assert track.has_features
    assert not track.features_predicted
    for name, value in FEATURES.items():
        assert getattr(track, name) == value


def test_track_without_any_feature() -> None:
    track = Track(track_id="t1")
    assert not track.has_features
    assert track.feature_vector() is None
    assert track.genres == []
    assert (track.title, track.artist, track.popularity, track.release_year) == ("", "", None, None)


@pytest.mark.parametrize("given", [["danceability"], ["tempo", "loudness"], list(AUDIO_FEATURES[:8])])
def test_partial_features_refused_naming_the_missing(given: list[str]) -> None:
    data = {"track_id": "t1", **{name: FEATURES[name] for name in given}}
    with pytest.raises(ValidationError) as info:
        Track.model_validate(data)
    message = error_text(info.value)
    missing = [name for name in AUDIO_FEATURES if name not in given]
    assert "missing: " + ", ".join(missing) in message
    named = message.split("missing: ")[1].split(", ")
    assert named == missing


def test_one_feature_set_to_null_counts_as_missing() -> None:
    with pytest.raises(ValidationError) as info:
        make(valence=None)
    assert "missing: valence" in error_text(info.value)


# -- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", AUDIO_FEATURES)
def test_range_ends_accepted(name: str) -> None:
    low, high = FEATURE_RANGES[name]
    assert getattr(make(**{name: low}), name) == low
    assert getattr(make(**{name: high}), name) == high


@pytest.mark.parametrize("name", AUDIO_FEATURES)
def test_small_margin_accepted_either_side(name: str) -> None:
    low, high = FEATURE_RANGES[name]
    margin = 0.05 * (high - low)
    assert getattr(make(**{name: low - 0.99 * margin}), name) == pytest.approx(low - 0.99 * margin)
    assert getattr(make(**{name: high + 0.99 * margin}), name) == pytest.approx(high + 0.99 * margin)


def test_loudness_slightly_above_zero_db_accepted() -> None:
    assert make(loudness=1.5).loudness == 1.5


@pytest.mark.parametrize("name", AUDIO_FEATURES)
def test_beyond_margin_refused(name: str) -> None:
    low, high = FEATURE_RANGES[name]
    margin = 0.05 * (high - low)
    for value in (low - 1.01 * margin, high + 1.01 * margin):
        with pytest.raises(ValidationError) as info:
            make(**{name: value})
        errors = info.value.errors()
        assert [e["loc"] for e in errors] == [(name,)]
        assert f"between {low} and {high}" in errors[0]["msg"]


@pytest.mark.parametrize("name", AUDIO_FEATURES)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_feature_refused(name: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        make(**{name: value})
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [(name,)]
    assert "finite" in errors[0]["msg"]


@pytest.mark.parametrize("value", [-0.1, 100.1, math.nan])
def test_popularity_out_of_range_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        make(popularity=value)


def test_popularity_range_ends_accepted() -> None:
    assert make(popularity=0).popularity == 0
    assert make(popularity=100).popularity == 100


@pytest.mark.parametrize("year", [1799, 2201])
def test_release_year_out_of_range_refused(year: int) -> None:
    with pytest.raises(ValidationError):
        make(release_year=year)


def test_track_id_rules_shared_with_events() -> None:
    for bad in ["", "a\x00b", "x" * 129]:
        with pytest.raises(ValidationError):
            make(track_id=bad)


# -- genres ------------------------------------------------------------------------------------


def test_genres_lowercased_and_deduplicated_in_order() -> None:
    track = make(genres=["Rock", "pop", "ROCK", " Indie Rock ", "Pop", "indie rock", "jazz"])
    assert track.genres == ["rock", "pop", "indie rock", "jazz"]


def test_genres_unicode_lowercased() -> None:
    assert make(genres=["MÚSICA", "música"]).genres == ["música"]


def test_genre_label_too_long_refused() -> None:
    with pytest.raises(ValidationError):
        make(genres=["g" * 65])


def test_more_than_sixteen_genres_refused() -> None:
    with pytest.raises(ValidationError):
        make(genres=[f"g{i}" for i in range(17)])
    assert len(make(genres=[f"g{i}" for i in range(16)]).genres) == 16


# -- feature_vector ----------------------------------------------------------------------------


def test_feature_vector_order_and_scaling() -> None:
    vector = make().feature_vector()
    assert vector is not None
    assert vector == pytest.approx([0.5, 0.9, 0.4, 0.1, 0.0, 0.2, 0.05, 125 / 250, (-6 + 60) / 60])


@pytest.mark.parametrize(
    ("tempo", "expected"),
    [(0.0, 0.0), (62.5, 0.25), (250.0, 1.0), (-10.0, 0.0), (260.0, 1.0)],
)
def test_tempo_scaled_over_0_to_250_and_clipped(tempo: float, expected: float) -> None:
    vector = make(tempo=tempo).feature_vector()
    assert vector is not None
    assert vector[AUDIO_FEATURES.index("tempo")] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("loudness", "expected"),
    [(-60.0, 0.0), (-45.0, 0.25), (-30.0, 0.5), (0.0, 1.0), (2.5, 1.0), (-62.0, 0.0)],
)
def test_loudness_scaled_over_minus60_to_0_and_clipped(loudness: float, expected: float) -> None:
    vector = make(loudness=loudness).feature_vector()
    assert vector is not None
    assert vector[AUDIO_FEATURES.index("loudness")] == pytest.approx(expected)


def test_unit_features_clipped_into_zero_one() -> None:
    vector = make(danceability=1.04, energy=-0.04).feature_vector()
    assert vector is not None
    assert vector[0] == 1.0
    assert vector[1] == 0.0


def test_normalise_feature_directly() -> None:
    assert normalise_feature("tempo", 125.0) == pytest.approx(0.5)
    assert normalise_feature("loudness", -15.0) == pytest.approx(0.75)
    assert normalise_feature("energy", 0.3) == pytest.approx(0.3)


# -- decode_track ------------------------------------------------------------------------------


def test_decode_track_round_trip() -> None:
    track = make(genres=["rock"], popularity=42, release_year=1999, features_predicted=True)
    decoded = decode_track(track.to_json())
    assert decoded == track
    assert decoded.features_predicted is True


def test_decode_track_drops_unknown_fields() -> None:
    data = orjson.dumps({"track_id": "t1", "album": "X", "key": 5})
    assert "album" not in decode_track(data).model_dump()


@pytest.mark.parametrize("data", [None, b""])
def test_decode_track_empty(data: bytes | None) -> None:
    with pytest.raises(InvalidTrack) as info:
        decode_track(data)
    assert info.value.reason == "empty message"


@pytest.mark.parametrize("data", [b"not json", b"{", b"\xff\xfe"])
def test_decode_track_not_json(data: bytes) -> None:
    with pytest.raises(InvalidTrack) as info:
        decode_track(data)
    assert "JSON" in info.value.reason


@pytest.mark.parametrize("data", [b"[1, 2]", b"42", b'"t1"'])
def test_decode_track_not_an_object(data: bytes) -> None:
    with pytest.raises(InvalidTrack) as info:
        decode_track(data)
    assert "object" in info.value.reason


def test_decode_track_missing_id() -> None:
    with pytest.raises(InvalidTrack) as info:
        decode_track(b'{"title": "x"}')
    assert info.value.reason.startswith("track_id:")


def test_decode_track_partial_features_reason() -> None:
    with pytest.raises(InvalidTrack) as info:
        decode_track(b'{"track_id": "t", "danceability": 0.5, "energy": 0.5}')
    assert "missing: valence, acousticness" in info.value.reason
    assert "\n" not in info.value.reason


def test_decode_track_reports_every_bad_field() -> None:
    data = orjson.dumps({"track_id": "t", **FEATURES, "tempo": 999.0, "popularity": 500})
    with pytest.raises(InvalidTrack) as info:
        decode_track(data)
    assert "tempo:" in info.value.reason
    assert "popularity:" in info.value.reason
    assert "; " in info.value.reason
    assert not any(part.startswith("Value error") for part in info.value.reason.split(": "))
