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
from typing import overload

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


class CandidateTable(Sequence[Candidate]):
    """Candidates as arrays: one row per candidate, one column per source that proposed any.

    What the pipeline scores and picks from (`merge_candidates`' answer). Scoring reads whole
    columns (positions, each source's scores); a `Candidate` is built only for a row asked for by
    index (the picked few), so a request makes no Python object per candidate. As a sequence it
    is the list of `Candidate`s it stands for (iteration, equality)."""

    def __init__(self, positions: np.ndarray, scores: dict[str, np.ndarray] | None = None,
                 proposed: dict[str, np.ndarray] | None = None, via: list[str | None] | None = None) -> None:
        self.positions = np.asarray(positions, dtype=np.int64)
        self.scores: dict[str, np.ndarray] = scores if scores is not None else {}
        """Source → (m,) float64, that source's score for each row (0.0 where it did not propose it).
        A row's `Candidate.sources` lists its sources in this column order (what reads them sorts
        them or looks them up)."""
        self.proposed: dict[str, np.ndarray] = proposed if proposed is not None else {}
        """Source → (m,) bool: the rows that source proposed."""
        self.via: list[str | None] = via if via is not None else [None] * len(self.positions)
        self._slot: np.ndarray | None = None

    @classmethod
    def of(cls, picked: Sequence[int], sources: Sequence[SourceCandidates],
           overwrite: bool = False) -> CandidateTable:
        """Rows for the positions `picked` (no repeats), with every source's score for them.

        A source's score goes to the rows it proposed that no earlier source of the same name
        did (`overwrite`: the later one wins); `via` is the first one any source gives a row."""
        table = cls(np.array(picked, dtype=np.int64))
        for src in sources:
            table.add(src, overwrite)
        return table

    @classmethod
    def from_candidates(cls, candidates: Sequence[Candidate]) -> CandidateTable:
        if isinstance(candidates, CandidateTable):
            return candidates
        table = cls(np.array([c.position for c in candidates], dtype=np.int64),
                    via=[c.via for c in candidates])
        for j, candidate in enumerate(candidates):
            for name, value in candidate.sources.items():
                table._set(j, name, value)
        return table

    def add(self, src: SourceCandidates, overwrite: bool = False) -> None:
        """`src`'s scores for the rows it proposed (see `of`)."""
        m = len(self.positions)
        if m == 0 or len(src.positions) == 0:
            return
        rows = self._rows_of(src.positions)
        hit = np.flatnonzero(rows >= 0)
        if len(hit) == 0:
            return
        rows = rows[hit]
        if len(rows) > 1 and np.bincount(rows).max() > 1:
            # A repeated position (not what a source returns): element by element, in order.
            for k, j in zip(hit.tolist(), rows.tolist(), strict=True):
                if overwrite or not self._has(j, src.source):
                    self._set(j, src.source, float(src.scores[k]))
                    if src.via is not None and self.via[j] is None:
                        self.via[j] = src.via[k]
            return
        name = src.source
        values = self.scores.get(name)
        if values is None:
            values = self.scores[name] = np.zeros(m, dtype=np.float64)
            self.proposed[name] = np.zeros(m, dtype=bool)
        mask = self.proposed[name]
        if not overwrite:
            fresh = ~mask[rows]
            hit, rows = hit[fresh], rows[fresh]
        values[rows] = src.scores[hit]
        mask[rows] = True
        if src.via is not None:
            via = self.via
            for k, j in zip(hit.tolist(), rows.tolist(), strict=True):
                if via[j] is None:
                    via[j] = src.via[k]

    def _rows_of(self, positions: np.ndarray) -> np.ndarray:
        """The row of each catalog position, −1 where none, through a dense lookup (catalog
        positions are small ints) built once per table: a position past the largest row's maps
        to the sentinel at the end."""
        if self._slot is None:
            top = int(self.positions.max()) + 1
            self._slot = np.full(top + 1, -1, dtype=np.int32)
            self._slot[self.positions] = np.arange(len(self.positions), dtype=np.int32)
        top = len(self._slot) - 1
        return self._slot[np.minimum(positions, top)]

    def append(self, position: int) -> int:
        """A new row (no source yet); its index."""
        self._slot = None
        self.positions = np.append(self.positions, np.int64(position))
        for name in self.scores:
            self.scores[name] = np.append(self.scores[name], 0.0)
            self.proposed[name] = np.append(self.proposed[name], False)
        self.via.append(None)
        return len(self.positions) - 1

    def _has(self, j: int, name: str) -> bool:
        mask = self.proposed.get(name)
        return mask is not None and bool(mask[j])

    def _set(self, j: int, name: str, value: float) -> None:
        if name not in self.scores:
            self.scores[name] = np.zeros(len(self.positions), dtype=np.float64)
            self.proposed[name] = np.zeros(len(self.positions), dtype=bool)
        self.scores[name][j] = value
        self.proposed[name][j] = True

    def setdefault(self, j: int, name: str, value: float) -> None:
        """Row j's score from source `name`, unless that source already gave one."""
        if not self._has(j, name):
            self._set(j, name, value)

    def has(self, name: str) -> np.ndarray:
        """(m,) bool: the rows source `name` proposed."""
        mask = self.proposed.get(name)
        return mask if mask is not None else np.zeros(len(self.positions), dtype=bool)

    def column(self, name: str) -> np.ndarray:
        """(m,) float64: source `name`'s scores, 0.0 where it did not propose the row."""
        values = self.scores.get(name)
        return values if values is not None else np.zeros(len(self.positions), dtype=np.float64)

    def sources_of(self, j: int) -> dict[str, float]:
        return {name: float(values[j]) for name, values in self.scores.items() if self.proposed[name][j]}

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, j: int) -> Candidate: ...

    @overload
    def __getitem__(self, j: slice) -> list[Candidate]: ...

    def __getitem__(self, j: int | slice) -> Candidate | list[Candidate]:
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(len(self)))]
        if j < 0:
            j += len(self)
        if not 0 <= j < len(self):
            raise IndexError(j)
        return Candidate(int(self.positions[j]), self.sources_of(j), self.via[j])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CandidateTable({list(self)!r})"




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
) -> CandidateTable:
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
    # Rounds over the sources that can still take (quota left, items left): a source drops out
    # once it cannot, instead of being visited again every round.
    active = [s for s in range(len(sources)) if quota[s] > 0 and lengths[s] > 0]
    while active and len(picked) < limit:
        still = []
        for s in active:
            if len(picked) >= limit:
                break
            items, cursor, n = lists[s], cursors[s], lengths[s]
            while cursor < n:
                i = items[cursor]
                cursor += 1
                if i in seen:
                    continue
                seen.add(i)
                taken[s] += 1
                picked.append(i)
                break
            cursors[s] = cursor
            if taken[s] < quota[s] and cursor < n:
                still.append(s)
        active = still
    return CandidateTable.of(picked, sources)


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
    table = CandidateTable.from_candidates(merged)
    for name, weight in weights.items():
        raw = np.maximum(table.column(name), 0.0)
        top = raw.max() if len(raw) else 0.0
        out[name] = (weight * raw / top if top > 0 else np.zeros(len(raw))).astype(np.float32)
    return out


