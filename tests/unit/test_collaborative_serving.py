"""Serving's collaborative step (`serving.recommender.Recommender.signals`): raw rows mapped to the
catalog's artist positions give the dict definition's scores, restricted to catalog artists."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from ranking.catalog_view import CatalogView
from ranking.collaborative import ScoreView, artist_scores, seed_artists
from ranking.config import RankingConfig
from ranking.pipeline import RecommendRequest
from schemas.keys import KeyLayout
from schemas.profile_codec import UserProfile
from schemas.tracks import Track
from schemas.values import ARTIST_COUNT_UNITS
from serving.recommender import GlobalModelCache, Recommender, ResponseCache

KEYS = KeyLayout("t")
ROWS = {  # RESP2 replies: members and scores as bytes, strongest first
    "A": [b"Z", b"9", b"B", b"3", b"C", b"2", b"Nobody", b"2"],  # Z (not a catalog artist) tops A's row
    "B": [b"C", b"4", b"D", b"4", b"A", b"1"],
    "C": [b"D", b"2.5", b"E", b"1"],
}
LISTENERS = {b"A": b"10", b"B": b"4", b"C": b"9", b"D": b"16", b"E": b"1", b"Z": b"3", b"Q": b"5"}


class Pipe:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def execute_command(self, *args: Any) -> None:
        self.keys.append(args[1])

    async def execute(self) -> list[Any]:
        by_key = {KEYS.artist_neighbours(a): row for a, row in ROWS.items()}
        return [by_key.get(k, []) for k in self.keys]


class Client:
    def __init__(self) -> None:
        self.listener_reads = 0

    def pipeline(self, transaction: bool = False) -> Pipe:
        return Pipe()

    async def get(self, key: str) -> None:
        return None

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        if key == KEYS.artist_listeners:
            self.listener_reads += 1
            return dict(LISTENERS)
        return {}


def test_signals_equal_the_dict_definition_over_catalog_artists() -> None:
    view = CatalogView.build([Track(track_id=f"t{a}", artist=a) for a in "ABCDEF"])
    profile = UserProfile("u", artists={"A": 3.0, "B": 1.0, "C": 2.0, "Q": 1.5, "F": -1.0})
    recommender = Recommender(KEYS, ResponseCache(size=0), GlobalModelCache())
    client = Client()
    for config in (RankingConfig(), RankingConfig(collaborative_popularity=0.5, collaborative_idf=0.0),
                   RankingConfig(collaborative_shrink=2.0, collaborative_normalise_rows=False)):
        request = RecommendRequest(config=config)
        signals, _ = asyncio.run(recommender.signals(client, view, profile, None, request))
        seeds = seed_artists(profile, view.index, config)
        # Redis holds integer units; the formula's counts are listeners.
        rows = {a: [(m.decode(), float(v) / ARTIST_COUNT_UNITS)
                    for m, v in zip(r[0::2], r[1::2], strict=True)] for a, r in ROWS.items()}
        want, want_via = artist_scores(seeds, rows, {k.decode(): float(v) for k, v in LISTENERS.items()},
                                       config.collaborative_normalise_rows, config.collaborative_idf,
                                       config.collaborative_popularity, config.collaborative_shrink)
        assert isinstance(signals.artist_scores, ScoreView)
        assert "Z" in want and not math.isclose(want["B"], 0.0)
        catalog = view.index.artist_position
        assert dict(signals.artist_scores) == {a: s for a, s in want.items() if a in catalog}
        assert dict(signals.artist_via) == {a: h for a, h in want_via.items() if a in catalog}
    # One space for the view and the listeners read (unchanged on a re-read: kept).
    space = recommender.artist_listeners.space(view.index)
    recommender.artist_listeners._checked = -1e9
    asyncio.run(recommender.signals(client, view, profile, None, RecommendRequest()))
    assert client.listener_reads == 2 and recommender.artist_listeners.space(view.index) is space
