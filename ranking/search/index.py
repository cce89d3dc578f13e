"""`SearchIndex`: what search keeps per catalog version, next to the `CatalogView` it was built from.

- normalised titles (whole, and without " - Remastered" / "(feat. ...)" tails) and artist names,
  for exact lookups;
- the catalog's genres by normalised name;
- an inverted index of title and artist words (lexical match);
- release years;
- one sentence embedding per track ("<title> by <artist> (<genres>)"), computed when the catalog
  changes (rows of tracks whose text did not change are reused from the previous index), never
  per request; and the embeddings of `lexicon.CONCEPT_WORDS`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ranking.catalog_view import CatalogView
from ranking.search.embedding import Embedder
from ranking.search.lexicon import CONCEPT_WORDS, Entry

EMBED_MAX_TRACKS = 200_000
"""Catalogs above this size get no track embeddings (memory and build time); search then ranks by
its other terms."""

_DROP = re.compile(r"['’`´]")
_SPACE = re.compile(r"[^\w&]+", re.UNICODE)
_TAIL = re.compile(r"\s+-\s+.*$|\s*[(\[].*?[)\]]")


def normalise(text: str) -> str:
    """Lower-cased NFKC words separated by one space; apostrophes dropped, other punctuation a space.

    >>> normalise("Guns N' Roses — Sweet Child O' Mine!"), normalise("R&B / Hip-Hop"), normalise("90's")
    ('guns n roses sweet child o mine', 'r&b hip hop', '90s')
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _DROP.sub("", text).replace("_", " ")
    return " ".join(_SPACE.sub(" ", text).split())


def base_title(title: str) -> str:
    """A title without its version tail: "Heaven - David Guetta Remix" → "heaven".

    >>> base_title("Heaven - David Guetta & MORTEN Remix"), base_title("Señorita (feat. X)")
    ('heaven', 'señorita')
    """
    return normalise(_TAIL.sub("", title)) or normalise(title)


def track_text(title: str, artist: str, genres: Sequence[str]) -> str:
    text = f"{title} by {artist}" if artist else title
    return f"{text} ({', '.join(genres[:3])})" if genres else text


@dataclass
class SearchIndex:
    view: CatalogView
    titles: dict[str, list[int]]
    """Normalised title (whole, and its base) → positions."""
    artists: dict[str, int]
    """Normalised artist name → index into `view.index.artist_names`."""
    genres: dict[str, str]
    """Normalised genre → the catalog's genre name."""
    postings: dict[str, np.ndarray]
    """Title or artist word → positions of the tracks that have it."""
    years: np.ndarray
    """(n,) float32 release year, NaN when unknown."""
    year_range: tuple[int, int]
    texts: list[str]
    base_titles: list[str]
    """Each track's `base_title` (search shows one copy of a song per artist)."""
    embeddings: np.ndarray | None = None
    """(n, d) float32 unit rows, or None (no embedder, or a catalog above `EMBED_MAX_TRACKS`)."""
    embedder: Embedder | None = None
    concept_names: list[tuple[str, Entry]] = field(default_factory=list)
    concept_vectors: np.ndarray | None = None
    max_artist_words: int = 1

    @classmethod
    def build(cls, view: CatalogView, embedder: Embedder | None = None,
              previous: SearchIndex | None = None, embed_max_tracks: int = EMBED_MAX_TRACKS) -> SearchIndex:
        index = view.index
        titles: dict[str, list[int]] = {}
        postings: dict[str, list[int]] = {}
        years = np.full(len(index), np.nan, dtype=np.float32)
        texts: list[str] = []
        bases: list[str] = []
        artist_words = [normalise(name).split() for name in index.artist_names]
        for i, track in enumerate(index.tracks):
            whole, base = normalise(track.title), base_title(track.title)
            bases.append(base)
            for key in {whole, base}:
                if key:
                    titles.setdefault(key, []).append(i)
            for word in set(whole.split()).union(artist_words[index.artist_of[i]]):
                postings.setdefault(word, []).append(i)
            if track.release_year is not None:
                years[i] = track.release_year
            texts.append(track_text(track.title, track.artist, track.genres))
        artists = {}
        for a, name in enumerate(index.artist_names):
            key = normalise(name)
            if key:
                artists.setdefault(key, a)
        genres = {normalise(g): g for g in index.genre_names}
        known = years[np.isfinite(years)]
        year_range = (int(known.min()), int(known.max())) if len(known) else (1900, 2100)
        arrays = {w: np.array(p, dtype=np.int64) for w, p in postings.items()}
        built = cls(view, titles, artists, genres, arrays, years, year_range, texts, bases,
                    max_artist_words=max((len(k.split()) for k in artists), default=1))
        if embedder is not None:
            built.embedder = embedder
            built.concept_names = list(CONCEPT_WORDS.items())
            built.concept_vectors = embedder.embed([name for name, _ in built.concept_names])
            if len(index) <= embed_max_tracks:
                built.embeddings = _embed_tracks(embedder, index.tracks, texts, previous)
        return built

    def idf(self, word: str) -> float:
        rows = self.postings.get(word)
        return math.log(1.0 + len(self.view.index) / len(rows)) if rows is not None and len(rows) else 0.0


def _embed_tracks(embedder: Embedder, tracks: Sequence, texts: list[str],
                  previous: SearchIndex | None) -> np.ndarray:
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    todo: list[int] = []
    old: dict[str, int] = {}
    if previous is not None and previous.embeddings is not None and previous.embedder is embedder:
        old = {t.track_id: i for i, t in enumerate(previous.view.index.tracks)}
    for i, track in enumerate(tracks):
        j = old.get(track.track_id)
        if j is not None and previous is not None and previous.texts[j] == texts[i]:
            out[i] = previous.embeddings[j]  # type: ignore[index]
        else:
            todo.append(i)
    if todo:
        out[todo] = embedder.embed([texts[i] for i in todo])
    return out
