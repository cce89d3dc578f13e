"""The stored user profile: schemas/profile_codec.py."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import EventType
from schemas.profile_codec import (
    CODEC_VERSION,
    EVENT_TYPE_CODES,
    MAGIC,
    ProfileCodecError,
    RecentTrack,
    UserProfile,
    decode_profile,
    encode_profile,
)


def f32(value: float) -> float:
    """The value a float32 field gives back."""
    return float(np.float32(value))


def full_profile() -> UserProfile:
    return UserProfile(
        user_id="alice",
        version=12_345,
        as_of_ms=1_795_248_000_123,
        affinity_at_ms=1_795_247_000_000,
        taste=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        taste_weight=3.7,
        skip_rate=0.33,
        counts={EventType.PLAY: 10, EventType.SKIP: 4, EventType.LIKE: 3,
                EventType.DISLIKE: 1, EventType.COMPLETE: 7},
        genres={"rock": 1.5, "música popular": -0.7, "j-pop 🎌": 0.25, "r&b": 0.1},
        artists={"Björk": 2.2, "Sigur Rós": -1.1, "坂本龍一": 0.3},
        recent=[RecentTrack(f"track-{t.value}", t, 1_795_248_000_123 - i * 61_500)
                for i, t in enumerate(EventType)],
        recent_event_ids=[0, 1, 2**63, 2**64 - 1, 123_456_789],
        tod_counts=[0, 3, 0, 12, 2**32 - 1, 1],
        model_weights=np.linspace(-1, 1, 78, dtype="<f4").tobytes(),
        prior_period=1_994_720,
        drift=bytes(range(24)),
    )


def rounded(profile: UserProfile) -> UserProfile:
    """The profile with every float32 field rounded as the codec stores it."""
    return UserProfile(
        user_id=profile.user_id,
        version=profile.version,
        as_of_ms=profile.as_of_ms,
        affinity_at_ms=profile.affinity_at_ms,
        taste=[f32(v) for v in profile.taste],
        taste_weight=f32(profile.taste_weight),
        skip_rate=f32(profile.skip_rate),
        counts=dict(profile.counts),
        genres={k: f32(v) for k, v in profile.genres.items()},
        artists={k: f32(v) for k, v in profile.artists.items()},
        recent=[RecentTrack(r.track_id, r.type, r.ts_ms // 1000 * 1000) for r in profile.recent],
        recent_event_ids=[],  # since v3 the dedupe ids stay in the flow's state
        tod_counts=list(profile.tod_counts),
        model_weights=profile.model_weights,
        prior_period=profile.prior_period,
        drift=profile.drift,
    )


# -- round trip --------------------------------------------------------------------------------


def test_full_profile_round_trips() -> None:
    profile = full_profile()
    decoded = decode_profile(encode_profile(profile), "alice")
    assert decoded == rounded(profile)
    # Exactness of the integer fields, and float32 rounding really happened for non-representable values.
    assert decode_profile(encode_profile(profile, codec_version=2), "alice").recent_event_ids[3] == 2**64 - 1
    assert decoded.as_of_ms == 1_795_248_000_123
    assert decoded.taste[0] != 0.1
    assert decoded.taste[0] == pytest.approx(0.1, abs=1e-7)


def test_decode_takes_user_id_from_the_caller() -> None:
    data = encode_profile(full_profile())
    assert decode_profile(data, "bob").user_id == "bob"
    assert decode_profile(data).user_id == ""


def test_recent_tracks_keep_order_and_every_event_type() -> None:
    decoded = decode_profile(encode_profile(full_profile()))
    assert [r.type for r in decoded.recent] == list(EventType)
    assert [r.track_id for r in decoded.recent] == [f"track-{t.value}" for t in EventType]


def test_affinity_order_and_unicode_names_preserved() -> None:
    decoded = decode_profile(encode_profile(full_profile()))
    assert list(decoded.genres) == ["rock", "música popular", "j-pop 🎌", "r&b"]
    assert list(decoded.artists) == ["Björk", "Sigur Rós", "坂本龍一"]


def test_empty_profile_round_trips() -> None:
    profile = UserProfile("u")
    decoded = decode_profile(encode_profile(profile), "u")
    assert decoded == profile
    assert decoded.taste == []
    assert decoded.counts == dict.fromkeys(EventType, 0)


def test_counts_in_event_type_order_and_clipped_to_u32() -> None:
    assert EVENT_TYPE_CODES == (EventType.PLAY, EventType.SKIP, EventType.LIKE, EventType.DISLIKE,
                                EventType.COMPLETE)
    profile = UserProfile("u", counts={EventType.LIKE: 2**40, EventType.SKIP: 3})
    decoded = decode_profile(encode_profile(profile))
    assert decoded.counts[EventType.LIKE] == 2**32 - 1
    assert decoded.counts[EventType.SKIP] == 3
    assert decoded.counts[EventType.PLAY] == 0


def test_lists_longer_than_255_keep_the_newest() -> None:
    profile = UserProfile(
        "u",
        recent=[RecentTrack(f"t{i}", EventType.PLAY) for i in range(300)],
        recent_event_ids=list(range(300)),
    )
    decoded = decode_profile(encode_profile(profile))
    assert [r.track_id for r in decoded.recent] == [f"t{i}" for i in range(45, 300)]
    decoded = decode_profile(encode_profile(profile, codec_version=2))
    assert decoded.recent_event_ids == list(range(45, 300))


def test_header_layout_is_as_documented() -> None:
    profile = UserProfile("u", version=7, as_of_ms=-5, affinity_at_ms=9)
    data = encode_profile(profile)
    assert data[:2] == MAGIC == b"EP"
    assert data[2] == CODEC_VERSION == 3
    assert struct.unpack_from("<Qqq", data, 3) == (7, -5, 9)
    # taste count 0, then taste_weight and skip_rate
    assert data[27] == 0
    assert struct.unpack_from("<ff", data, 28) == (0.0, 0.0)


names = st.text(max_size=20)
scores = st.floats(width=32, allow_nan=False, allow_infinity=False)
profiles = st.builds(
    UserProfile,
    user_id=st.text(max_size=10),
    version=st.integers(0, 2**64 - 1),
    as_of_ms=st.integers(-(2**63), 2**63 - 1),
    affinity_at_ms=st.integers(-(2**63), 2**63 - 1),
    taste=st.one_of(st.just([]), st.lists(scores, min_size=9, max_size=9)),
    taste_weight=scores,
    skip_rate=scores,
    counts=st.fixed_dictionaries({t: st.integers(0, 2**32 - 1) for t in EventType}),
    genres=st.dictionaries(names, scores, max_size=8),
    artists=st.dictionaries(names, scores, max_size=8),
    recent=st.lists(st.builds(RecentTrack, st.text(max_size=30), st.sampled_from(list(EventType)),
                              st.integers(0, 2**32 - 1).map(lambda s: s * 1000)),
                    max_size=12),
    tod_counts=st.one_of(st.just([]), st.lists(st.integers(0, 2**32 - 1), min_size=6, max_size=6)),
    model_weights=st.one_of(st.just(b""), st.binary(min_size=312, max_size=312)),
    prior_period=st.integers(-(2**63), 2**63 - 1),
    drift=st.one_of(st.just(b""), st.binary(min_size=24, max_size=24)),
)


@settings(max_examples=150, deadline=None)
@given(profiles)
def test_round_trip_property(profile: UserProfile) -> None:
    # Every float is float32-representable here, so the round trip is exact.
    assert decode_profile(encode_profile(profile), profile.user_id) == profile


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30),
                min_size=9, max_size=9))
def test_any_double_taste_comes_back_float32_rounded(taste: list[float]) -> None:
    decoded = decode_profile(encode_profile(UserProfile("u", taste=taste)))
    assert decoded.taste == [f32(v) for v in taste]


# -- refusing what cannot be read --------------------------------------------------------------


def test_bad_magic_refused() -> None:
    data = b"XX" + encode_profile(full_profile())[2:]
    with pytest.raises(ProfileCodecError, match="magic"):
        decode_profile(data)


@pytest.mark.parametrize("version", [0, 4, 255])
def test_unknown_codec_version_refused(version: int) -> None:
    data = bytearray(encode_profile(full_profile()))
    data[2] = version
    with pytest.raises(ProfileCodecError, match=f"version {version}"):
        decode_profile(bytes(data))


def test_every_truncation_refused() -> None:
    data = encode_profile(full_profile())
    for length in range(len(data)):
        with pytest.raises(ProfileCodecError):
            decode_profile(data[:length])


@settings(max_examples=30, deadline=None)
@given(profiles)
def test_every_truncation_refused_property(profile: UserProfile) -> None:
    data = encode_profile(profile)
    for length in range(len(data)):
        with pytest.raises(ProfileCodecError):
            decode_profile(data[:length])


def test_unknown_event_type_code_refused() -> None:
    profile = UserProfile("u", recent=[RecentTrack("t", EventType.PLAY)])
    data = bytearray(encode_profile(profile))
    # The recent track's event-type code is followed by its u32 time and the tail: empty
    # time-of-day pattern, empty model (u16), prior period (i64), empty drift, reserved.
    tail = 4 + 1 + 2 + 8 + 1 + 1
    assert data[-tail - 1] == 0
    data[-tail - 1] = len(EVENT_TYPE_CODES)
    with pytest.raises(ProfileCodecError):
        decode_profile(bytes(data))


def test_invalid_utf8_name_refused() -> None:
    profile = UserProfile("u", genres={"ab": 1.0})
    data = bytearray(encode_profile(profile))
    where = data.index(b"ab")
    data[where] = 0xFF
    with pytest.raises(ProfileCodecError):
        decode_profile(bytes(data))


def test_garbage_refused() -> None:
    for data in (b"", b"EP", b"\x00" * 40, b"EP\x01" + b"\xff" * 60):
        with pytest.raises(ProfileCodecError):
            decode_profile(data)


def test_profile_codec_error_is_a_value_error() -> None:
    assert issubclass(ProfileCodecError, ValueError)


# -- size --------------------------------------------------------------------------------------


def test_realistic_full_profile_fits_in_2_kib() -> None:
    profile = UserProfile(
        "listener-0001",
        version=2**40,
        as_of_ms=1_795_248_000_000,
        affinity_at_ms=1_795_248_000_000,
        taste=[0.123456] * 9,
        taste_weight=1234.5,
        skip_rate=0.27,
        counts=dict.fromkeys(EventType, 100_000),
        genres={f"genre-name-{i:04d}": 1.0 + i for i in range(14)},  # 15 chars each
        artists={f"artist-name-{i:03d}": -1.0 + i for i in range(32)},  # 15 chars each
        recent=[RecentTrack(f"spotify-track-{i:08d}", EventType.PLAY, 1_795_248_000_000 - i * 60_000)
                for i in range(20)],  # 22 chars
        recent_event_ids=[2**64 - 1 - i for i in range(24)],
        tod_counts=[1_000] * 6,
        model_weights=bytes(312),
        prior_period=1_994_720,
        drift=bytes(24),
    )
    assert all(len(name) == 15 for name in [*profile.genres, *profile.artists])
    assert all(len(r.track_id) == 22 for r in profile.recent)
    data = encode_profile(profile)
    print(f"realistic full profile: {len(data)} bytes")
    # 14 genres, 32 artists and 20 recent tracks (TasteConfig's limits), all long names, plus the
    # 312-byte model: the saturated worst case; typical listeners stay far below.
    assert len(data) <= 2048
    assert decode_profile(data, profile.user_id) == rounded(profile)


def test_codec_version_1_still_reads_as_a_profile_without_a_model() -> None:
    profile = full_profile()
    v2 = bytearray(encode_profile(profile, codec_version=2))
    tail = 1 + 6 * 4 + 2 + 312 + 8 + 1 + 24 + 1
    v1 = bytes(v2[:-tail])
    v1 = v1[:2] + bytes([1]) + v1[3:]
    decoded = decode_profile(v1, "alice")
    assert decoded.model_weights == b"" and decoded.drift == b"" and decoded.tod_counts == []
    assert decoded.prior_period == -1
    assert decoded.recent_event_ids == profile.recent_event_ids
    assert decoded.genres == rounded(profile).genres


def test_model_and_drift_blocks_are_opaque_exact_bytes() -> None:
    profile = full_profile()
    decoded = decode_profile(encode_profile(profile), "alice")
    assert decoded.model_weights == profile.model_weights
    assert np.frombuffer(decoded.model_weights, "<f4")[0] == np.float32(-1)
    assert decoded.drift == bytes(range(24))
    assert decoded.tod_counts == [0, 3, 0, 12, 2**32 - 1, 1]


def test_the_encoded_name_memo_is_bounded_and_changes_nothing(monkeypatch) -> None:
    from schemas import profile_codec

    monkeypatch.setattr(profile_codec, "_NAMES_MAX", 8)
    profile_codec._NAMES.clear()
    profile = UserProfile("u", version=1, genres={f"g{i}": 0.5 for i in range(20)}, artists={"Björk": 1.0})
    first = encode_profile(profile)
    assert len(profile_codec._NAMES) <= 8
    assert encode_profile(profile) == first  # from the memo, or encoded again after a clear
    profile_codec._NAMES.clear()
    assert encode_profile(profile) == first
    assert decode_profile(first, "u") == profile
