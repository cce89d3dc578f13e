"""Typed responses of the API (they are also its OpenAPI documentation)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Accepted(BaseModel):
    accepted: int = Field(description="How many items the broker acknowledged.")
    topic: str
    ids: list[str]


class RecommendedTrack(BaseModel):
    track_id: str
    score: float
    title: str
    artist: str
    genres: list[str]
    reasons: list[str] = Field(description="Why this track, in words a listener understands.")


class Recommendations(BaseModel):
    user_id: str
    profile_version: int = Field(description="Events applied to this user when the list was made.")
    as_of: str | None = Field(description="Event time (RFC 3339) of the last applied event.")
    cold_start: bool = Field(description="True when the user has no profile yet.")
    items: list[RecommendedTrack]


class Affinity(BaseModel):
    name: str
    score: float


class RecentTrackOut(BaseModel):
    track_id: str
    type: str


class Profile(BaseModel):
    user_id: str
    profile_version: int
    as_of: str | None
    events_applied: int
    counts: dict[str, int]
    skip_rate: float
    top_genres: list[Affinity] = Field(description="Liked genres, strongest first.")
    top_artists: list[Affinity] = Field(description="Liked artists, strongest first.")
    avoided_genres: list[Affinity] = Field(description="Genres skipped or disliked, strongest first.")
    avoided_artists: list[Affinity] = Field(description="Artists skipped or disliked, strongest first.")
    audio_profile: dict[str, float] | None = Field(
        description="The taste vector in each feature's own unit (tempo in BPM, loudness in dB)."
    )
    taste_summary: list[str] = Field(description="What stands out in the taste, in words.")
    recent_tracks: list[RecentTrackOut] = Field(description="Newest first.")


class Health(BaseModel):
    status: str
