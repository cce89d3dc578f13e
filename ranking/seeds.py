"""Declared favourites (`POST /v1/users/{id}/seed`): a starting point for a listener nobody knows yet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ranking.catalog_index import CatalogIndex
from ranking.catalog_view import CatalogView, artist_lookup
from ranking.config import RANKING_CONFIG, RankingConfig
from schemas.profile_codec import UserProfile


@dataclass(frozen=True)
class SeedProfile:
    """A starting point built from declared favourites (`POST /v1/users/{id}/seed`)."""

    taste: list[float]
    """Mean scaled features of the seed tracks; empty when none has features."""
    artists: dict[str, float]
    """Each favourite artist (and each seed track's artist) → 1.0."""
    genres: dict[str, float]
    """Share of seed tracks carrying each genre, scaled so the most common is 1.0."""
    positions: list[int]
    """Catalog positions of the seed tracks, in order."""
    unknown_tracks: list[str]
    unknown_artists: list[str]

    def to_profile(self, user_id: str) -> UserProfile:
        """A version-0 profile to score with (nothing learned yet)."""
        return UserProfile(
            user_id, taste=list(self.taste), genres=dict(self.genres), artists=dict(self.artists)
        )


def seed_profile(
    index: CatalogIndex,
    track_ids: Sequence[str] = (),
    artists: Sequence[str] = (),
    per_artist: int = RANKING_CONFIG.seed_tracks_per_artist,
    artist_keys: Mapping[str, list[int]] | None = None,
) -> SeedProfile:
    """Turn declared favourites (track ids and/or artist names, case-insensitive) into a seed.

    >>> from schemas.tracks import Track
    >>> f = dict(danceability=0.5, valence=0.5, acousticness=0.5, instrumentalness=0.0,
    ...          liveness=0.1, speechiness=0.1, tempo=120.0, loudness=-6.0)
    >>> index = CatalogIndex.build([
    ...     Track(track_id="a", artist="Muse", genres=["rock"], popularity=80, energy=0.9, **f),
    ...     Track(track_id="b", artist="Muse", genres=["rock"], popularity=60, energy=0.7, **f),
    ...     Track(track_id="c", artist="Norah Jones", genres=["jazz"], popularity=70, energy=0.2, **f)])
    >>> seed = seed_profile(index, track_ids=["c", "zz"], artists=["muse", "Nobody"])
    >>> seed.positions, round(seed.taste[1], 2), seed.genres, seed.unknown_tracks, seed.unknown_artists
    ([2, 0, 1], 0.6, {'jazz': 0.5, 'rock': 1.0}, ['zz'], ['Nobody'])
    """
    positions: list[int] = []
    unknown_tracks: list[str] = []
    for track_id in track_ids:
        i = index.position.get(track_id)
        if i is None:
            unknown_tracks.append(track_id)
        elif i not in positions:
            positions.append(i)
    by_artist = artist_keys if artist_keys is not None else artist_lookup(index)
    unknown_artists: list[str] = []
    artist_scores: dict[str, float] = {}
    for name in artists:
        keys = by_artist.get(name.strip().lower())
        if not keys:
            unknown_artists.append(name)
            continue
        rows = np.flatnonzero(np.isin(index.artist_of, keys))
        rows = rows[np.lexsort((rows, -index.popularity[rows]))][: max(per_artist, 0)]
        positions.extend(int(i) for i in rows if int(i) not in positions)
        for key in keys:
            artist_scores[index.artist_names[key]] = 1.0
    for i in positions:
        artist = index.tracks[i].artist
        if artist:
            artist_scores.setdefault(artist, 1.0)
    with_features = [i for i in positions if index.has_features[i]]
    taste = index.features[with_features].mean(0).astype(np.float32).tolist() if with_features else []
    genre_counts: dict[str, int] = {}
    for i in positions:
        for genre in index.tracks[i].genres:
            genre_counts[genre] = genre_counts.get(genre, 0) + 1
    top = max(genre_counts.values(), default=1)
    genres = {g: round(c / top, 6) for g, c in sorted(genre_counts.items())}
    return SeedProfile(taste, artist_scores, genres, positions, unknown_tracks, unknown_artists)


@dataclass(frozen=True)
class SeedFavourites:
    """Declared favourites as stored (`POST /v1/users/{id}/seed`)."""

    track_ids: tuple[str, ...] = ()
    artists: tuple[str, ...] = ()


def seed_of(view: CatalogView, favourites: SeedFavourites,
            config: RankingConfig = RANKING_CONFIG) -> SeedProfile:
    """`seed_profile` of stored favourites, with the view's precomputed artist lookup."""
    return seed_profile(view.index, favourites.track_ids, favourites.artists,
                             artist_keys=view.artist_keys,
                        per_artist=config.seed_tracks_per_artist)


def effective_profile(
    profile: UserProfile | None, seed: SeedProfile | None, user_id: str = "",
    config: RankingConfig = RANKING_CONFIG,
) -> UserProfile | None:
    """The profile to score with: the live one, with declared favourites blended in while it is young.

    The seed's affinities count fully at version 0 and fade linearly to nothing at
    `config.seed_fade_events` applied events; its taste stands in until the listener has one."""
    if seed is None:
        return profile
    if profile is None:
        return seed.to_profile(user_id)
    share = max(0.0, 1.0 - profile.version / config.seed_fade_events)
    if share <= 0 and profile.taste:
        return profile
    genres = dict(profile.genres)
    artists = dict(profile.artists)
    for name, value in seed.genres.items():
        genres[name] = genres.get(name, 0.0) + share * value
    for name, value in seed.artists.items():
        artists[name] = artists.get(name, 0.0) + share * value
    return UserProfile(
        profile.user_id, version=profile.version, as_of_ms=profile.as_of_ms,
        taste=list(profile.taste) or list(seed.taste), genres=genres, artists=artists,
        recent=profile.recent, model_weights=profile.model_weights, tod_counts=profile.tod_counts,
    )


