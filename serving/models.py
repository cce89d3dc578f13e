"""Typed responses of the API (they are also its OpenAPI documentation)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


# Fields every ranked answer carries (recommendations and rank), described once.
def _stats_as_of() -> Any:
    return Field(
        default=None, description="Wall-clock time (RFC 3339, ms) up to which the aggregate item statistics "
        "used (rates, trending, stream popularity) were read: the API holds them in memory and re-syncs "
        "them every ENCORE_ITEM_STATS_REFRESH_S, so they may be that much older than the answer. The "
        "listener's own profile is read live on every request (`profile_version`, `as_of`).")


def _request_id() -> Any:
    return Field(
        default="", description="This answer's id; players send it back as `context.request_id` with the "
        "plays of its tracks (it carries the experiment variants, `schemas.values.encode_request_id`).")


def _variant() -> Any:
    return Field(
        default=None, description="The experiment variant(s) this answer was ranked with (comma-separated).")


def _experiments() -> Any:
    return Field(default_factory=dict, description="Experiment → variant.")


class Accepted(BaseModel):
    accepted: int = Field(description="How many items the broker acknowledged.")
    topic: str
    ids: list[str]


class RecommendedTrack(BaseModel):
    track_id: str
    score: float = Field(description="The ranking score (sum of the weighted terms, docs/ranking.md).")
    title: str
    artist: str
    genres: list[str]
    reasons: list[str] = Field(description="Why this track, in words a listener understands.")
    sources: list[str] = Field(
        default_factory=list,
        description="Candidate sources that proposed it: taste, co_listening, trending, popular, seed.")
    engagement: float | None = Field(
        default=None,
        description="P(like or complete) from the listener's engagement model (else the global model).")
    explore: str | None = Field(
        default=None,
        description="Set on an exploration slot: the candidate source (bandit arm) it came from.")


class Recommendations(BaseModel):
    user_id: str
    profile_version: int = Field(description="Events applied to this user when the list was made.")
    as_of: str | None = Field(description="Event time (RFC 3339) of the last applied event.")
    stats_as_of: str | None = _stats_as_of()
    cold_start: bool = Field(description="True when nothing is known of the listener: no profile, no seed.")
    seeded: bool = Field(default=False, description="True when declared favourites (seed) were used.")
    target: str | None = Field(
        default=None, description="The mood / activity / time-of-day target applied, if any.")
    request_id: str = _request_id()
    variant: str | None = _variant()
    experiments: dict[str, str] = _experiments()
    items: list[RecommendedTrack]


class RankRequest(BaseModel):
    """Tracks to re-rank for a listener (e.g. the player's own queue or a search result)."""

    model_config = ConfigDict(extra="forbid")

    track_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=1000, description="Catalog track ids, 1 to 1000.")
    mood: str | None = Field(default=None, max_length=64,
                             description="A mood name (see the recommendations endpoint).")
    activity: str | None = Field(default=None, max_length=64)
    hour: int | None = Field(default=None, ge=0, le=23, description="The listener's local hour.")
    discovery: float = Field(default=0.0, ge=0.0, le=1.0)
    diversity: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="0 (default): pure score order. Above 0: diversified like recommendations.")


class RankResponse(BaseModel):
    user_id: str
    profile_version: int
    as_of: str | None
    stats_as_of: str | None = _stats_as_of()
    target: str | None = None
    request_id: str = _request_id()
    variant: str | None = _variant()
    experiments: dict[str, str] = _experiments()
    items: list[RecommendedTrack] = Field(description="The known tracks, best first.")
    unknown: list[str] = Field(
        description="Given ids the catalog does not know (reported, not dropped silently).")


class SimilarTracks(BaseModel):
    track_id: str
    title: str
    artist: str
    items: list[RecommendedTrack]


class SeedRequest(BaseModel):
    """Declared favourites of a new listener: a few tracks and/or artists."""

    model_config = ConfigDict(extra="forbid")

    track_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=50)
    artists: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=20)


class SeedResponse(BaseModel):
    user_id: str
    track_ids: list[str] = Field(description="Seed tracks the catalog knows.")
    artists: list[str] = Field(description="Seed artists the catalog knows.")
    unknown_tracks: list[str]
    unknown_artists: list[str]
    recommendations: Recommendations = Field(description="The listener's recommendations with the seed.")


class TasteCluster(BaseModel):
    size: int = Field(description="Recently liked tracks in this cluster.")
    described_as: list[str] = Field(description="What sets it apart from the catalog average.")
    examples: list[str] = Field(description="Liked tracks in it, as 'title by artist'.")


