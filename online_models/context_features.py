"""Features of one (event, track) pair: a fixed-length vector a linear model can weigh.

Every per-user and global engagement model in Encore is linear over this vector, so its weights are
a fixed-size float32 array (`DIM` weights, then the intercept) that the serving side can dot with
numpy, with no River object to unpickle. Layout version `LAYOUT_VERSION` = 1:

| index | name | value |
|---|---|---|
| 0–8 | `audio:<feature>` | `Track.feature_vector()` − 0.5, in [−0.5, 0.5]; 0 when unknown |
| 9 | `audio:missing` | 1 when the track or its audio features are unknown |
| 10 | `audio:predicted` | 1 when the features were predicted from text (`features_predicted`) |
| 11–26 | `genre:<b>` | 16 hashed genre buckets; each of the track's n genres adds 1/√n to its bucket |
| 27–32 | `tod:<b>` | UTC hour of `ts` // 4, one-hot (00–04, …, 20–24); user time zones are unknown |
| 33–36 | `source:<b>` | context.source hashed into 4 buckets, one-hot; all 0 when absent |
| 37–40 | `device:<b>` | context.device, 4 buckets |
| 41–44 | `mood:<b>` | context.mood, 4 buckets |
| 45–48 | `activity:<b>` | context.activity, 4 buckets |
| 49–76 | `energy×<slot>`, `valence×<slot>` | centred energy / valence × each tod, mood, activity slot |

Hashed context values can share a bucket (4 per field: "workout" and "commute" do). Context alone
is the same for every candidate of one request, so on its own it cannot change a ranking; the
energy and valence interactions (49–76) are what let "workout" or "late night" favour different
tracks. Hashing uses BLAKE2b of `"<field>=<value>"` (lower-cased, stripped), never
Python's `hash()`, which differs between processes. Change the layout only with a new
`LAYOUT_VERSION`: stored weights are meaningless under another layout.

Three forms of the same vector:
- `encode_sparse(event, track)`: `[(index, value), ...]`, non-zeros only: what the learners use;
- `encode_dict(event, track)`: `{name: value}`, non-zeros only: River's `learn_one` form;
- `encode(event, track)`: a dense float32 numpy array: the serving form, with `score_tracks` to
  score a whole candidate matrix in one pass (`track_matrix` once per catalog, `context_vector`
  once per request).

>>> from schemas.events import Event
>>> from schemas.tracks import Track
>>> track = Track(track_id="t", genres=["rock"], danceability=0.5, energy=0.9, valence=0.4,
...               acousticness=0.1, instrumentalness=0.0, liveness=0.2, speechiness=0.05,
...               tempo=125.0, loudness=-6.0)
>>> event = Event(event_id="e", user_id="u", track_id="t", type="like", ts=1_795_248_000_000,
...               context={"activity": "workout"})
>>> x = encode_dict(event, track)
>>> round(x["audio:energy"], 2), x["tod:08-12"], sorted(k for k in x if k.startswith("activity"))
(0.4, 1.0, ['activity:0'])
>>> len(encode(event, track)) == DIM == 77
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from schemas._memo import IdentityMemo
from schemas.events import Event, EventContext
from schemas.tracks import AUDIO_FEATURES, Track

LAYOUT_VERSION = 1

GENRE_BUCKETS = 16
TOD_BUCKETS = 6
CONTEXT_BUCKETS: dict[str, int] = {"source": 4, "device": 4, "mood": 4, "activity": 4}
INTERACTING_AUDIO: tuple[str, ...] = ("energy", "valence")
"""Audio features crossed with the time-of-day, mood and activity slots."""
INTERACTING_CONTEXT: tuple[str, ...] = ("tod", "mood", "activity")

_HOUR_MS = 3_600_000


def _names() -> tuple[str, ...]:
    names = [f"audio:{name}" for name in AUDIO_FEATURES]
    names += ["audio:missing", "audio:predicted"]
    names += [f"genre:{b}" for b in range(GENRE_BUCKETS)]
    hours = 24 // TOD_BUCKETS
    names += [f"tod:{b * hours:02d}-{(b + 1) * hours:02d}" for b in range(TOD_BUCKETS)]
    for field, buckets in CONTEXT_BUCKETS.items():
        names += [f"{field}:{b}" for b in range(buckets)]
    context_slots = [n for n in names if n.split(":")[0] in INTERACTING_CONTEXT]
    names += [f"{audio}×{slot}" for audio in INTERACTING_AUDIO for slot in context_slots]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _names()
"""The name of each index; `FEATURE_NAMES[i]` is the River dict key of index i."""
DIM = len(FEATURE_NAMES)
"""Number of features (77); a linear model over them has `DIM + 1` weights (intercept last)."""
INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

AUDIO_OFFSET = 0
MISSING_INDEX = INDEX["audio:missing"]
PREDICTED_INDEX = INDEX["audio:predicted"]
GENRE_OFFSET = INDEX["genre:0"]
TOD_OFFSET = INDEX["tod:00-04"]
CONTEXT_OFFSET: dict[str, int] = {field: INDEX[f"{field}:0"] for field in CONTEXT_BUCKETS}
TRACK_DIM = TOD_OFFSET
"""Indices [0, TRACK_DIM) depend on the track only; the rest on the event's time and context."""
INTERACTION_OFFSET = INDEX[f"{INTERACTING_AUDIO[0]}×tod:00-04"]
CONTEXT_SLOTS: tuple[int, ...] = tuple(
    i for i, n in enumerate(FEATURE_NAMES[:INTERACTION_OFFSET]) if n.split(":")[0] in INTERACTING_CONTEXT
)
"""The indices (tod, mood, activity) that the interaction block crosses with energy and valence."""
_INTERACTING_AUDIO_INDEX: tuple[int, ...] = tuple(INDEX[f"audio:{a}"] for a in INTERACTING_AUDIO)
_SLOT_POSITION: dict[int, int] = {index: p for p, index in enumerate(CONTEXT_SLOTS)}
_SLOTS_IN_CONTEXT = np.asarray(CONTEXT_SLOTS) - TRACK_DIM


