"""Candidates: what a source proposes (`SourceCandidates`) and the merged list the ranker scores.

Each source (`ranking.sources`) returns catalog positions with its own scores, best first;
`merge_candidates` interleaves them with per-source quotas, drops duplicates, and remembers every
source that proposed each candidate (for the source terms of the score and for reasons).

>>> import numpy as np
>>> taste = SourceCandidates("taste", np.array([0, 1]), np.array([0.9, 0.8], np.float32))
>>> co = SourceCandidates("co_listening", np.array([2, 1]), np.array([3.0, 1.0], np.float32),
...                       via=["a", "a"])
>>> merged = merge_candidates([taste, co], quotas={"taste": 1, "co_listening": 2})
>>> [(c.position, sorted(c.sources)) for c in merged]
[(0, ['taste']), (2, ['co_listening']), (1, ['co_listening', 'taste'])]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ranking.config import DEFAULT_QUOTAS, RANKING_CONFIG

SOURCE_TERMS: tuple[str, ...] = ("co_listening", "trending")
"""Sources whose score becomes a term of the ranking score (weight = the config's field of that
name). Taste, popularity and seeds are already terms of their own, so being proposed by them adds
nothing."""


@dataclass(frozen=True)
class SourceCandidates:
    source: str
    positions: np.ndarray
    """(m,) int64 catalog positions, best first, no repeats."""
    scores: np.ndarray
    """(m,) float32, the source's own scale, non-increasing."""
    via: list[str] | None = None
    """Co-listening: for each candidate, the seed track that contributed most."""

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class Candidate:
    position: int
    sources: dict[str, float] = field(default_factory=dict)
    """Every source that proposed this track, with that source's score for it."""
    via: str | None = None
    """The recent positive whose co-listening neighbour this is, when it is one."""




def no_candidates(source: str) -> SourceCandidates:
    return SourceCandidates(source, np.zeros(0, np.int64), np.zeros(0, np.float32))


def ranked_candidates(source: str, scores: Mapping[int, float], n: int,
                      via: Mapping[int, str] | None = None) -> SourceCandidates:
    """A source's answer from position → score: the n best, ties by position."""
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[: max(n, 0)]
    return SourceCandidates(
        source,
        np.array([i for i, _ in ranked], dtype=np.int64),
        np.array([s for _, s in ranked], dtype=np.float32),
        via=[via[i] for i, _ in ranked] if via is not None else None,
    )


def merge_candidates(
    sources: Sequence[SourceCandidates],
    quotas: Mapping[str, int] | None = None,
    limit: int = RANKING_CONFIG.merge_limit,
    exclude: Collection[int] = (),
) -> list[Candidate]:
    """Interleave the sources (round-robin by rank, in the order given), each up to its quota.

    A track proposed by several sources appears once, at its earliest turn, and lists every source
    that proposed it (also those past their quota) with their scores. Duplicates and excluded
    positions do not use up a quota. A source missing from `quotas` uses `DEFAULT_QUOTAS` (or
    its full length).
    """
    quotas = dict(DEFAULT_QUOTAS if quotas is None else quotas)
    lists = [src.positions.tolist() for src in sources]
    lengths = [len(items) for items in lists]
    quota = [quotas.get(s.source, DEFAULT_QUOTAS.get(s.source, n))
             for s, n in zip(sources, lengths, strict=True)]
    cursors = [0] * len(sources)
    taken = [0] * len(sources)
    seen: set[int] = set(exclude)
    picked: list[int] = []
    while len(picked) < limit:
        progressed = False
        for s, items in enumerate(lists):
            if len(picked) >= limit:
                break
            cursor, n = cursors[s], lengths[s]
            while taken[s] < quota[s] and cursor < n:
                i = items[cursor]
                cursor += 1
                if i in seen:
                    continue
                seen.add(i)
                taken[s] += 1
                picked.append(i)
                progressed = True
                break
            cursors[s] = cursor
        if not progressed:
            break
    # Every source that proposed a picked track, with its score (and the first `via`), in source order.
    by_position = {i: Candidate(i) for i in picked}
    for src, items in zip(sources, lists, strict=True):
        name, scores, via = src.source, src.scores.tolist(), src.via
        for j, i in enumerate(items):
            candidate = by_position.get(i)
            if candidate is not None and name not in candidate.sources:
                candidate.sources[name] = scores[j]
                if via is not None and candidate.via is None:
                    candidate.via = via[j]
    merged = [by_position[i] for i in picked]
    return merged


def source_terms(
    merged: Sequence[Candidate], weights: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """Per source in `weights` (default: `SOURCE_TERMS` at the config's weights): an (m,) score term
    for each candidate.

    >>> merged = [Candidate(0, {"co_listening": 2.0}), Candidate(1, {"taste": 0.9}),
    ...           Candidate(2, {"co_listening": 1.0, "trending": 5.0})]
    >>> {k: [round(float(x), 3) for x in v] for k, v in source_terms(merged).items()}
    {'co_listening': [0.3, 0.0, 0.15], 'trending': [0.0, 0.0, 0.15]}
    """
    if weights is None:
        weights = {name: getattr(RANKING_CONFIG, name) for name in SOURCE_TERMS}
    out: dict[str, np.ndarray] = {}
    for name, weight in weights.items():
        raw = np.fromiter((c.sources.get(name, 0.0) for c in merged), dtype=np.float64, count=len(merged))
        raw = np.maximum(raw, 0.0)
        top = raw.max() if len(raw) else 0.0
        out[name] = (weight * raw / top if top > 0 else np.zeros(len(raw))).astype(np.float32)
    return out


