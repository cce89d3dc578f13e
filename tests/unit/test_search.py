"""Search: query understanding (English, Korean, eras, artists, titles), the ranking's filters and
terms, the blend with a listener's taste and exclusions, and the embedding model loaded from its
wheel with the network unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ranking.catalog_view import CatalogView
from ranking.config import RankingConfig
from ranking.pipeline import RecommendRequest
from ranking.search import Listener, SearchIndex, search, understand
from ranking.search.embedding import load_embedder
from ranking.sources.base import Signals
from schemas.events import EventType
from schemas.profile_codec import RecentTrack, UserProfile
from schemas.tracks import Track

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_000_000_000


def _track(tid: str, genre: str, year: int, *, energy: float, acoustic: float, artist: str | None = None,
           title: str | None = None, valence: float = 0.5, popularity: float = 50, tempo: float = 120,
           instrumental: float = 0.0) -> Track:
    return Track(track_id=tid, title=title or f"Song {tid}", artist=artist or f"Artist {tid}", genres=[genre],
                 popularity=popularity, release_year=year, danceability=0.5, energy=energy, valence=valence,
                 acousticness=acoustic, instrumentalness=instrumental, liveness=0.1, speechiness=0.04,
                 tempo=tempo, loudness=-20 + 15 * energy)


def catalog() -> list[Track]:
    rng = np.random.default_rng(3)
    tracks = []
    for i in range(240):
        genre = ("rock", "pop", "folk", "edm")[i % 4]
        energy = float(rng.uniform(0.05, 0.98))
        tracks.append(_track(f"t{i}", genre, int(1965 + (i * 7) % 58), energy=energy,
                             acoustic=float(np.clip(1 - energy + rng.normal(0, 0.1), 0, 1)),
                             valence=float(rng.uniform(0.05, 0.95)), tempo=80 + 90 * energy,
                             popularity=float(rng.uniform(10, 90))))
    tracks += [
        _track("imagine", "rock", 1971, energy=0.3, acoustic=0.8, artist="John Lennon", title="Imagine"),
        _track("imagine2", "pop", 2015, energy=0.6, acoustic=0.2, artist="Someone Else", title="Imagine"),
        _track("q1", "rock", 1975, energy=0.7, acoustic=0.2, artist="Queen",
               title="Bohemian Rhapsody - 2011 Mix"),
        _track("q2", "rock", 1977, energy=0.8, acoustic=0.1, artist="Queen", title="We Will Rock You"),
        _track("q3", "rock", 1980, energy=0.75, acoustic=0.1, artist="Queen",
               title="Another One Bites the Dust"),
        _track("w1", "pop", 2019, energy=0.8, acoustic=0.05, artist="The Weeknd", title="Blinding Lights"),
    ]
    return tracks


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex.build(CatalogView.build(catalog()), load_embedder())


def kinds(text: str, index: SearchIndex) -> list[tuple[str, str]]:
    return [(c.kind, c.value) for c in understand(text, index).concepts]


def test_english_queries_are_read_as_moods_activities_eras_genres_and_feature_words(index) -> None:
    q = understand("calm acoustic songs for studying", index)
    assert q.understood == ["calm", "acoustic", "studying"]
    assert kinds("calm acoustic songs for studying", index) == [
        ("mood", "chill"), ("feature", "acoustic"), ("activity", "studying")]
    assert kinds("upbeat 90s rock", index) == [("feature", "upbeat"), ("era", "1990-1999"), ("genre", "rock")]
    assert kinds("something sad for a rainy night", index) == [
        ("mood", "melancholic"), ("mood", "melancholic"), ("time", "night")]
    assert kinds("music from 1994", index) == [("era", "1994-1994")]
    assert kinds("1980s", index) == kinds("eighties", index) == [("era", "1980-1989")]
    assert kinds("jazz", index) == [], "a genre the catalog does not have is not a concept"


def test_korean_queries_as_players_users_write_them(index) -> None:
    q = understand("기분 좋은 노래 틀어줘", index)
    assert q.understood == ["기분 좋은"] and kinds("기분 좋은 노래 틀어줘", index) == [("mood", "happy")]
    assert kinds("잔잔한 노래", index) == [("mood", "chill")]
    assert kinds("운동할때 듣는 신나는 록", index)[:1] == [("mood", "workout")]
    assert ("genre", "rock") in kinds("운동할때 듣는 신나는 록", index)
    assert kinds("90년대 록", index) == [("era", "1990-1999"), ("genre", "rock")]
    assert kinds("비오는날 듣기 좋은 노래", index) == [("mood", "melancholic")]


def test_artists_and_titles_are_looked_up(index) -> None:
    assert kinds("queen", index) == [("artist", "Queen")]
    assert kinds("songs by the weeknd", index) == [("artist", "The Weeknd")]
    assert kinds("imagine by john lennon", index) == [("title", "imagine"), ("artist", "John Lennon")]
    assert kinds("Bohemian Rhapsody", index) == [("title", "bohemian rhapsody")]


def test_an_empty_or_unintelligible_query_is_not_intelligible(index) -> None:
    assert not understand("", index).intelligible
    assert not understand("   ", index).intelligible
    assert not understand("qwzx vbnm", index).intelligible
    assert not understand("songs please", index).intelligible  # only request words
    assert understand("jogging", index).concepts[0].value == "running", "an unknown word, read by embedding"


def test_genre_era_and_target_shape_the_answer(index) -> None:
    tracks = index.view.index.tracks
    result = search(index, understand("upbeat 90s rock", index), 5)
    assert len(result.hits) == 5 and result.relaxed == []
    for hit in result.hits:
        track = tracks[hit.position]
        assert "rock" in track.genres and 1990 <= track.release_year <= 1999
        assert set(hit.matched) >= {"genre", "era"}
        assert "rock" in hit.reasons and any(r.startswith("released in 199") for r in hit.reasons)
    calm = search(index, understand("calm acoustic music", index), 10).hits
    loud = search(index, understand("loud high energy music", index), 10).hits
    energy = lambda hits: np.mean([tracks[h.position].energy for h in hits])  # noqa: E731
    assert energy(calm) < 0.35 < 0.7 < energy(loud)
    assert calm[0].reasons[0] == "fits “calm” and “acoustic”"


def test_a_filter_that_would_leave_nothing_is_relaxed_and_said(index) -> None:
    result = search(index, understand("edm from 1950", index), 5)
    assert result.relaxed == ["era"] and len(result.hits) == 5
    assert all("edm" in index.view.index.tracks[h.position].genres for h in result.hits)


def test_an_artist_query_gives_their_tracks_and_a_title_query_the_track_first(index) -> None:
    tracks = index.view.index.tracks
    queen = search(index, understand("queen", index), 5).hits
    assert [tracks[h.position].artist for h in queen[:3]] == ["Queen"] * 3  # no artist cap here
    assert queen[0].reasons[0] == "by Queen"
    lennon = search(index, understand("imagine by john lennon", index), 3).hits
    assert lennon[0].track_id == "imagine"
    imagine = search(index, understand("Imagine", index), 3).hits
    assert {imagine[0].track_id, imagine[1].track_id} == {"imagine", "imagine2"}


def listener_profile(view: CatalogView, liked: list[str], disliked: list[str]) -> UserProfile:
    index = view.index
    rows = [index.position[t] for t in liked]
    taste = index.features[rows].mean(axis=0)
    recent = [RecentTrack(t, EventType.LIKE, T0 + i) for i, t in enumerate(liked)]
    recent += [RecentTrack(t, EventType.DISLIKE, T0 + 100 + i) for i, t in enumerate(disliked)]
    genres: dict[str, float] = {}
    for t in liked:
        for g in index.tracks[index.position[t]].genres:
            genres[g] = genres.get(g, 0) + 1
    return UserProfile("fan", version=len(recent), as_of_ms=T0 + 200, taste=[float(x) for x in taste],
                       genres=genres, recent=recent)


def test_a_listener_gets_query_tracks_near_their_taste_and_keeps_every_exclusion(index) -> None:
    view = index.view
    tracks = view.index.tracks
    folk = [t.track_id for t in tracks if "folk" in t.genres and t.acousticness > 0.7][:12]
    anonymous = search(index, understand("workout", index), 10).hits
    disliked = anonymous[0].track_id
    profile = listener_profile(view, folk, [disliked])
    request = RecommendRequest(now_ms=T0 + 300, exclude=frozenset({anonymous[1].track_id}))
    person = Listener(profile, None, Signals(), request)
    personal = search(index, understand("workout", index), 10, listener=person)
    assert personal.personalised
    ids = [h.track_id for h in personal.hits]
    assert disliked not in ids and anonymous[1].track_id not in ids
    assert not set(ids) & set(folk), "tracks the listener just liked are within the repeat cool-down"
    feature = lambda hits, name: np.mean([getattr(tracks[h.position], name) for h in hits])  # noqa: E731
    assert feature(personal.hits, "energy") > 0.6, "still workout tracks"
    assert feature(personal.hits, "acousticness") > feature(anonymous, "acousticness")
    assert sum("folk" in tracks[h.position].genres for h in personal.hits) > sum(
        "folk" in tracks[h.position].genres for h in anonymous)


def test_weights_come_from_the_ranking_config(index) -> None:
    q = understand("upbeat 90s rock", index)
    no_genre = search(index, q, 10, RankingConfig.with_overrides({"search_genre": 0.0}))
    assert all("rock" in index.view.index.tracks[h.position].genres for h in no_genre.hits), "still a filter"
    assert search(index, q, 10).hits[0].score > no_genre.hits[0].score


class CountingEmbedder:
    dim = 4

    def __init__(self) -> None:
        self.texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        out = np.array([[hash(t) % 7 + 1, len(t), 1, 1] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_catalog_embeddings_are_computed_per_catalog_version_reusing_unchanged_tracks() -> None:
    embedder = CountingEmbedder()
    tracks = catalog()
    first = SearchIndex.build(CatalogView.build(tracks), embedder)
    concepts = len(first.concept_names)
    assert embedder.texts == len(tracks) + concepts
    changed = [*tracks[:-1], tracks[-1].model_copy(update={"title": "Renamed"}),
               _track("new", "pop", 2020, energy=0.5, acoustic=0.5)]
    embedder.texts = 0
    second = SearchIndex.build(CatalogView.build(changed), embedder, previous=first)
    assert embedder.texts == 2 + concepts, "only the renamed and the new track are embedded again"
    fresh = SearchIndex.build(CatalogView.build(changed), CountingEmbedder())
    assert np.array_equal(second.embeddings, fresh.embeddings)
    q = understand("imagine", second)
    before = embedder.texts
    search(second, q, 5)
    search(second, q, 5)
    assert embedder.texts - before == 1, "a query is embedded once; the catalog never per request"


def test_the_embedding_model_loads_from_its_wheel_with_the_network_unreachable(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network unreachable (test)")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from ranking.search.embedding import WordLlamaEmbedder
        embedder = WordLlamaEmbedder.from_package()
        v = embedder.embed(["calm acoustic songs for studying", "quiet acoustic music", "loud techno"])
        assert v.shape == (3, 256), v.shape
        assert v[0] @ v[1] > v[0] @ v[2]
        print("ok")
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT), "NO_PROXY": "*"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert not (tmp_path / ".cache" / "wordllama").exists(), "nothing was downloaded to a cache"