def stable_bucket(field: str, value: str, buckets: int) -> int:
    """The bucket of `field=value` (lower-cased, stripped) by BLAKE2b: the same in every process."""
    return _bucket(field, value.strip().lower(), buckets)


@lru_cache(maxsize=65_536)
def _bucket(field: str, value: str, buckets: int) -> int:
    digest = hashlib.blake2b(f"{field}={value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


def tod_bucket(ts_ms: int) -> int:
    """Time-of-day bucket of an event time: UTC hour // 4, in [0, 6)."""
    return ((ts_ms // _HOUR_MS) % 24) // (24 // TOD_BUCKETS)


def track_sparse(track: Track | None) -> list[tuple[int, float]]:
    """The track part (indices < TRACK_DIM) as sorted `(index, value)` non-zeros."""
    if track is None:
        return [(MISSING_INDEX, 1.0)]
    return list(_track_part(track)[0])


def _encode_track(track: Track) -> tuple[tuple[tuple[int, float], ...], tuple[float, ...]]:
    """The track part, and the centred audio values the interaction block crosses (0 when unknown)."""
    out: list[tuple[int, float]] = []
    vector = track.feature_vector()
    if vector is None:
        out.append((MISSING_INDEX, 1.0))
    else:
        out.extend((i, v - 0.5) for i, v in enumerate(vector) if v != 0.5)
        if track.features_predicted:
            out.append((PREDICTED_INDEX, 1.0))
    if track.genres:
        share = 1.0 / math.sqrt(len(track.genres))
        genre_values: dict[int, float] = {}
        for genre in track.genres:
            b = GENRE_OFFSET + _bucket("genre", genre.strip().lower(), GENRE_BUCKETS)
            genre_values[b] = genre_values.get(b, 0.0) + share
        out.extend(sorted(genre_values.items()))
    audio = {i: v for i, v in out if i < len(AUDIO_FEATURES)}
    return tuple(out), tuple(audio.get(i, 0.0) for i in _INTERACTING_AUDIO_INDEX)


_track_part = IdentityMemo(_encode_track)
"""Once per track object: every event on a track encodes it again (user and global models)."""
_NO_TRACK: tuple[tuple[tuple[int, float], ...], tuple[float, ...]] = (
    ((MISSING_INDEX, 1.0),), (0.0,) * len(_INTERACTING_AUDIO_INDEX))


def context_sparse(ts_ms: int, context: EventContext | None) -> list[tuple[int, float]]:
    """The time-of-day and context one-hots as sorted `(index, 1.0)` pairs."""
    out = [(TOD_OFFSET + tod_bucket(ts_ms), 1.0)]
    if context is not None:
        known = _CONTEXT_PAIRS
        for field in _CONTEXT_FIELDS:
            value = getattr(context, field)
            if value:
                pair = known.get((field, value))
                if pair is None:
                    pair = _context_pair(field, value)
                out.append(pair)
    return out


_CONTEXT_FIELDS: tuple[str, ...] = tuple(CONTEXT_BUCKETS)
_CONTEXT_PAIRS: dict[tuple[str, str], tuple[int, float]] = {}
"""`(field, raw value)` → its one-hot pair: the strip, lower-case and bucket lookup once per value."""


def _context_pair(field: str, value: str) -> tuple[int, float]:
    if len(_CONTEXT_PAIRS) >= 65_536:  # raw spellings are the clients': keep the memo bounded
        _CONTEXT_PAIRS.clear()
    pair = _CONTEXT_PAIRS[(field, value)] = (
        CONTEXT_OFFSET[field] + stable_bucket(field, value, CONTEXT_BUCKETS[field]), 1.0)
    return pair


_SLOT_INDEX: dict[int, int] = {index: INTERACTION_OFFSET + p for index, p in _SLOT_POSITION.items()}
"""A crossed context index → its column in the interaction block's first (energy) row."""


def _interactions(
    audio: tuple[float, ...], context_part: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    slot_index = _SLOT_INDEX
    columns = [slot_index[i] for i, _ in context_part if i in slot_index]
    if not columns:
        return []
    out = []
    n_slots = len(CONTEXT_SLOTS)
    for k, a in enumerate(audio):
        if a == 0.0:
            continue
        base = k * n_slots
        for column in columns:
            out.append((base + column, a))
    return out


def encode_sparse(event: Event, track: Track | None) -> list[tuple[int, float]]:
    """The features of `event` on `track` as `(index, value)` non-zeros, indices increasing."""
    track_part, audio = _track_part(track) if track is not None else _NO_TRACK
    context_part = context_sparse(event.ts, event.context)
    return [*track_part, *context_part, *_interactions(audio, context_part)]


def encode_dict(event: Event, track: Track | None) -> dict[str, float]:
    """The River form: `{FEATURE_NAMES[i]: value}` for the non-zero features."""
    return {FEATURE_NAMES[i]: v for i, v in encode_sparse(event, track)}


def to_dense(sparse: Sequence[tuple[int, float]]) -> np.ndarray:
    """A dense float32 vector of length `DIM` from `(index, value)` pairs."""
    x = np.zeros(DIM, dtype=np.float32)
    for i, v in sparse:
        x[i] = v
    return x


def encode(event: Event, track: Track | None) -> np.ndarray:
    """The numpy form: a float32 vector of length `DIM`."""
    return to_dense(encode_sparse(event, track))


def track_matrix(tracks: Sequence[Track | None]) -> np.ndarray:
    """`(n, TRACK_DIM)` float32: the track part of every candidate, built once per catalog."""
    matrix = np.zeros((len(tracks), TRACK_DIM), dtype=np.float32)
    for row, track in enumerate(tracks):
        for i, v in track_sparse(track):
            matrix[row, i] = v
    return matrix


def context_vector(ts_ms: int, context: EventContext | None) -> np.ndarray:
    """`(DIM − TRACK_DIM,)` float32: the time-of-day and context one-hots of one request."""
    x = np.zeros(DIM - TRACK_DIM, dtype=np.float32)
    for i, v in context_sparse(ts_ms, context):
        x[i - TRACK_DIM] = v
    return x


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def score_tracks(weights: np.ndarray, tracks: np.ndarray, context: np.ndarray) -> np.ndarray:
    """P(positive engagement) of every row of `track_matrix` in one request's `context_vector`.

    `weights` is a model's `DIM + 1` float32 array (intercept last). The context is folded into
    the weights first (the interaction block becomes extra weight on energy and valence), so the
    whole catalog costs one matrix-vector product.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.shape != (DIM + 1,):
        raise ValueError(f"expected {DIM + 1} weights, got shape {w.shape}")
    c = np.asarray(context, dtype=np.float32)
    if c.shape != (DIM - TRACK_DIM,):
        raise ValueError(f"expected a context vector of {DIM - TRACK_DIM}, got shape {c.shape}")
    track_w = w[:TRACK_DIM].copy()
    # The context one-hots (tod, source, device, mood, activity) shift every candidate alike.
    bias = float(w[-1]) + float(w[TRACK_DIM:INTERACTION_OFFSET] @ c[: INTERACTION_OFFSET - TRACK_DIM])
    slots = c[_SLOTS_IN_CONTEXT]
    n_slots = len(CONTEXT_SLOTS)
    for k, audio_index in enumerate(_INTERACTING_AUDIO_INDEX):
        block = w[INTERACTION_OFFSET + k * n_slots : INTERACTION_OFFSET + (k + 1) * n_slots]
        track_w[audio_index] += float(block @ slots)
    return sigmoid(tracks @ track_w + np.float32(bias))
