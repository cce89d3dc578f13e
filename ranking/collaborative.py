"""Artist-level collaborative scores of one listener, from the flow's artist memory.

For the listener's seed artists H with weights w_h (`seed_artists`: tanh(affinity / scale) of the
liked artists, plus a boost for the artists of the latest positives, so a listener who switches
taste turns the collaborative scores too) and any artist b:

    score(b) = Σ_{h ∈ H} w_h · N_h^−x · sim(h, b) / max_c sim(h, c),
    sim(h, b) = C(h, b) / (N_h^(1−β) · N_b^β + shrink)

C(h, b) = the listeners whose histories hold both (the row of h), each weighted 1/k^γ by how many
artists k their history held when the pair formed, N = listeners of an artist
(`online_models.artist_memory`); β = ½ and shrink 0 is the cosine, β above ½ the asymmetric cosine
of Aiolli (2013). Cosine keeps popular artists from winning by popularity alone;
dividing each liked artist's row by its best entry gives every liked artist the same vote (an
artist with few listeners has large cosines everywhere and would otherwise shout); summing over the
whole liked set is item-kNN over the listener's history. N_h^−x (`collaborative_idf` = x) makes
a liked artist everybody plays say less about this listener than a rare one does. `via[b]` is the
liked artist that contributed most (for the reason "fans of X play it too").

`scores_at` computes them over arrays (serving: the rows' members mapped to the catalog's artist
positions, `ArtistSpace`); `artist_scores` is the same over dicts.

>>> scores, via = artist_scores({"Muse": 0.8}, {"Muse": [("Blur", 3.0), ("Oasis", 1.0)]},
...                             {"Muse": 4, "Blur": 9, "Oasis": 4})
>>> {k: round(v, 3) for k, v in scores.items()}, via["Blur"]
({'Blur': 0.8, 'Oasis': 0.4}, 'Muse')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ranking.catalog_index import CatalogIndex
from ranking.config import RANKING_CONFIG, RankingConfig
from schemas.event_types import is_positive
from schemas.profile_codec import UserProfile
from schemas.tracks import Track


def seed_artists(profile: UserProfile | None, index: CatalogIndex | None,
                 config: RankingConfig = RANKING_CONFIG) -> dict[str, float]:
    """The listener's seed artists and their weights, strongest first: tanh(affinity / scale) of the
    `collaborative_artists` strongest liked artists, plus `collaborative_session` × s × recency^i
    for the artist of each of the latest `session_positives` positives (i = 0 for the newest), where
    s ramps from 0 to 1 as their novelty (`session_novelty`: how far they sit outside the genres the
    listener usually plays) crosses `collaborative_switch`; by the same ramp the liked artists'
    weights fade out. A listener who switches taste turns the collaborative scores at once; one who
    keeps listening as usual, or wanders among their usual genres, keeps their whole history's."""
    if profile is None:
        return {}
    liked = sorted(((a, v) for a, v in profile.artists.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
    scale = config.collaborative_seed_scale
    weights = {a: math.tanh(v / scale) for a, v in liked[: config.collaborative_artists]}
    if index is not None and config.collaborative_session > 0:
        latest = []
        for item in reversed(profile.recent):
            if len(latest) >= config.session_positives:
                break
            i = index.position.get(item.track_id)
            if i is not None and is_positive(item.type):
                latest.append(index.tracks[i])
        novelty = session_novelty(profile, latest)
        # A clear switch (novelty past `collaborative_switch`) fades the long-term seeds out, so the
        # liked artists of the old taste stop outvoting the new one.
        low, high = config.collaborative_switch
        fade = min(1.0, max(0.0, (novelty - low) / (high - low))) if high > low else float(novelty >= low)
        if fade > 0:
            weights = {a: w * (1.0 - fade) for a, w in weights.items()}
        # Boosted by the switch ramp, not the raw novelty: a listener of many genres has some novelty
        # on almost every play, and boosting it made their collaborative seeds follow noise.
        for rank, track in enumerate(latest):
            if track.artist and fade > 0:
                boost = config.collaborative_session * fade * config.session_recency**rank
                weights[track.artist] = weights.get(track.artist, 0.0) + boost
    return dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])))


