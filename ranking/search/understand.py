"""Query understanding: from the words a listener types to concepts the ranking can use.

`understand(text, index)` reads the query left to right and takes, at each word, the longest phrase
it knows (up to `MAX_PHRASE` words): an artist of the catalog (a several-word name, or one word that
means nothing else), a phrase of the lexicon (mood, activity, time of day, audio-feature word, era,
genre synonym), a genre of the catalog, a decade or a year ("90s", "1990s", "'94", "1994",
"90년대"). Runs of Hangul are matched against the Korean lexicon without their spaces, because
particles and endings stick to the words ("운동할때", "비오는날"). A query that is a track's title
(or "<title> by <artist>") is a title lookup. Words left over are matched against titles and artists
(`words`), and an English word in no table is compared by sentence embedding with a few concept
words (`lexicon.CONCEPT_WORDS`): "jogging" is taken as running when the cosine is at least
`RankingConfig.search_min_similarity`.

>>> from schemas.tracks import Track
>>> from ranking.catalog_view import CatalogView
>>> from ranking.search.index import SearchIndex
>>> t = Track(track_id="t", title="Imagine", artist="John Lennon", genres=["rock"], release_year=1971)
>>> index = SearchIndex.build(CatalogView.build([t]))
>>> q = understand("calm acoustic songs for studying", index)
>>> q.understood, [(c.kind, c.value) for c in q.concepts]
(['calm', 'acoustic', 'studying'], [('mood', 'chill'), ('feature', 'acoustic'), ('activity', 'studying')])
>>> understand("upbeat 90s rock", index).understood
['upbeat', '90s', 'rock']
>>> [(c.kind, c.value) for c in understand("기분 좋은 노래 틀어줘", index).concepts]
[('mood', 'happy')]
>>> [(c.kind, c.value) for c in understand("imagine by john lennon", index).concepts]
[('title', 'imagine'), ('artist', 'John Lennon')]
>>> understand("qwzx", index).intelligible
False
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ranking.config import RANKING_CONFIG, RankingConfig
from ranking.search.index import SearchIndex, base_title, normalise
from ranking.search.lexicon import ENGLISH, KOREAN, KOREAN_STOPWORDS, STOPWORDS

MAX_PHRASE = 4
"""Longest lexicon or genre phrase, in words."""
MAX_QUERY_CHARS = 256
FILTERS = frozenset({"genre", "era", "artist"})
"""Concept kinds that also filter the answer."""

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_DECADE_2 = re.compile(r"^(\d0)s$")
_DECADE_4 = re.compile(r"^((?:19|20)\d0)s$")
_YEAR = re.compile(r"^(19[0-9]\d|20[0-4]\d)$")
_KOREAN_DECADE = re.compile(r"(\d{2,4})\s*년대")
_KOREAN_YEAR = re.compile(r"((?:19|20)\d\d)\s*년")

_ENGLISH = {normalise(k): v for k, v in ENGLISH.items()}
_KOREAN = {normalise(k).replace(" ", ""): (normalise(k), v)
           for k, v in sorted(KOREAN.items(), key=lambda kv: " " in kv[0])}
"""Spaceless phrase → (the phrase as written, entry); a written form with spaces wins for display."""
_KOREAN_KEYS = sorted(_KOREAN, key=len, reverse=True)
_KOREAN_STOP = sorted({normalise(k).replace(" ", "") for k in KOREAN_STOPWORDS}, key=len, reverse=True)


@dataclass(frozen=True)
class Concept:
    kind: str
    """mood, activity, time, feature, genre, era, artist, title."""
    value: str
    surface: str
    """The words of the query it was read from."""
    similarity: float | None = None
    """Set when it was found by embedding (the cosine to the concept word)."""


@dataclass
class ParsedQuery:
    text: str
    concepts: list[Concept] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    """Words left for the lexical match over titles and artists."""
    ignored: list[str] = field(default_factory=list)
    """Words that carry no meaning here (stop words, particles) or that nothing matched."""
    title_positions: list[int] = field(default_factory=list)
    query_vector: np.ndarray | None = None

    @property
    def understood(self) -> list[str]:
        out: list[str] = []
        for c in self.concepts:
            if c.surface not in out:
                out.append(c.surface)
        return out

    def of(self, kind: str) -> list[Concept]:
        return [c for c in self.concepts if c.kind == kind]

    def values(self, kind: str) -> list[str]:
        return list(dict.fromkeys(c.value for c in self.concepts if c.kind == kind))

    @property
    def lexical_hits(self) -> bool:
        return bool(self.words)

    @property
    def intelligible(self) -> bool:
        return bool(self.concepts) or bool(self.words)


def _era_of(token: str) -> str | None:
    m = _DECADE_2.match(token)
    if m:
        d = int(m.group(1))
        start = 1900 + d if d >= 30 else 2000 + d
        return f"{start}-{start + 9}"
    m = _DECADE_4.match(token)
    if m:
        start = int(m.group(1))
        return f"{start}-{start + 9}"
    m = _YEAR.match(token)
    if m:
        return f"{m.group(1)}-{m.group(1)}"
    return None


def _korean(run: str, parsed: ParsedQuery, index: SearchIndex) -> None:
    """Korean phrases inside one run of Hangul (spaces removed), longest first at each place."""
    i = 0
    leftover = ""
    while i < len(run):
        hit = next((k for k in _KOREAN_KEYS if run.startswith(k, i)), None)
        if hit is None:
            stop = next((k for k in _KOREAN_STOP if run.startswith(k, i)), None)
            if stop is not None:
                i += len(stop)
                if leftover:
                    parsed.ignored.append(leftover)
                    leftover = ""
                continue
            leftover += run[i]
            i += 1
            continue
        if leftover:
            parsed.ignored.append(leftover)
            leftover = ""
        surface, (kind, value) = _KOREAN[hit]
        _add(parsed, index, kind, value, surface)
        i += len(hit)
    if leftover:
        parsed.ignored.append(leftover)


def _add(parsed: ParsedQuery, index: SearchIndex, kind: str, value: str, surface: str,
         similarity: float | None = None) -> bool:
    if kind == "genre":
        name = index.genres.get(normalise(value))
        if name is None:
            return False
        value = name
    parsed.concepts.append(Concept(kind, value, surface, similarity))
    return True


def _title_lookup(text: str, index: SearchIndex) -> tuple[list[int], str | None, str] | None:
    """A query that is a title, or "<title> by <artist>": (positions, artist, title words)."""
    positions = index.titles.get(text) or index.titles.get(base_title(text))
    if positions:
        return positions, None, text
    if " by " in text:
        title, artist = text.rsplit(" by ", 1)
        a = index.artists.get(artist)
        candidates = index.titles.get(title) or index.titles.get(base_title(title)) or []
        if a is not None:
            by = [i for i in candidates if int(index.view.index.artist_of[i]) == a]
            if by:
                return by, index.view.index.artist_names[a], title
    return None


def understand(text: str, index: SearchIndex, config: RankingConfig = RANKING_CONFIG) -> ParsedQuery:
    """The concepts, lexical words and ignored words of a query (see the module's docstring)."""
    text = text[:MAX_QUERY_CHARS]
    parsed = ParsedQuery(text)
    normal = normalise(text)
    if not normal:
        return parsed
    for pattern in (_KOREAN_DECADE, _KOREAN_YEAR):
        for m in pattern.finditer(normal):
            era = _era_of(m.group(1) + ("s" if pattern is _KOREAN_DECADE else ""))
            if era is not None:
                _add(parsed, index, "era", era, m.group(0))
        normal = pattern.sub(" ", normal)
    title = _title_lookup(normal, index)
    if title is not None:
        positions, artist, words = title
        parsed.title_positions = positions
        parsed.concepts.append(Concept("title", words, words))
        if artist is not None:
            parsed.concepts.append(Concept("artist", artist, normalise(artist)))
            normal = words  # the artist is read already; the title's words may still say more
    tokens = normal.split()
    whole_artist = index.artists.get(normal)  # a query that is an artist's name means the artist
    if whole_artist is not None and title is not None and title[1] is None:
        title = None
        parsed.title_positions = []
        parsed.concepts = [c for c in parsed.concepts if c.kind != "title"]
    i = 0
    korean_run: list[str] = []

    def flush_korean() -> None:
        if korean_run:
            _korean("".join(korean_run), parsed, index)
            korean_run.clear()

    while i < len(tokens):
        token = tokens[i]
        if _HANGUL.search(token):
            korean_run.append(token)
            i += 1
            continue
        flush_korean()
        if whole_artist is not None:
            parsed.concepts.append(Concept("artist", index.view.index.artist_names[whole_artist], normal))
            break
        taken = 0
        for n in range(min(max(MAX_PHRASE, index.max_artist_words), len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + n])
            if n <= MAX_PHRASE and phrase in _ENGLISH:
                kind, value = _ENGLISH[phrase]
                # A title's own words ("Kings of the Mountain") name no filter, only soft targets.
                if (title is None or kind not in FILTERS) and _add(parsed, index, kind, value, phrase):
                    taken = n
                    break
            if title is not None:
                continue
            if n <= MAX_PHRASE and phrase in index.genres:
                _add(parsed, index, "genre", index.genres[phrase], phrase)
                taken = n
                break
            artist = index.artists.get(phrase)
            if artist is not None and (n >= 2 or (phrase not in STOPWORDS and len(phrase) >= 2)):
                name = index.view.index.artist_names[artist]
                if name not in parsed.values("artist"):
                    parsed.concepts.append(Concept("artist", name, phrase))
                taken = n
                break
        if taken:
            i += taken
            continue
        era = _era_of(token) if title is None else None
        if era is not None:
            _add(parsed, index, "era", era, token)
        elif token in STOPWORDS or len(token) < 2:
            parsed.ignored.append(token)
        else:
            lexical = token in index.postings and title is None
            if lexical:
                parsed.words.append(token)
            if not _by_embedding(parsed, index, token, config) and not lexical and title is None:
                parsed.ignored.append(token)
        i += 1
    flush_korean()
    return parsed


def _by_embedding(parsed: ParsedQuery, index: SearchIndex, word: str, config: RankingConfig) -> bool:
    """An unknown word taken as the nearest concept word, if close enough by sentence embedding."""
    if index.embedder is None or index.concept_vectors is None or not word.isalpha():
        return False
    vector = index.embedder.embed([word])[0]
    sims = index.concept_vectors @ vector
    best = int(np.argmax(sims))
    if float(sims[best]) < config.search_min_similarity:
        return False
    _, (kind, value) = index.concept_names[best]
    return _add(parsed, index, kind, value, word, round(float(sims[best]), 3))
