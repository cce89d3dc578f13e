"""Exploration: a small share of a list's slots for tracks the listener's sources rarely surface,
chosen by a Thompson-sampling bandit over candidate sources and learned from those slots' outcomes.

- **Slots**: `round(k × RankingConfig.explore_share)` (lists of at least `explore_min_k`), spread
  through the list at positions `round((i + 1) · k / (n + 1))`, so an exploration track is neither
  always first nor always last. A slot replaces the lowest-ranked regular pick.
- **Arms**: the sources of `RankingConfig.explore_arms` (`ranking.sources.explore`: `adjacent`,
  `new_genres`, `long_tail`; and `trending`). An arm's candidates are those it proposes that the
  regular list did not pick; its pick for a slot is the best of them by the ranking's own score.
- **Bandit**: per slot, each arm with a candidate left draws θ ~ Beta(1 + successes, 1 + failures)
  and the largest θ wins. Successes are completes and likes of exploration tracks from that arm,
  failures skips and dislikes, over all listeners: the flow counts them (players send the answer's
  `request_id`, which names each exploration slot's arm and a tag of its track,
  `schemas.values.encode_explore`); serving reads them into `Signals.explore_stats`.
- **Deterministic**: the draws use a generator seeded by the listener and their profile version,
  so the same profile and statistics give the same list (and a cached answer is the answer).
- **Reasons** start with "something new": "something new: a step beyond your usual taste",
  "something new: <genre>, a genre new to you", "something new: less known but close to your
  taste", "something new: trending in <genre>".

>>> import numpy as np
>>> stats = {"adjacent": (2.0, 30.0), "long_tail": (30.0, 2.0)}
>>> rng = np.random.default_rng(0)
>>> picks = [thompson(["adjacent", "long_tail"], stats, rng) for _ in range(200)]
>>> picks.count("long_tail") > 190
True
>>> slot_positions(10, 1), slot_positions(20, 2), slot_positions(4, 1)
([5], [7, 13], [2])
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from schemas.tracks import Track

REASONS = {
    "adjacent": "something new: a step beyond your usual taste",
    "long_tail": "something new: less known but close to your taste",
}


def slots(k: int, share: float, min_k: int) -> int:
    if share <= 0 or k < min_k:
        return 0
    return max(1, round(k * min(share, 0.5)))


def slot_positions(k: int, n: int) -> list[int]:
    return [round((i + 1) * k / (n + 1)) for i in range(n)]


def thompson(arms: Sequence[str], stats: Mapping[str, tuple[float, float]], rng: np.random.Generator) -> str:
    """The arm whose Beta(1 + successes, 1 + failures) draw is largest."""
    draws = []
    for arm in arms:
        successes, failures = stats.get(arm, (0.0, 0.0))
        draws.append(rng.beta(1.0 + max(0.0, successes), 1.0 + max(0.0, failures)))
    return arms[int(np.argmax(draws))]


def rng_for(user_id: str, version: int) -> np.random.Generator:
    digest = hashlib.blake2b(f"explore\x1f{user_id}\x1f{version}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def reason(arm: str, track: Track, liked_genres: Mapping[str, float]) -> str:
    if arm == "new_genres":
        new = [g for g in track.genres if liked_genres.get(g, 0.0) == 0.0]
        return f"something new: {new[0]}, a genre new to you" if new else "something new: a genre new to you"
    if arm == "trending":
        if not track.genres:
            return "something new: trending now"
        return f"something new: trending in {track.genres[0]}"
    return REASONS.get(arm, "something new for you")


def outcome_stats(outcomes: Mapping[str, Mapping[str, int]]) -> dict[str, tuple[float, float]]:
    """Arm → (successes, failures) from the flow's counts: completes + likes, skips + dislikes."""
    return {arm: (float(c.get("complete", 0) + c.get("like", 0)),
                  float(c.get("skip", 0) + c.get("dislike", 0))) for arm, c in outcomes.items()}


def choose(
    order: list[int], scores: np.ndarray, arms: Mapping[str, list[int]], k: int, n_slots: int,
    stats: Mapping[str, tuple[float, float]], rng: np.random.Generator,
) -> tuple[list[int], dict[int, str]]:
    """`order` (candidate indices, best first) with `n_slots` of its places given to arms' picks.

    `arms`: arm → candidate indices it proposed. Returns the new order and candidate index → arm."""
    taken = set(order[:k])
    chosen: dict[int, str] = {}
    remaining = {arm: [j for j in sorted(js, key=lambda j: (-scores[j], j)) if j not in taken]
                 for arm, js in arms.items()}
    picks: list[int] = []
    for _ in range(n_slots):
        live = [arm for arm, js in remaining.items() if any(j not in chosen for j in js)]
        if not live:
            break
        arm = thompson(live, stats, rng)
        j = next(j for j in remaining[arm] if j not in chosen)
        chosen[j] = arm
        picks.append(j)
    if not picks:
        return order, {}
    regular = [j for j in order if j not in chosen][: max(0, k - len(picks))]
    out = list(regular)
    for position, j in zip(slot_positions(len(regular) + len(picks), len(picks)), picks, strict=True):
        out.insert(min(position, len(out)), j)
    return out, chosen
