"""Search quality on the catalog's own labels: for each mood, activity, genre, decade and artist query,
the share of the top 10 that satisfies it; exact artist and title lookups; Korean queries.

In process (no stack): the catalog view, the search index (WordLlama embeddings from its wheel) and
`ranking.search` exactly as the API runs them. A query is judged by labels of the catalog:

| group | query | a hit satisfies it when |
|---|---|---|
| mood | "chill songs" (each of the 8 moods) | it is among the 10 % of the catalog that fit the mood's audio target best |
| activity | "music for running" (each of the 7) | the same, for the activity's target |
| genre | "hard rock music" (each genre) | the genre is one of its genres |
| decade | "80s music" | it was released in that decade |
| genre + decade | "90s rock" (big genres × decades with ≥ 30 tracks) | both |
| artist | the name of each of the 50 artists with most tracks | it is by the artist (share of min(10, their songs)) |
| artist lookup | the name of 300 random artists | the first hit is by the artist |
| title lookup | 300 random titles as written (top 1 when only one artist has the title, else in the top 10); and "<title> by <artist>" | that song (any release of it) |
| Korean | "잔잔한 노래", "90년대 록", ... | the mood's top decile, the genre, the decade |

The baseline column ranks the same queries by sentence embedding alone (cosine of the query and
"<title> by <artist> (<genres>)"): what the understanding adds to a plain semantic search.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import command_line
from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from ranking.catalog_view import CatalogView
from ranking.moods import ACTIVITIES, MOODS, mood_fit, resolve_target
from ranking.search import SearchIndex, search, understand
from ranking.search.embedding import load_embedder

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "spotify-songs-tidytuesday" / "spotify_songs.csv"
K = 10
TOP_ARTISTS = 50
LOOKUPS = 300

Judge = Callable[[int], bool]


@dataclass
class Group:
    name: str
    shares: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def _decile(view: CatalogView, name: str) -> Judge:
    target = resolve_target(mood=name)
    assert target is not None
    fit = mood_fit(view.index.features, target)
    fit[~view.index.has_features] = 0.0
    threshold = float(np.quantile(fit[view.index.has_features], 0.9))
    return lambda i: bool(fit[i] >= threshold)


def run(data: Path, seed: int, say: Callable[[str], None]) -> tuple[dict[str, Group], dict[str, float]]:
    tracks = read_spotify_csv(data)
    view = CatalogView.build(tracks)
    started = time.perf_counter()
    embedder = load_embedder()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    index = SearchIndex.build(view, embedder)
    built = time.perf_counter() - started
    say(f"catalog: {len(view)} tracks; model loaded in {loaded:.2f} s; index built in {built:.2f} s")
    catalog = view.index
    years = index.years
    rng = np.random.default_rng(seed)
    groups: dict[str, Group] = {}
    latencies: list[float] = []
    vectors = index.embeddings

    def baseline_top(q: str, n: int) -> list[int]:
        if vectors is None or embedder is None:
            return []
        sims = vectors @ embedder.embed([q])[0]
        return np.argsort(-sims, kind="stable")[:n].tolist()

    def ask(group: str, q: str, judge: Judge, denominator: int = K, first_only: bool = False) -> None:
        started = time.perf_counter()
        parsed = understand(q, index)
        hits = search(index, parsed, K, index_config, None).hits if parsed.intelligible else []
        latencies.append(time.perf_counter() - started)
        top = [h.position for h in hits]
        base = baseline_top(q, K)
        g = groups.setdefault(group, Group(group))
        if first_only:
            g.shares.append(float(bool(top) and judge(top[0])))
            g.baseline.append(float(bool(base) and judge(base[0])))
        else:
            d = max(1, min(K, denominator))
            g.shares.append(min(1.0, sum(judge(i) for i in top) / d))
            g.baseline.append(min(1.0, sum(judge(i) for i in base) / d))
        if len(g.examples) < 2:
            g.examples.append(q)

    from ranking.config import RANKING_CONFIG as index_config

    for name in MOODS:
        ask("mood", f"{name} songs", _decile(view, name))
    activity_words = {"working_out": "working out"}
    for name in ACTIVITIES:
        ask("activity", f"music for {activity_words.get(name, name)}", _decile(view, name))
    genre_sizes = {g: int((catalog.genre_matrix[:, c] > 0).sum()) for g, c in catalog.genre_position.items()}
    for genre in sorted(genre_sizes):
        column = catalog.genre_position[genre]
        ask("genre", f"{genre} music", lambda i, c=column: bool(catalog.genre_matrix[i, c] > 0))
    decades = [d for d in range(1960, 2030, 10) if int(((years >= d) & (years < d + 10)).sum()) >= 30]
    for d in decades:
        ask("decade", f"{d % 100:02d}s music", lambda i, d=d: bool(d <= years[i] < d + 10))
    big = [g for g in ("rock", "pop", "rap", "r&b", "edm", "latin") if g in catalog.genre_position]
    for genre in big:
        column = catalog.genre_position[genre]
        for d in decades:
            member = (catalog.genre_matrix[:, column] > 0) & (years >= d) & (years < d + 10)
            if int(member.sum()) >= 30:
                ask("genre + decade", f"{d % 100:02d}s {genre}", lambda i, m=member: bool(m[i]))
    songs: dict[int, set[str]] = {}
    for i in range(len(catalog)):
        songs.setdefault(int(catalog.artist_of[i]), set()).add(index.base_titles[i])
    by_size = sorted(songs, key=lambda a: (-len(songs[a]), catalog.artist_names[a]))
    for a in by_size[:TOP_ARTISTS]:
        ask("artist", catalog.artist_names[a], lambda i, a=a: int(catalog.artist_of[i]) == a, len(songs[a]))
    named = [a for a in range(len(catalog.artist_names)) if catalog.artist_names[a].strip()]
    for a in rng.choice(named, min(LOOKUPS, len(named)), replace=False).tolist():
        ask("artist lookup (top 1)", catalog.artist_names[a], lambda i, a=a: int(catalog.artist_of[i]) == a,
            first_only=True)
    titled = [i for i, t in enumerate(catalog.tracks) if t.title.strip() and index.base_titles[i]]
    artists_of_title: dict[str, set[int]] = {}
    for i in titled:
        artists_of_title.setdefault(index.base_titles[i], set()).add(int(catalog.artist_of[i]))
    for i in rng.choice(titled, min(LOOKUPS, len(titled)), replace=False).tolist():
        track = catalog.tracks[i]
        same = (index.base_titles[i], int(catalog.artist_of[i]))

        def is_song(j: int, same: tuple[str, int] = same) -> bool:
            return (index.base_titles[j], int(catalog.artist_of[j])) == same

        if len(artists_of_title[index.base_titles[i]]) == 1:
            ask("title lookup, title of one artist (top 1)", track.title, is_song, first_only=True)
        ask("title lookup, any title (in top 10)", track.title, is_song, denominator=1)
        ask("title by artist (top 1)", f"{track.title} by {track.artist}", is_song, first_only=True)
    korean = [("잔잔한 노래", "chill"), ("신나는 노래 틀어줘", "energetic"), ("기분 좋은 노래 틀어줘", "happy"),
              ("슬픈 노래", "melancholic"), ("운동할 때 듣는 노래", "workout"), ("공부할 때 듣는 음악", "studying"),
              ("잘 때 듣는 노래", "sleeping"), ("드라이브 음악", "commuting")]
    for q, name in korean:
        ask("Korean", q, _decile(view, name))
    for q, genre, d in (("90년대 록", "rock", 1990), ("2000년대 힙합", "hip hop", 2000), ("팝 추천해줘", "pop", None)):
        if genre not in catalog.genre_position:
            continue
        column = catalog.genre_position[genre]

        def judge(i: int, c: int = column, d: int | None = d) -> bool:
            return bool(catalog.genre_matrix[i, c] > 0) and (d is None or d <= years[i] < d + 10)

        ask("Korean", q, judge)
    ms = sorted(x * 1000 for x in latencies)
    timing = {"tracks": len(view), "model_load_s": loaded, "index_build_s": built,
              "median_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))], "queries": len(ms)}
    return groups, timing


def report(groups: dict[str, Group], timing: dict[str, float], command: str) -> str:
    lines = [f"$ {command}", "",
             f"search quality, top {K}, {int(timing['tracks'])} tracks ({int(timing['queries'])} queries; "
             f"search median {timing['median_ms']:.1f} ms, p95 {timing['p95_ms']:.1f} ms; model load "
             f"{timing['model_load_s']:.2f} s, index build {timing['index_build_s']:.2f} s)", "",
             "| queries | n | search | embedding only | e.g. |", "|---|---|---|---|---|"]
    for g in groups.values():
        lines.append(f"| {g.name} | {len(g.shares)} | {np.mean(g.shares):.3f} | {np.mean(g.baseline):.3f} | "
                     f"{', '.join(repr(e) for e in g.examples)} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="encore bench search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else DEFAULT_SAMPLE,
                        help="Spotify songs CSV (default: the full 28k catalog when present, else the sample)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line("benchmarks.search_quality", argv)
    if not args.data.exists():
        print(f"no such file: {args.data}", file=sys.stderr)
        return 2
    groups, timing = run(args.data, args.seed, say=lambda s: print(s, flush=True))
    print(report(groups, timing, command), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
