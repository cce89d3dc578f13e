"""The catalog track, and the nine audio features every taste profile is measured in.

>>> track = Track.model_validate({"track_id": "t1", "title": "Song", "artist": "Band",
...     "genres": ["rock"], "danceability": 0.5, "energy": 0.9, "valence": 0.4,
...     "acousticness": 0.1, "instrumentalness": 0.0, "liveness": 0.2, "speechiness": 0.05,
...     "tempo": 125.0, "loudness": -6.0})
>>> [round(x, 3) for x in track.feature_vector()]
[0.5, 0.9, 0.4, 0.1, 0.0, 0.2, 0.05, 0.5, 0.9]
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas._memo import IdentityMemo
from schemas._text import Identifier, Label

AUDIO_FEATURES: tuple[str, ...] = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "tempo",
    "loudness",
)
"""The nine audio features, in the order every vector in Encore uses."""

FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "danceability": (0.0, 1.0),
    "energy": (0.0, 1.0),
    "valence": (0.0, 1.0),
    "acousticness": (0.0, 1.0),
    "instrumentalness": (0.0, 1.0),
    "liveness": (0.0, 1.0),
    "speechiness": (0.0, 1.0),
    "tempo": (0.0, 250.0),  # BPM
    "loudness": (-60.0, 0.0),  # dB
}
"""Accepted range of each raw feature; vectors are scaled by it to [0, 1]."""

MAX_GENRES = 16


def normalise_feature(name: str, value: float) -> float:
    """A raw feature scaled to [0, 1] by its documented range (clipped)."""
    low, high = FEATURE_RANGES[name]
    return min(1.0, max(0.0, (value - low) / (high - low)))


class Track(BaseModel):
    """A catalog track. The nine audio features come all together or not at all."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    track_id: Identifier
    title: str = Field(default="", max_length=512)
    artist: str = Field(default="", max_length=512)
    genres: list[Label] = Field(default_factory=list, max_length=MAX_GENRES)
    popularity: float | None = Field(default=None, ge=0, le=100)
    release_year: int | None = Field(default=None, ge=1800, le=2200)
    danceability: float | None = None
    energy: float | None = None
    valence: float | None = None
    acousticness: float | None = None
    instrumentalness: float | None = None
    liveness: float | None = None
    speechiness: float | None = None
    tempo: float | None = None
    loudness: float | None = None
    features_predicted: bool = Field(
        default=False, description="True when the audio features were predicted, not measured."
    )

    @field_validator(*AUDIO_FEATURES)
    @classmethod
    def _finite_in_range(cls, value: float | None, info: Any) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        low, high = FEATURE_RANGES[info.field_name]
        # Loudness can exceed 0 dB slightly in real data; allow a small margin either side.
        margin = 0.05 * (high - low)
        if not low - margin <= value <= high + margin:
            raise ValueError(f"must be between {low} and {high}")
        return value

    @field_validator("genres")
    @classmethod
    def _lowercase_unique(cls, genres: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for genre in genres:
            seen.setdefault(genre.lower(), None)
        return list(seen)

    @model_validator(mode="after")
    def _all_or_no_features(self) -> Track:
        given = [name for name in AUDIO_FEATURES if getattr(self, name) is not None]
        if given and len(given) != len(AUDIO_FEATURES):
            missing = [name for name in AUDIO_FEATURES if getattr(self, name) is None]
            raise ValueError(f"give all nine audio features or none; missing: {', '.join(missing)}")
        return self

    @property
    def has_features(self) -> bool:
        return self.danceability is not None

    def feature_vector(self) -> list[float] | None:
        """The nine features scaled to [0, 1], in `AUDIO_FEATURES` order; None without features."""
        scaled = _scaled_features(self)
        return list(scaled) if scaled is not None else None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def _scale(track: Track) -> tuple[float, ...] | None:
    if not track.has_features:
        return None
    return tuple(normalise_feature(name, getattr(track, name)) for name in AUDIO_FEATURES)


_scaled_features: IdentityMemo[Track, tuple[float, ...] | None] = IdentityMemo(_scale)
scaled_features = _scaled_features
"""`Track.feature_vector()` as the memo's own tuple, without the copy: for hot paths that only read it."""
"""Once per track object: the flow reads a track's vector several times per event."""


class InvalidTrack(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_track(raw: bytes | None) -> Track:
    """A `Track` from JSON bytes, or `InvalidTrack` with a one-line reason."""
    if not raw:
        raise InvalidTrack("empty message")
    try:
        return Track.model_validate_json(raw)
    except ValidationError as exc:
        parts = []
        for error in exc.errors(include_url=False, include_input=False):
            field = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            parts.append(f"{field}: {message}" if field else message)
        raise InvalidTrack("; ".join(parts)) from None
