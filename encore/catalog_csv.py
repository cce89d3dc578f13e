"""Load a track catalog from a CSV in the TidyTuesday "Spotify Songs" format.

The table has one row per (track, playlist). `read_spotify_csv` folds the rows of each `track_id`
into one `schemas.tracks.Track`: the playlist genres it was found under come first, then the
subgenres. Encore ships a small real sample of that table (`DEFAULT_SAMPLE`, see
`encore/data/SAMPLE_SOURCE.md`) for demos and tests.

>>> tracks = read_spotify_csv(DEFAULT_SAMPLE)
>>> len(tracks)
600
>>> all(track.has_features for track in tracks)
True
>>> first = tracks[0]
>>> first.title, first.artist, first.release_year, first.popularity
('Heaven - David Guetta & MORTEN Remix', 'Avicii', 2019, 70.0)
>>> first.genres  # found in a pop and in an edm playlist: genres first, then subgenres
['pop', 'edm', 'dance pop', 'electro house', 'big room', 'pop edm']
>>> [round(x, 2) for x in first.feature_vector()]
[0.57, 0.93, 0.2, 0.0, 0.02, 0.1, 0.04, 0.5, 0.92]
>>> key, value = next(iter_tracks_json(tracks[:1]))
>>> key == tracks[0].track_id.encode()
True
>>> from schemas.tracks import decode_track
>>> decode_track(value) == tracks[0]
True
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from schemas.tracks import AUDIO_FEATURES, MAX_GENRES, Track

__all__ = ["DEFAULT_SAMPLE", "iter_tracks_json", "parse_release_year", "read_spotify_csv"]

log = logging.getLogger(__name__)

DEFAULT_SAMPLE: Path = Path(__file__).resolve().parent / "data" / "spotify_sample.csv"
"""600 real tracks (100 per playlist genre) from the TidyTuesday table, all their rows kept."""

# Limits of the Track model, checked here so one odd row degrades a field instead of the track.
_MAX_TEXT = 512
_MAX_LABEL = 64
_MAX_ID = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_YEAR = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
# The table was written by R: a missing value is the literal "NA".
_MISSING = {"", "NA", "NaN", "nan", "null", "NULL", "None"}


@dataclass(slots=True)
class _Pending:
    """What is known about one track while its rows stream by."""

    title: str = ""
    artist: str = ""
    popularity: float | None = None
    release_year: int | None = None
    features: dict[str, float] | None = None
    genres: dict[str, None] = field(default_factory=dict)
    subgenres: dict[str, None] = field(default_factory=dict)


def _text(value: str | None) -> str:
    value = (value or "").strip()
    return "" if value in _MISSING else value[:_MAX_TEXT]


def _label(value: str | None) -> str | None:
    value = _text(value).lower()
    if not value or len(value) > _MAX_LABEL or _CONTROL.search(value):
        return None
    return value


def _popularity(value: str | None) -> float | None:
    try:
        number = float(value or "")
    except ValueError:
        return None
    return number if 0.0 <= number <= 100.0 else None


def parse_release_year(value: str | None) -> int | None:
    """The year of "2019-06-14", "2019-06" or "2019"; None for anything else.

    >>> [parse_release_year(v) for v in ("2019-06-14", "2019-06", "2019", "19", "", "NA")]
    [2019, 2019, 2019, None, None, None]
    """
    match = _YEAR.fullmatch((value or "").strip())
    if match is None:
        return None
    year, month, day = (int(part) if part else None for part in match.groups())
    if not 1800 <= year <= 2200 or (month is not None and not 1 <= month <= 12):
        return None
    if day is not None and not 1 <= day <= 31:
        return None
    return year


def _features(row: dict[str, str]) -> dict[str, float] | None:
    """The nine audio features of a row, or None if any is missing, not a number or not finite."""
    features = {}
    for name in AUDIO_FEATURES:
        try:
            value = float(row.get(name) or "")
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        features[name] = value
    return features


def _track_id(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value or value in _MISSING or len(value) > _MAX_ID or _CONTROL.search(value):
        return None
    return value


def _build(track_id: str, pending: _Pending) -> Track | None:
    genres = [*pending.genres, *(g for g in pending.subgenres if g not in pending.genres)]
    fields: dict[str, object] = {
        "track_id": track_id,
        "title": pending.title,
        "artist": pending.artist,
        "genres": genres[:MAX_GENRES],
        "popularity": pending.popularity,
        "release_year": pending.release_year,
        **(pending.features or {}),
    }
    try:
        return Track.model_validate(fields)
    except ValidationError as exc:
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        if pending.features is None or not bad <= set(AUDIO_FEATURES):
            log.warning("skipping track %s: %s", track_id, exc.errors(include_url=False))
            return None
    # A feature outside the model's accepted range: keep the track, without features.
    for name in AUDIO_FEATURES:
        fields.pop(name, None)
    return Track.model_validate(fields)


def read_spotify_csv(path: str | Path, limit: int | None = None) -> list[Track]:
    """Tracks from a TidyTuesday "Spotify Songs" CSV, one per `track_id`, in first-seen order.

    Rows are streamed and merged per `track_id`: title, artist, popularity and release year come
    from the first row that has them, genres are the distinct `playlist_genre` values followed by
    the distinct `playlist_subgenre` values (lowercased, at most 16), and the nine audio features
    come from the first row where all nine are finite numbers. A track none of whose rows has them
    gets no features. Rows without a `track_id` are skipped.

    `limit` keeps the first `limit` distinct tracks; the rest of the file is still read so that
    those tracks collect the genres of all the playlists they appear in.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    pending: dict[str, _Pending] = {}
    skipped = 0
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "track_id" not in reader.fieldnames:
            raise ValueError(f"{path}: not a Spotify songs CSV (no track_id column in the header)")
        for row in reader:
            track_id = _track_id(row.get("track_id"))
            if track_id is None:
                skipped += 1
                continue
            entry = pending.get(track_id)
            if entry is None:
                if limit is not None and len(pending) >= limit:
                    continue
                entry = pending[track_id] = _Pending()
            if not entry.title:
                entry.title = _text(row.get("track_name"))
            if not entry.artist:
                entry.artist = _text(row.get("track_artist"))
            if entry.popularity is None:
                entry.popularity = _popularity(row.get("track_popularity"))
            if entry.release_year is None:
                entry.release_year = parse_release_year(row.get("track_album_release_date"))
            if entry.features is None:
                entry.features = _features(row)
            genre = _label(row.get("playlist_genre"))
            if genre is not None:
                entry.genres[genre] = None
            subgenre = _label(row.get("playlist_subgenre"))
            if subgenre is not None:
                entry.subgenres[subgenre] = None
    if skipped:
        log.info("%s: skipped %d rows without a usable track_id", path, skipped)
    tracks = (_build(track_id, entry) for track_id, entry in pending.items())
    return [track for track in tracks if track is not None]


def iter_tracks_json(tracks: Iterable[Track]) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs to produce a catalog to Kafka: the UTF-8 track_id, the track JSON."""
    for track in tracks:
        yield track.track_id.encode("utf-8"), track.to_json()


@dataclass(frozen=True)
class Playlist:
    """One playlist of the table: its genre and its distinct tracks, in file order."""

    playlist_id: str
    genre: str
    track_ids: tuple[str, ...]


def read_playlists(path: str | Path) -> list[Playlist]:
    """The playlists of a Spotify songs CSV (`playlist_id`, `playlist_genre`, rows in file order).

    >>> playlists = read_playlists(DEFAULT_SAMPLE)
    >>> len(playlists) > 10 and all(p.track_ids and p.genre for p in playlists)
    True
    """
    tracks: dict[str, dict[str, None]] = {}
    genre: dict[str, str] = {}
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            playlist_id, track_id = _text(row.get("playlist_id")), _track_id(row.get("track_id"))
            if playlist_id and track_id:
                tracks.setdefault(playlist_id, {})[track_id] = None
                genre.setdefault(playlist_id, _label(row.get("playlist_genre")) or "")
    return [Playlist(p, genre[p], tuple(t)) for p, t in tracks.items()]