def session_novelty(profile: UserProfile, latest: Sequence[Track]) -> float:
    """1 − (mean over the latest positives of their best genre affinity) / the profile's best genre
    affinity, in [0, 1]: 0 when they are in the listener's top genre, 1 in genres never played."""
    top = max((v for v in profile.genres.values() if v > 0), default=0.0)
    if top <= 0 or not latest:
        return 0.0
    fit = [max((max(profile.genres.get(g, 0.0), 0.0) for g in t.genres), default=0.0) / top for t in latest]
    return min(1.0, max(0.0, 1.0 - sum(fit) / len(fit)))


def artist_scores(
    seeds: Mapping[str, float],
    rows: Mapping[str, Sequence[tuple[str, float]]],
    listeners: Mapping[str, float],
    normalise_rows: bool = True,
    idf: float = 0.0,
    popularity: float = 0.5,
    shrink: float = 0.0,
) -> tuple[dict[str, float], dict[str, str]]:
    """`(artist → score, artist → strongest seed artist)`; seed artists themselves included. `idf` is
    the exponent x of the seed weights' N_h^−x; `popularity` the exponent of N_b in the similarity's
    denominator (½: the cosine; more: popular artists count less, Aiolli's asymmetric cosine); `shrink`
    is added to that denominator (pairs seen by few listeners count less).

    The same numbers as `scores_at` (which computes them) over a space of every artist named here;
    the dicts hold the scored artists in the order they first appear in the rows."""
    names = list(dict.fromkeys([*listeners, *(b for row in rows.values() for b, _ in row)]))
    space = ArtistSpace.build(names, {name.encode(): float(n) for name, n in listeners.items()})
    position = space.position
    columns = {h: ([position[b.encode()] for b, _ in row], [float(c) for _, c in row])
               for h, row in rows.items()}
    found = scores_at(space, seeds, columns, names, normalise_rows, idf, popularity, shrink)
    # In the order of their first scored entry (as a loop accumulating into a dict inserts them).
    scored, order = found.scores > 0, []
    for h in found.seeds:
        order.extend(p for p, c in zip(*columns[h], strict=True) if c > 0 and scored[p])
    order = list(dict.fromkeys(order))
    values = found.scores.tolist()
    return ({names[p]: values[p] for p in order},
            {names[p]: found.seeds[found.via[p]] for p in order if found.via[p] >= 0})


@dataclass(frozen=True)
class ArtistSpace:
    """Artists as positions, for `scores_at`: first the `n_catalog` names given (serving: the catalog
    view's `artist_names`, at the same positions), then the other artists that have listeners. Those
    can never be recommended, but they still count as their seed row's best entry, which normalises
    the row, so they are kept here and dropped from the scores."""

    names: list[str]
    position: dict[bytes, int]
    """UTF-8 name → position (Redis replies' members need no decoding)."""
    listeners: np.ndarray
    """(len(names) + 1,) float64 listeners per position, 0 for none; the last entry is always 0, so
    position −1 (a member not in `position`) reads as an artist without listeners."""
    n_catalog: int
    _powers: dict[float | str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, catalog: Sequence[str], listeners: Mapping[bytes, float],
              catalog_position: Mapping[bytes, int] | None = None) -> ArtistSpace:
        """`catalog_position`: `{name.encode(): i}` of `catalog`, when the caller keeps one."""
        position = dict(catalog_position if catalog_position is not None else byte_positions(catalog))
        extra = [name for name in listeners if name not in position]
        position.update(zip(extra, range(len(catalog), len(catalog) + len(extra)), strict=True))
        values = np.zeros(len(position) + 1, dtype=np.float64)
        if listeners:
            at = np.fromiter(map(position.__getitem__, listeners), np.int64, len(listeners))
            values[at] = np.fromiter(listeners.values(), np.float64, len(listeners))
        names = [*catalog, *(name.decode(errors="replace") for name in extra)]
        return cls(names, position, values, len(catalog))

    def positions(self, members: Iterable[bytes]) -> list[int]:
        """Each member's position, −1 for an artist this space does not know."""
        get = self.position.get
        return [get(m, -1) for m in members]

    def power(self, exponent: float) -> np.ndarray:
        """N ** exponent per position (0 where N is 0), with Python's float power, so each entry is
        bit for bit the scalar formula's (numpy's vectorised power may differ in the last bit)."""
        out = self._powers.get(exponent)
        if out is None:
            if len(self._powers) >= 8:
                self._powers.clear()
            out = np.array([n**exponent if n > 0 else 0.0 for n in self.listeners.tolist()])
            self._powers[exponent] = out
        return out

    def root(self) -> np.ndarray:
        """√N per position: correctly rounded, as `math.sqrt`."""
        out = self._powers.get("sqrt")
        if out is None:
            out = self._powers["sqrt"] = np.sqrt(self.listeners)
        return out


