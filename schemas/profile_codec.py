"""The user profile as stored in Redis: one compact binary value per user, read with one GET.

Layout (little-endian), codec version 3. Version 2 has exactly five counts, no event times in the
recent tracks, and the dedupe ids; version 1 also lacks the last five rows. Both are still read, and
v2 is written on request (`encode_profile(profile, codec_version=2)`) for a rolling upgrade whose
readers are older.

| field | encoding |
|---|---|
| magic, codec version | `b"EP"`, u8 |
| profile_version, as_of_ms, affinity_at_ms | u64, i64, i64 |
| taste vector | u8 count (0 or 9), then f32 each, `AUDIO_FEATURES` order, scaled to [0, 1] |
| taste_weight, skip_rate | f32, f32 |
| counts | u8 count n, then u32 × n by wire code (`schemas.event_types`: play, skip, like, ...) |
| genre affinities | u8 count, then (u16-length UTF-8 name, f32 score) each |
| artist affinities | same as genres |
| recent tracks | u8 count, then (u16-length UTF-8 track_id, u8 event-type code, u32 event time in epoch s) |
| (v2 only) recent event ids | u8 count, then u64 each; v3 does not store them: dedupe is the flow's state |
| time-of-day pattern | u8 count (0 or 6), then u32 each: positive events per 4-hour UTC bucket |
| engagement model | u16 byte count (0 or 312), then the raw float32 weights (`online_models.user_model`) |
| model prior period | i64: the global-model period the model was warm-started from, −1 = none |
| drift state | u8 byte count (0 or 24), then `online_models.drift.DriftDetector.to_bytes()` |
| reserved | u8 0 (room for a later block without a codec bump) |

The model and drift blocks are opaque bytes here: `schemas` knows their size, not their meaning,
so serving reads weights with `numpy.frombuffer(profile.model_weights, "<f4")` and never unpickles
anything. A reader refuses a value whose magic or codec version it does not know.

>>> profile = UserProfile("u1", version=3, as_of_ms=1_700_000_000_000, taste=[0.5] * 9)
>>> profile.genres["rock"] = 1.5
>>> decode_profile(encode_profile(profile), "u1") == profile
True
>>> len(encode_profile(profile)) < 150
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from schemas.event_types import SEMANTICS, TYPE_OF_CODE
from schemas.events import EventType

MAGIC = b"EP"
CODEC_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
TOD_BUCKETS = 6
"""Time-of-day pattern buckets: UTC hour // 4."""
NO_PRIOR = -1

EVENT_TYPE_CODES: tuple[EventType, ...] = tuple(TYPE_OF_CODE[code] for code in sorted(TYPE_OF_CODE))
"""Wire code → event type (position = code), for counts and recent tracks: the explicit code map of
`schemas.event_types`, never the enum's order."""
_CODE_OF_TYPE: dict[EventType, int] = {t: SEMANTICS[t].code for t in EventType}

_HEADER = struct.Struct("<2sBQqq")
_F32 = struct.Struct("<f")
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")
_TWO_F32 = struct.Struct("<ff")
_COUNTS_V2 = struct.Struct("<5I")
_U32 = struct.Struct("<I")
_TOD = struct.Struct(f"<{TOD_BUCKETS}I")
_I64 = struct.Struct("<q")
_U32_MAX = 2**32 - 1
_TYPE_AND_SECOND = struct.Struct("<BI")


def peek_version(raw: bytes | None) -> int:
    """profile_version of a stored value from its header alone, −1 for no value or a foreign one
    (a cheap completion check: benchmarks poll thousands of profiles).

    >>> peek_version(encode_profile(UserProfile("u", version=7))), peek_version(b"xx"), peek_version(None)
    (7, -1, -1)
    """
    if raw is None or len(raw) < _HEADER.size or raw[:2] != MAGIC or raw[2] not in READABLE_VERSIONS:
        return -1
    return _HEADER.unpack_from(raw)[2]


class ProfileCodecError(ValueError):
    """A stored profile that this version cannot read."""


@dataclass
class RecentTrack:
    track_id: str
    type: EventType
    ts_ms: int = 0
    """Event time of the listener's latest event on the track; stored to the second."""


