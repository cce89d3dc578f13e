"""Live per-track rates as one array aligned to a catalog view's rows.

`ItemRates.table[i]` is `(like rate, skip rate, decayed listens)` of the track at catalog position
`i`, as the flow last published them (`schemas.values.decode_rates`), NaN for a track the stream has
no statistics for. Serving keeps one current per catalog view (`serving/item_stats.py`), so scoring
gathers its candidates' rows with one index instead of reading and parsing them per request.

>>> from ranking.catalog_index import CatalogIndex
>>> from schemas.tracks import Track
>>> index = CatalogIndex.build([Track(track_id=t) for t in "abc"])
>>> rates = ItemRates.from_mapping(index, {"b": (0.5, 0.25, 4.0), "zz": (1.0, 0.0, 1.0)})
>>> rates.table[index.position["b"]].tolist(), bool(np.isnan(rates.table[index.position["a"]]).all())
([0.5, 0.25, 4.0], True)
>>> rates.set([index.position["a"]], [(0.1, 0.2, 3.0)]); rates.known
2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ranking.catalog_index import CatalogIndex

RATE_COLUMNS = 3
"""like rate, skip rate, decayed listens."""

Rate = tuple[float, float, float]


@dataclass(frozen=True)
class ItemRates:
    table: np.ndarray
    """(n, 3) float64, one row per catalog position; NaN rows: no statistics."""

    @classmethod
    def empty(cls, n: int) -> ItemRates:
        return cls(np.full((n, RATE_COLUMNS), np.nan, dtype=np.float64))

    @classmethod
    def from_mapping(cls, index: CatalogIndex, rates: Mapping[str, Rate]) -> ItemRates:
        """Rates by track id (ids the catalog does not know are left out)."""
        out = cls.empty(len(index))
        found = [(index.position[t], r) for t, r in rates.items() if t in index.position]
        out.set([i for i, _ in found], [r for _, r in found])
        return out

    def __len__(self) -> int:
        return len(self.table)

    @property
    def known(self) -> int:
        """Tracks with statistics."""
        return int((~np.isnan(self.table[:, 0])).sum())

    def set(self, positions: Sequence[int], rates: Sequence[Rate | None]) -> None:
        """Overwrite rows in place (None: the track has no statistics any more)."""
        if not positions:
            return
        self.table[np.asarray(positions, dtype=np.int64)] = [
            r if r is not None else (np.nan,) * RATE_COLUMNS for r in rates]

    def extended(self, n: int) -> ItemRates:
        """The same rows followed by empty ones up to n (a catalog that grew at its end)."""
        if n <= len(self):
            return self
        return ItemRates(np.concatenate([self.table, ItemRates.empty(n - len(self)).table]))


def candidate_rates(
    positions: np.ndarray, track_ids: Sequence[str], table: ItemRates | None,
    rates: Mapping[str, Rate],
) -> np.ndarray | None:
    """(m, 3) rates of the candidates (NaN rows: none), or None for "no statistics were read".

    From the catalog-aligned `table` when serving holds one (None when no candidate has a row, as
    the read of the candidates' rates it replaces would have come back empty), else from `rates`
    by id (None when it is empty)."""
    if table is not None:
        out = table.table[positions]
        return None if len(out) == 0 or np.isnan(out[:, 0]).all() else out
    if not rates:
        return None
    out = np.full((len(track_ids), RATE_COLUMNS), np.nan, dtype=np.float64)
    for j, track_id in enumerate(track_ids):
        rate = rates.get(track_id)
        if rate is not None:
            out[j] = rate
    return out
