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
    out += _U8.pack(min(len(scores), 255))
    for name, score in list(scores.items())[:255]:
        data = name.encode("utf-8")[:65535]
        out += _U16.pack(len(data))
        out += data
        out += _F32.pack(score)


def encode_profile(profile: UserProfile, codec_version: int = CODEC_VERSION) -> bytes:
    if codec_version not in (2, CODEC_VERSION):
        raise ValueError(f"cannot write profile codec version {codec_version}")
    v3 = codec_version >= 3
    out = bytearray(_HEADER.pack(MAGIC, codec_version, profile.version, profile.as_of_ms,
                                 profile.affinity_at_ms))
    taste = profile.taste
    out += _U8.pack(len(taste))
    out += struct.pack(f"<{len(taste)}f", *taste)
    out += _TWO_F32.pack(profile.taste_weight, profile.skip_rate)
    counts = [min(profile.counts.get(t, 0), _U32_MAX) for t in EVENT_TYPE_CODES]
    if v3:
        out += _U8.pack(len(counts))
        out += struct.pack(f"<{len(counts)}I", *counts)
    else:
        out += _COUNTS_V2.pack(*counts[:5])
    _put_scores(out, profile.genres)
    _put_scores(out, profile.artists)
    recent = profile.recent[-255:]
    out += _U8.pack(len(recent))
    code_of = _CODE_OF_TYPE
    for item in recent:
        data = item.track_id.encode("utf-8")[:65535]
        out += _U16.pack(len(data))
        out += data
        if v3:
            out += _TYPE_AND_SECOND.pack(code_of[item.type], min(_U32_MAX, max(0, item.ts_ms // 1000)))
        else:
            out += _U8.pack(code_of[item.type])
    if not v3:
        ids = profile.recent_event_ids[-255:]
        out += _U8.pack(len(ids))
        for event_hash in ids:
            out += _U64.pack(event_hash)
    tod = profile.tod_counts[:TOD_BUCKETS] if len(profile.tod_counts) >= TOD_BUCKETS else []
    out += _U8.pack(len(tod))
    if tod:
        out += _TOD.pack(*(min(c, _U32_MAX) for c in tod))
    out += _U16.pack(len(profile.model_weights))
    out += profile.model_weights
    out += _I64.pack(profile.prior_period)
    out += _U8.pack(len(profile.drift))
    out += profile.drift
    out += _U8.pack(0)
    return bytes(out)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: struct.Struct) -> tuple:
        values = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return values

    def raw(self, length: int) -> bytes:
        raw = bytes(self.data[self.pos : self.pos + length])
        if len(raw) != length:
            raise ProfileCodecError("profile value is truncated")
        self.pos += length
        return raw

    def text(self) -> str:
        (length,) = self.take(_U16)
        return self.raw(length).decode("utf-8")

    def scores(self) -> dict[str, float]:
        (count,) = self.take(_U8)
        scores = {}
        for _ in range(count):
            name = self.text()
            (scores[name],) = self.take(_F32)
        return scores


def decode_profile(data: bytes, user_id: str = "") -> UserProfile:
    """The profile stored under a user's key; `ProfileCodecError` if it cannot be read."""
    reader = _Reader(data)
    try:
        magic, codec_version, version, as_of_ms, affinity_at_ms = reader.take(_HEADER)
        if magic != MAGIC:
            raise ProfileCodecError("not an Encore profile (bad magic)")
        if codec_version not in READABLE_VERSIONS:
            raise ProfileCodecError(f"profile codec version {codec_version} is not supported")
        (n_taste,) = reader.take(_U8)
        taste = [reader.take(_F32)[0] for _ in range(n_taste)]
        taste_weight, skip_rate = reader.take(_TWO_F32)
        if codec_version >= 3:
            (n_counts,) = reader.take(_U8)
            stored = [reader.take(_U32)[0] for _ in range(n_counts)]
        else:
            stored = list(reader.take(_COUNTS_V2))
        # Counts of codes this reader does not know are dropped; missing ones are 0.
        counts = dict.fromkeys(EventType, 0)
        counts.update((TYPE_OF_CODE[code], n) for code, n in enumerate(stored) if code in TYPE_OF_CODE)
        genres = reader.scores()
        artists = reader.scores()
        (n_recent,) = reader.take(_U8)
        recent = []
        for _ in range(n_recent):
            track_id = reader.text()
            (code,) = reader.take(_U8)
            ts_ms = 1000 * reader.take(_U32)[0] if codec_version >= 3 else 0
            recent.append(RecentTrack(track_id, TYPE_OF_CODE[code], ts_ms))
        recent_event_ids: list[int] = []
        if codec_version < 3:
            (n_ids,) = reader.take(_U8)
            recent_event_ids = [reader.take(_U64)[0] for _ in range(n_ids)]
        tod_counts: list[int] = []
        model_weights, drift, prior_period = b"", b"", NO_PRIOR
        if codec_version >= 2:
            (n_tod,) = reader.take(_U8)
            if n_tod not in (0, TOD_BUCKETS):
                raise ProfileCodecError(f"time-of-day pattern has {n_tod} buckets")
            if n_tod:
                tod_counts = list(reader.take(_TOD))
            model_weights = reader.raw(reader.take(_U16)[0])
            (prior_period,) = reader.take(_I64)
            drift = reader.raw(reader.take(_U8)[0])
            reader.take(_U8)
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