@dataclass
class UserProfile:
    """Everything Encore knows about one listener; the state the flow keeps per user."""

    user_id: str
    version: int = 0
    """profile_version: grows by exactly one per applied event (so it counts them)."""
    as_of_ms: int = 0
    """Event time of the last applied event."""
    affinity_at_ms: int = 0
    """Event time the genre and artist scores were last decayed to."""
    taste: list[float] = field(default_factory=list)
    """Nine audio features in [0, 1]; empty until the first signal."""
    taste_weight: float = 0.0
    skip_rate: float = 0.0
    counts: dict[EventType, int] = field(default_factory=lambda: dict.fromkeys(EventType, 0))
    genres: dict[str, float] = field(default_factory=dict)
    artists: dict[str, float] = field(default_factory=dict)
    recent: list[RecentTrack] = field(default_factory=list)
    recent_event_ids: list[int] = field(default_factory=list)
    """Dedupe ids: the flow's state (pickled with the profile), not stored in Redis since codec v3."""
    tod_counts: list[int] = field(default_factory=list)
    """Positive events (like, complete) per 4-hour UTC bucket; empty until the first one."""
    model_weights: bytes = b""
    """The engagement model's float32 weights (`online_models.user_model`); empty = no model yet."""
    prior_period: int = NO_PRIOR
    """The global-model period `model_weights` was warm-started from; −1 = none (zeros)."""
    drift: bytes = b""
    """`DriftDetector.to_bytes()`; empty = no detector yet."""


def _put_scores(out: bytearray, scores: dict[str, float]) -> None:
    items = list(scores.items())[:255] if len(scores) > 255 else scores.items()
    out.append(len(items))
    prefix, pack_f32 = _name_prefix, _F32.pack
    for name, score in items:
        out += prefix(name)
        out += pack_f32(score)


_NAMES: dict[str, bytes] = {}
"""Encoded names (u16 length + UTF-8) by name: the same genres, artists and track ids are written
in every batch. Cleared when it reaches `_NAMES_MAX` entries, so it stays bounded."""
_NAMES_MAX = 200_000


def _name_prefix(name: str) -> bytes:
    encoded = _NAMES.get(name)
    if encoded is None:
        data = name.encode("utf-8")[:65535]
        encoded = _U16.pack(len(data)) + data
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        _NAMES[name] = encoded
    return encoded