class MoodFit(BaseModel):
    mood: str
    fit: float = Field(description="How well the taste vector fits the mood's audio target, 0 to 1.")


class TimeOfDayShare(BaseModel):
    hours_utc: str
    share: float


class TasteAnalysis(BaseModel):
    clusters: list[TasteCluster] = Field(description="Distinct tastes among recent likes (k-means).")
    moods: list[MoodFit] = Field(description="The moods the taste fits best.")
    time_of_day: list[TimeOfDayShare] = Field(description="Likes and completes per 4-hour UTC window.")
    listening_time: str | None = Field(description="When the listener enjoys music most, in words.")
    drift: dict[str, Any] | None = Field(description="Taste drift detector: drifting now, detections, since.")
    engagement_model: dict[str, Any] = Field(description="Whether the listener has their own model yet.")


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
    taste_analysis: TasteAnalysis | None = Field(
        default=None, description="Clusters, moods and time-of-day pattern (null until the catalog loads).")


class Health(BaseModel):
    status: str


class SearchTrack(RecommendedTrack):
    release_year: int | None = None
    matched: list[str] = Field(
        default_factory=list,
        description="The parts of the query the track satisfies: target, genre, era, artist, title, words.")


class Interpretation(BaseModel):
    moods: list[str] = Field(description="Moods read from the query (canonical names).")
    activities: list[str]
    times_of_day: list[str]
    features: list[str] = Field(description="Audio-feature words: acoustic, fast, instrumental, ...")
    genres: list[str] = Field(description="Catalog genres the query names (also a filter).")
    era: dict[str, int] | None = Field(description="`{from, to}` release years (also a filter).")
    artists: list[str] = Field(description="Catalog artists the query names (also a filter).")
    title: str | None = Field(default=None, description="The title looked up, when the query is one.")
    words: list[str] = Field(description="Other words matched against titles and artists.")
    by_similarity: dict[str, str] = Field(
        default_factory=dict, description="Unknown words read by sentence embedding: word → concept.")
    ignored: list[str] = Field(description="Words that carry no meaning here.")
    relaxed: list[str] = Field(
        default_factory=list, description="Filters dropped because no track satisfied them all.")
    semantic: bool = Field(description="Whether sentence embeddings took part.")


class SearchResponse(BaseModel):
    query: str
    understood: list[str] = Field(description="The words of the query that were understood, in order.")
    interpretation: Interpretation
    user_id: str | None = None
    personalised: bool = Field(description="True when the listener's live taste shaped the order.")
    profile_version: int | None = None
    request_id: str
    variant: str | None = None
    experiments: dict[str, str] = Field(default_factory=dict, description="Experiment → variant.")
    items: list[SearchTrack]
class Forgetting(BaseModel):
    """`DELETE /v1/users/{user_id}`: the tombstone is in the events topic, the keys are gone."""

    user_id: str
    request_id: str = Field(description="The tombstone's id (schemas.events.Forget).")
    topic: str = Field(description="Where the tombstone went: after every earlier event of the listener.")
    status: str = Field(description="'accepted': the flow drops the listener's state when it reaches the "
                        "tombstone (seconds behind, its lag).")


class ExportedRecent(BaseModel):
    track_id: str
    type: str
    at: str | None = Field(
        description="Event time of the listener's latest event on the track (to the second).")


class ExportedModel(BaseModel):
    weights: list[float] = Field(description="The engagement model's 78 float32 weights.")
    prior_period: int | None = Field(description="The global-model period it was warm-started from.")


class ExportedProfile(BaseModel):
    """The stored profile, every field (schemas/profile_codec.py)."""

    profile_version: int
    as_of: str | None
    affinity_at: str | None
    taste: dict[str, float] = Field(description="The taste vector, each audio feature scaled to [0, 1].")
    taste_weight: float
    skip_rate: float
    counts: dict[str, int]
    genres: dict[str, float]
    artists: dict[str, float]
    recent_tracks: list[ExportedRecent] = Field(description="Oldest first, as stored.")
    likes_per_4h_utc: list[int]
    engagement_model: ExportedModel | None
    drift: dict[str, Any] | None


class ExportedSeed(BaseModel):
    track_ids: list[str]
    artists: list[str]
    at: str | None


class Export(BaseModel):
    """Everything Encore keeps about one listener that can be read back, and where the rest is."""

    user_id: str
    exported_at: str
    profile: ExportedProfile | None = Field(description="Null: no profile stored (never seen, or forgotten).")
    seed: ExportedSeed | None = Field(description="Declared favourites (POST .../seed), if any.")
    not_included: list[str] = Field(
        description="What else is kept about the listener, outside Redis, and for how long.")
