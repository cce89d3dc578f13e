"""Regenerate encore/data/spotify_sample.csv (and SAMPLE_SOURCE.md) from the full TidyTuesday table.

Usage (from the repository root):

    .venv/bin/python scripts/make_catalog_sample.py [SOURCE_CSV] [--out-dir encore/data]

SOURCE_CSV defaults to ../shared/data/spotify-songs-tidytuesday/spotify_songs.csv relative to the
repository root. Selection is deterministic: for each playlist_genre (edm, rap, pop, r&b, latin,
rock, in that order), the tracks that appear under it are ordered by the SHA-1 of their track_id
and the first 100 not already chosen whose nine audio features are all numbers inside their
documented ranges are taken. Every row of a chosen track is copied byte for byte, in source order,
so tracks found in several playlists keep all their genres.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = (
    REPO_ROOT.parent / "shared" / "data" / "spotify-songs-tidytuesday" / "spotify_songs.csv"
)
DEFAULT_OUT_DIR = REPO_ROOT / "encore" / "data"
SAMPLE_NAME = "spotify_sample.csv"
GENRES = ("edm", "rap", "pop", "r&b", "latin", "rock")
PER_GENRE = 100
EXPECTED_SHA256 = "9902920cfe4940f0914ebb6716801a42f7f19ac88fbd6693eaae7e2822b16845"

# The documented ranges (schemas.tracks.FEATURE_RANGES, repeated so the script stands alone).
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "danceability": (0.0, 1.0),
    "energy": (0.0, 1.0),
    "valence": (0.0, 1.0),
    "acousticness": (0.0, 1.0),
    "instrumentalness": (0.0, 1.0),
    "liveness": (0.0, 1.0),
    "speechiness": (0.0, 1.0),
    "tempo": (0.0, 250.0),
    "loudness": (-60.0, 0.0),
}


def _records(text: str) -> Iterator[tuple[str, list[str]]]:
    """(raw record text including its line ending, parsed fields) for every CSV record."""
    lines = iter(text.splitlines(keepends=True))
    consumed: list[str] = []

    def feed() -> Iterator[str]:
        for line in lines:
            consumed.append(line)
            yield line

    for fields in csv.reader(feed()):
        raw = "".join(consumed)
        consumed.clear()
        yield raw, fields


def _full_features(row: dict[str, str]) -> bool:
    for name, (low, high) in FEATURE_RANGES.items():
        try:
            value = float(row[name])
        except (KeyError, ValueError):
            return False
        if not math.isfinite(value) or not low <= value <= high:
            return False
    return True


def select(source_text: str) -> tuple[str, list[tuple[str, str]]]:
    """The raw header line and the chosen rows as (raw text, track_id), in source order."""
    records = _records(source_text)
    header_raw, header = next(records)
    rows: list[tuple[str, dict[str, str]]] = [
        (raw, dict(zip(header, fields, strict=True))) for raw, fields in records
    ]
    tracks_by_genre: dict[str, set[str]] = {genre: set() for genre in GENRES}
    complete: dict[str, bool] = {}
    for _, row in rows:
        track_id = row["track_id"]
        if not track_id:
            continue
        if row["playlist_genre"] in tracks_by_genre:
            tracks_by_genre[row["playlist_genre"]].add(track_id)
        complete[track_id] = complete.get(track_id, True) and _full_features(row)

    def sha1(track_id: str) -> str:
        return hashlib.sha1(track_id.encode("utf-8")).hexdigest()

    chosen: dict[str, None] = {}
    for genre in GENRES:
        taken = 0
        for track_id in sorted(tracks_by_genre[genre], key=lambda t: (sha1(t), t)):
            if taken == PER_GENRE:
                break
            if track_id in chosen or not complete[track_id]:
                continue
            chosen[track_id] = None
            taken += 1
        if taken < PER_GENRE:
            raise SystemExit(f"only {taken} usable tracks for genre {genre!r}")
    return header_raw, [(raw, row["track_id"]) for raw, row in rows if row["track_id"] in chosen]


SOURCE_MD = """\
# spotify_sample.csv: a small real sample of the TidyTuesday "Spotify Songs" table

`spotify_sample.csv` holds {rows} rows for {tracks} distinct tracks,
{per_genre} chosen under each playlist genre: {genres}.
It has exactly the header and row format of the full table, and every row is a byte-for-byte
copy of a source row. `encore.catalog_csv.read_spotify_csv` reads it
(`encore.catalog_csv.DEFAULT_SAMPLE`).
sha256 of the sample: `{sample_sha256}`.

## Where it came from
- TidyTuesday, week 2020-01-21, "Spotify Songs": repository rfordatascience/tidytuesday
  (MIT-licensed), `data/2020/2020-01-21/spotify_songs.csv`.
- The data was collected from the Spotify Web API with the R package spotifyr; the split into
  playlist genres and subgenres follows Kaylin Pavlik's blog post on classifying songs by genre.
- Full source file: `spotify_songs.csv`, 32,833 rows, 28,356 distinct tracks,
  sha256 `{source_sha256}`.
  The copy used was unpacked from a Kaggle-style download of the same table (see the shared
  data folder's SOURCE.md); its size matches the TidyTuesday file.

## How the sample was selected
`scripts/make_catalog_sample.py` regenerates the sample and this file. For each
playlist_genre, in the order {genres}, the tracks that appear under that
genre are ordered by the SHA-1 of their track_id. The first {per_genre} tracks not already chosen
whose nine audio features
(danceability, energy, valence, acousticness, instrumentalness, liveness, speechiness, tempo,
loudness) are all numbers inside their documented ranges are taken. All rows of each chosen track
are kept, in source order, so a track sampled from several playlists keeps all its genres
({multi} of the {tracks} tracks appear in more than one row).

## Terms
The audio features and popularity values come from Spotify's Web API, and Spotify's developer
terms apply to that content. The sample is shipped for demos and tests only; it is not product
content.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)

    data = args.source.read_bytes()
    source_sha256 = hashlib.sha256(data).hexdigest()
    if source_sha256 != EXPECTED_SHA256:
        print(
            f"warning: source sha256 {source_sha256} != expected {EXPECTED_SHA256}", file=sys.stderr
        )
    header, rows = select(data.decode("utf-8"))
    sample = (header + "".join(raw for raw, _ in rows)).encode("utf-8")
    rows_per_track = Counter(track_id for _, track_id in rows)
    multi = sum(1 for count in rows_per_track.values() if count > 1)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / SAMPLE_NAME).write_bytes(sample)
    notes = SOURCE_MD.format(
        rows=f"{len(rows):,}",
        tracks=len(rows_per_track),
        per_genre=PER_GENRE,
        genres=", ".join(GENRES),
        sample_sha256=hashlib.sha256(sample).hexdigest(),
        source_sha256=source_sha256,
        multi=multi,
    )
    (args.out_dir / "SAMPLE_SOURCE.md").write_text(notes, encoding="utf-8")
    print(
        f"wrote {len(rows)} rows for {len(rows_per_track)} tracks ({multi} in several rows) "
        f"to {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