def encode_profile(profile: UserProfile, codec_version: int = CODEC_VERSION) -> bytes:
    if codec_version not in (2, CODEC_VERSION):
        raise ValueError(f"cannot write profile codec version {codec_version}")
    v3 = codec_version >= 3
    out = bytearray(_HEADER.pack(MAGIC, codec_version, profile.version, profile.as_of_ms,
                                 profile.affinity_at_ms))
    taste = profile.taste
    out.append(len(taste))
    if taste:
        out += struct.pack(f"<{len(taste)}f", *taste)
    out += _TWO_F32.pack(profile.taste_weight, profile.skip_rate)
    get = profile.counts.get
    counts = [min(get(t, 0), _U32_MAX) for t in EVENT_TYPE_CODES]
    if v3:
        out.append(len(counts))
        out += struct.pack(f"<{len(counts)}I", *counts)
    else:
        out += _COUNTS_V2.pack(*counts[:5])
    _put_scores(out, profile.genres)
    _put_scores(out, profile.artists)
    recent = profile.recent[-255:]
    out.append(len(recent))
    code_of, prefix = _CODE_OF_TYPE, _name_prefix
    if v3:
        pack_type_and_second = _TYPE_AND_SECOND.pack
        for item in recent:
            out += prefix(item.track_id)
            out += pack_type_and_second(code_of[item.type], min(_U32_MAX, max(0, item.ts_ms // 1000)))
    else:
        for item in recent:
            out += prefix(item.track_id)
            out.append(code_of[item.type])
        ids = profile.recent_event_ids[-255:]
        out.append(len(ids))
        for event_hash in ids:
            out += _U64.pack(event_hash)
    tod = profile.tod_counts[:TOD_BUCKETS] if len(profile.tod_counts) >= TOD_BUCKETS else []
    out.append(len(tod))
    if tod:
        out += _TOD.pack(*(min(c, _U32_MAX) for c in tod))
    out += _U16.pack(len(profile.model_weights))
    out += profile.model_weights
    out += _I64.pack(profile.prior_period)
    out.append(len(profile.drift))
    out += profile.drift
    out.append(0)
    return bytes(out)


def _text_at(data: bytes, pos: int) -> tuple[str, int]:
    """The u16-length UTF-8 string at `pos`, and the position after it."""
    (length,) = _U16.unpack_from(data, pos)
    pos += 2
    end = pos + length
    if end > len(data):
        raise ProfileCodecError("profile value is truncated")
    return data[pos:end].decode("utf-8"), end


def _scores_at(data: bytes, pos: int) -> tuple[dict[str, float], int]:
    count = data[pos]
    pos += 1
    scores: dict[str, float] = {}
    n = len(data)
    unpack_u16, unpack_f32 = _U16.unpack_from, _F32.unpack_from
    for _ in range(count):
        (length,) = unpack_u16(data, pos)
        pos += 2
        end = pos + length
        if end > n:
            raise ProfileCodecError("profile value is truncated")
        (scores[data[pos:end].decode("utf-8")],) = unpack_f32(data, end)
        pos = end + 4
    return scores, pos


def _raw_at(data: bytes, pos: int, length: int) -> tuple[bytes, int]:
    end = pos + length
    if end > len(data):
        raise ProfileCodecError("profile value is truncated")
    return bytes(data[pos:end]), end


def decode_profile(data: bytes, user_id: str = "") -> UserProfile:
    """The profile stored under a user's key; `ProfileCodecError` if it cannot be read."""
    data = bytes(data)
    try:
        magic, codec_version, version, as_of_ms, affinity_at_ms = _HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise ProfileCodecError("not an Encore profile (bad magic)")
        if codec_version not in READABLE_VERSIONS:
            raise ProfileCodecError(f"profile codec version {codec_version} is not supported")
        pos = _HEADER.size
        n_taste = data[pos]
        taste = list(struct.unpack_from(f"<{n_taste}f", data, pos + 1))
        pos += 1 + 4 * n_taste
        taste_weight, skip_rate = _TWO_F32.unpack_from(data, pos)
        pos += 8
        if codec_version >= 3:
            n_counts = data[pos]
            stored = list(struct.unpack_from(f"<{n_counts}I", data, pos + 1))
            pos += 1 + 4 * n_counts
        else:
            stored = list(_COUNTS_V2.unpack_from(data, pos))
            pos += _COUNTS_V2.size
        # Counts of codes this reader does not know are dropped; missing ones are 0.
        counts = dict.fromkeys(EventType, 0)
        counts.update((TYPE_OF_CODE[code], n) for code, n in enumerate(stored) if code in TYPE_OF_CODE)
        genres, pos = _scores_at(data, pos)
        artists, pos = _scores_at(data, pos)
        n_recent = data[pos]
        pos += 1
        recent = []
        type_of = TYPE_OF_CODE
        if codec_version >= 3:
            unpack_type_and_second = _TYPE_AND_SECOND.unpack_from
            for _ in range(n_recent):
                track_id, pos = _text_at(data, pos)
                code, second = unpack_type_and_second(data, pos)
                pos += 5
                recent.append(RecentTrack(track_id, type_of[code], 1000 * second))
        else:
            for _ in range(n_recent):
                track_id, pos = _text_at(data, pos)
                recent.append(RecentTrack(track_id, type_of[data[pos]], 0))
                pos += 1
        recent_event_ids: list[int] = []
        if codec_version < 3:
            n_ids = data[pos]
            recent_event_ids = list(struct.unpack_from(f"<{n_ids}Q", data, pos + 1))
            pos += 1 + 8 * n_ids
        tod_counts: list[int] = []
        model_weights, drift, prior_period = b"", b"", NO_PRIOR
        if codec_version >= 2:
            n_tod = data[pos]
            pos += 1
            if n_tod not in (0, TOD_BUCKETS):
                raise ProfileCodecError(f"time-of-day pattern has {n_tod} buckets")
            if n_tod:
                tod_counts = list(_TOD.unpack_from(data, pos))
                pos += _TOD.size
            (n_model,) = _U16.unpack_from(data, pos)
            model_weights, pos = _raw_at(data, pos + 2, n_model)
            (prior_period,) = _I64.unpack_from(data, pos)
            pos += 8
            drift, pos = _raw_at(data, pos + 1, data[pos])
            if pos >= len(data):  # the reserved byte
                raise ProfileCodecError("profile value is truncated")
    except (struct.error, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ProfileCodecError(f"profile value is corrupt: {exc}") from None
    return UserProfile(
        user_id=user_id,
        version=version,
        as_of_ms=as_of_ms,
        affinity_at_ms=affinity_at_ms,
        taste=taste,
        taste_weight=taste_weight,
        skip_rate=skip_rate,
        counts=counts,
        genres=genres,
        artists=artists,
        recent=recent,
        recent_event_ids=recent_event_ids,
        tod_counts=tod_counts,
        model_weights=model_weights,
        prior_period=prior_period,
        drift=drift,
    )