def byte_positions(names: Sequence[str]) -> dict[bytes, int]:
    """`{name.encode(): position}` of a list of names."""
    return {name.encode(): i for i, name in enumerate(names)}


@dataclass(frozen=True)
class ArtistScores:
    """Collaborative scores as arrays aligned to `names` (`scores_at`)."""

    scores: np.ndarray
    """(len(names),) float64; 0 for an artist without a score (every score is positive)."""
    via: np.ndarray
    """(len(names),) int64 index into `seeds` of the seed that contributed most; −1 without a score."""
    seeds: list[str]
    names: Sequence[str]
    position: Mapping[str, int]
    """Name → position in `names`."""

    def score_view(self) -> ScoreView:
        return ScoreView(self)

    def via_view(self) -> ViaView:
        return ViaView(self)


class ScoreView(Mapping[str, float]):
    """`ArtistScores` as artist → score for the artists with one (read-only, no copy); array-aware
    consumers take `.arrays` (`score_array`)."""

    def __init__(self, arrays: ArtistScores) -> None:
        self.arrays = arrays

    def __getitem__(self, name: str) -> float:
        p = self.arrays.position.get(name)
        if p is None or not self.arrays.scores[p] > 0:
            raise KeyError(name)
        return float(self.arrays.scores[p])

    def __iter__(self) -> Iterator[str]:
        names = self.arrays.names
        return (names[p] for p in np.flatnonzero(self.arrays.scores > 0).tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self.arrays.scores > 0))


class ViaView(Mapping[str, str]):
    """`ArtistScores` as artist → the seed artist behind its score (read-only, no copy)."""

    def __init__(self, arrays: ArtistScores) -> None:
        self.arrays = arrays

    def __getitem__(self, name: str) -> str:
        p = self.arrays.position.get(name)
        if p is None or self.arrays.via[p] < 0:
            raise KeyError(name)
        return self.arrays.seeds[int(self.arrays.via[p])]

    def __iter__(self) -> Iterator[str]:
        names = self.arrays.names
        return (names[p] for p in np.flatnonzero(self.arrays.via >= 0).tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self.arrays.via >= 0))


def score_array(scores: Mapping[str, float], index: CatalogIndex) -> np.ndarray:
    """(len(index.artist_names),) float64: each catalog artist's score in `scores`, 0 without one.
    The arrays themselves for a `ScoreView` of this index; otherwise looked up by name."""
    if isinstance(scores, ScoreView) and scores.arrays.names is index.artist_names:
        return scores.arrays.scores
    out = np.zeros(len(index.artist_names), dtype=np.float64)
    get = index.artist_position.get
    for name, value in scores.items():
        p = get(name)
        if p is not None:
            out[p] = value
    return out


