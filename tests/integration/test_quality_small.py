"""The quality benchmark (`encore bench quality`, benchmarks/quality.py), small, on the shipped sample.

The same code as the full run: its own Tansu broker and redis-server, `encore flow` and `encore serve`
subprocesses, events through Kafka, recommendations over HTTP. The shipped sample
(encore/data/spotify_sample.csv, 600 tracks) keeps every row of its tracks, but its playlists are
small (none has 20 distinct tracks, the largest 9), so the threshold is lowered to 5 distinct tracks
(15 playlists: 2 replayed, 3 to 7 held out) and adaptation is measured after 1 and 2 events of B
(a 5-track playlist replays 2). See docs/quality.md.

What is asserted held with a wide margin in every run so far (seeds 1, 2, 3, 7): Encore's HR@10 and
NDCG@10 beat global popularity's (0.53-0.87 vs 0.00-0.07 HR@10), and two events of B move Encore's
top 10 toward B's genre, far from the pre-switch ranking (0.29-0.42 vs at most 0.013).
"""

from __future__ import annotations

import pytest

from benchmarks.quality import run
from encore.catalog_csv import DEFAULT_SAMPLE

pytestmark = pytest.mark.integration


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_quality_small_on_the_sample() -> None:
    results = run(DEFAULT_SAMPLE, playlists=40, seed=7, k=10, min_tracks=5, steps=(1, 2), progress=False,
                  say=lambda _line: None)

    assert results.listeners >= 10, "the sample should hold at least 10 playlists of 5+ tracks"
    assert results.adapting == results.listeners
    encore, popular = results.continuation["Encore"], results.continuation["global popularity"]
    assert len(encore["hr"]) == results.listeners
    assert mean(encore["hr"]) > mean(popular["hr"]) + 0.2
    assert mean(encore["ndcg"]) > mean(popular["ndcg"])

    after_two = results.adaptation[2]
    assert mean(after_two["Encore"]["b_genre"]) > mean(after_two["Encore before the switch"]["b_genre"]) + 0.1
    # Each method's lists are k long and every share is a fraction.
    for step in results.adaptation.values():
        for method in step.values():
            assert all(0.0 <= v <= 1.0 for v in method["b_tracks"] + method["b_genre"])