def scores_at(
    space: ArtistSpace,
    seeds: Mapping[str, float],
    rows: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    names: Sequence[str],
    normalise_rows: bool = True,
    idf: float = 0.0,
    popularity: float = 0.5,
    shrink: float = 0.0,
    position: Mapping[str, int] | None = None,
    count_unit: float = 1.0,
) -> ArtistScores:
    """The module's formula (`artist_scores` for the arguments) over arrays: `rows[h]` is seed h's
    row as (positions in `space`, −1 for unknown members; counts), in the row's order; each count ×
    `count_unit` is listeners (serving passes 1 / `schemas.values.ARTIST_COUNT_UNITS`: Redis holds
    integer units). Scores are kept for the first `space.n_catalog` positions (`names`, with
    `position` its name → position map; default built from `names`).

    Bit for bit the per-entry loop's numbers: each entry's terms are the same float operations
    (powers from `ArtistSpace.power`), and `np.bincount` adds an artist's shares in input order,
    seed after seed, as a loop accumulating into a dict does. Ties for `via` go to the earliest seed."""
    cosine = popularity == 0.5 and not shrink
    used: list[str] = []
    used_weight: list[float] = []
    used_n: list[float] = []
    at: list[int] = []
    counts: list[float] = []
    lengths: list[int] = []
    listeners = space.listeners
    for h, weight in seeds.items():
        row = rows.get(h)
        if weight <= 0 or not row or not row[0]:
            continue
        p = space.position.get(h.encode(), -1)
        n_h = float(listeners[p])
        if n_h <= 0:
            continue
        used.append(h)
        used_weight.append(weight)
        used_n.append(n_h)
        at.extend(row[0])
        counts.extend(row[1])
        lengths.append(len(row[0]))
    n_out = space.n_catalog
    if position is None:
        position = {name: i for i, name in enumerate(names)}
    pos = np.array(at, dtype=np.int64)
    count = np.array(counts, dtype=np.float64)
    if count_unit != 1.0:
        count *= count_unit
    seed = np.repeat(np.arange(len(used)), lengths)
    ok = (count > 0) & (listeners[pos] > 0)
    if not ok.all():
        pos, count, seed = pos[ok], count[ok], seed[ok]
    if not len(pos):
        return ArtistScores(np.zeros(n_out), np.full(n_out, -1, np.int64), [], names, position)
    if cosine:
        # count / √N_b is the cosine times √N_h: the row's scale is applied once per seed.
        c = count / space.root()[pos]
    else:
        seed_part = np.array([n_h ** (1.0 - popularity) for n_h in used_n])
        c = count / (seed_part[seed] * space.power(popularity)[pos] + shrink)
    top = np.zeros(len(used), dtype=np.float64)
    np.maximum.at(top, seed, c)
    factor = np.zeros(len(used), dtype=np.float64)
    for s, best_entry in enumerate(top.tolist()):
        if best_entry <= 0:
            continue  # no entry left: the seed says nothing
        weight, n_h = used_weight[s], used_n[s]
        f = weight / best_entry if normalise_rows else weight / (math.sqrt(n_h) if cosine else 1.0)
        if idf:
            f *= n_h**-idf
        factor[s] = f
    share = factor[seed] * c
    # Partners without a catalog position cannot be recommended: only their row's top counted.
    keep = (pos < n_out) & (share > 0)
    if not keep.all():
        pos, seed, share = pos[keep], seed[keep], share[keep]
    scores = np.bincount(pos, weights=share, minlength=n_out)
    best = np.zeros(n_out, dtype=np.float64)
    np.maximum.at(best, pos, share)
    won = share == best[pos]
    first = np.full(n_out, len(used), dtype=np.int64)
    np.minimum.at(first, pos[won], seed[won])
    via = np.where(first < len(used), first, -1)
    return ArtistScores(scores, via, used, names, position)
