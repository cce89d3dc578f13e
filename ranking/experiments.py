"""A/B experiments of ranking variants: named experiments, variants as `RankingConfig` overrides with
traffic shares, a stable assignment of listeners, and the report of their live outcomes.

Configured as JSON (`ENCORE_EXPERIMENTS`):

    [{"name": "artist-weight",
      "variants": [{"name": "control", "share": 0.5},
                   {"name": "heavy", "share": 0.5, "overrides": {"artist": 1.6}}]}]

- **Assignment**: `u = blake2b(experiment name + user_id)` read as a number in [0, 1); the variants
  take consecutive slices of their shares, in order. The same listener gets the same variant in
  every replica and after every restart; a different experiment name reshuffles them. Shares may
  add up to less than 1: the rest of the listeners are not in the experiment (the defaults).
- **Several experiments** may run at once; a listener's config is the base with each experiment's
  variant overrides applied in the configured order.
- **Report** (`report`): per variant, the outcomes the flow counted for answers ranked with it
  (`schemas.values.EXPERIMENT_COUNTERS`), **recommended plays** = max(play events, completes +
  skips) (players that send a play before its outcome and those that send only outcomes count the
  same), and the rates of completes, likes, skips, early skips and dislikes per play with 95 %
  Wilson intervals; the verdict compares the completion rate (two-proportion z-test) and names the
  better variant when p < 0.05.

>>> experiments = parse_experiments('[{"name": "w", "variants": [{"name": "a", "share": 0.5},'
...                                 ' {"name": "b", "share": 0.5, "overrides": {"artist": 1.6}}]}]')
>>> [v.name for _, v in assign(experiments, "ana")] == [v.name for _, v in assign(experiments, "ana")]
True
>>> sorted({assign(experiments, f"user{i}")[0][1].name for i in range(50)})
['a', 'b']
>>> config_for(RANKING_CONFIG, [(experiments[0], experiments[0].variants[1])]).artist
1.6
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ranking.config import RANKING_CONFIG, RankingConfig
from schemas.values import EXPERIMENT_COUNTERS, NAME_PATTERN

Z95 = 1.959963984540054
RATES = ("complete", "like", "skip", "early_skip", "dislike")
PRIMARY = "complete"
"""The rate the verdict compares: completed plays per recommended play."""


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    overrides: Mapping[str, Any] = field(default_factory=dict)
    config: RankingConfig = RANKING_CONFIG
    """The base config with `overrides` (for one experiment alone)."""


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[Variant, ...]

    def position(self, user_id: str) -> float:
        """The listener's place in [0, 1) for this experiment (stable, uniform)."""
        digest = hashlib.blake2b(f"{self.name}\x1f{user_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def variant_of(self, user_id: str) -> Variant | None:
        u = self.position(user_id)
        edge = 0.0
        for variant in self.variants:
            edge += variant.share
            if u < edge:
                return variant
        return None


class ExperimentConfigError(ValueError):
    pass


def parse_experiments(text: str | Sequence[Mapping[str, Any]],
                      base: RankingConfig = RANKING_CONFIG) -> tuple[Experiment, ...]:
    """Experiments from their JSON (or already parsed) form; every mistake is an error that says where."""
    data = json.loads(text) if isinstance(text, str) else text
    if not isinstance(data, list):
        raise ExperimentConfigError("a JSON list of experiments is expected")
    out: list[Experiment] = []
    for i, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            raise ExperimentConfigError(f"experiment #{i} must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name) or name.startswith("_"):
            raise ExperimentConfigError(f"experiment #{i}: name must be 1-40 letters, digits, '_' or '-', "
                                        "not starting with '_'")
        variants = entry.get("variants")
        if not isinstance(variants, list) or len(variants) < 2:
            raise ExperimentConfigError(f"experiment {name!r} needs at least two variants")
        parsed: list[Variant] = []
        for j, v in enumerate(variants):
            vname = v.get("name") if isinstance(v, Mapping) else None
            if not isinstance(vname, str) or not NAME_PATTERN.match(vname):
                raise ExperimentConfigError(f"experiment {name!r}, variant #{j}: name must be 1-40 letters, "
                                            "digits, '_' or '-'")
            share = v.get("share")
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
                raise ExperimentConfigError(f"experiment {name!r}, variant {vname!r}: "
                                            "share must be in (0, 1]")
            overrides = v.get("overrides", {})
            if not isinstance(overrides, Mapping):
                raise ExperimentConfigError(f"experiment {name!r}, variant {vname!r}: "
                                            "overrides must be an object")
            try:
                config = RankingConfig.with_overrides(overrides, base)
            except (ValueError, TypeError) as exc:
                raise ExperimentConfigError(f"experiment {name!r}, variant {vname!r}: {exc}") from None
            parsed.append(Variant(vname, float(share), dict(overrides), config))
        if len({v.name for v in parsed}) != len(parsed):
            raise ExperimentConfigError(f"experiment {name!r}: variant names must be unique")
        if sum(v.share for v in parsed) > 1 + 1e-9:
            raise ExperimentConfigError(f"experiment {name!r}: the shares add up to more than 1")
        out.append(Experiment(name, tuple(parsed)))
    if len({e.name for e in out}) != len(out):
        raise ExperimentConfigError("experiment names must be unique")
    return tuple(out)


Assignment = list[tuple[Experiment, Variant]]


def assign(experiments: Sequence[Experiment], user_id: str | None) -> Assignment:
    """The listener's variant in each experiment they are in (none without a user id)."""
    if user_id is None:
        return []
    out = []
    for experiment in experiments:
        variant = experiment.variant_of(user_id)
        if variant is not None:
            out.append((experiment, variant))
    return out


_combined: dict[tuple[tuple[str, str], ...], RankingConfig] = {}


def config_for(base: RankingConfig, assignment: Assignment) -> RankingConfig:
    """The config a listener's answers are ranked with: one object per combination of variants (so
    the answer cache's digest of it is computed once)."""
    if not assignment:
        return base
    if len(assignment) == 1:
        return assignment[0][1].config  # computed from the deployment's base when parsed
    key = tuple((e.name, v.name) for e, v in assignment)
    config = _combined.get(key)
    if config is None:
        config = base
        for _, variant in assignment:
            config = RankingConfig.with_overrides(variant.overrides, config)
        if len(_combined) > 256:
            _combined.clear()
        _combined[key] = config
    return config


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion.

    >>> [round(x, 3) for x in wilson(30, 100)]
    [0.219, 0.396]
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(a: int, n_a: int, b: int, n_b: int) -> float:
    """Two-sided p-value of the z-test that two proportions are equal.

    >>> round(two_proportion_p(60, 100, 40, 100), 4)
    0.0047
    """
    if n_a <= 0 or n_b <= 0:
        return 1.0
    pooled = (a + b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0
    z = abs(a / n_a - b / n_b) / se
    return math.erfc(z / math.sqrt(2))


def plays_of(counts: Mapping[str, int]) -> int:
    return max(counts.get("play", 0), counts.get("complete", 0) + counts.get("skip", 0))


def report(experiment: Experiment, outcomes: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Per variant: counts, recommended plays, each rate with its 95 % interval; and the verdict."""
    variants = []
    for variant in experiment.variants:
        counts = {c: int(outcomes.get(variant.name, {}).get(c, 0)) for c in EXPERIMENT_COUNTERS}
        plays = plays_of(counts)
        rates = {}
        for name in RATES:
            low, high = wilson(min(counts[name], plays), plays) if plays else (None, None)
            rates[name] = {"rate": round(counts[name] / plays, 4) if plays else None,
                           "ci95": [round(low, 4), round(high, 4)] if plays else None}
        variants.append({"name": variant.name, "share": variant.share, "overrides": dict(variant.overrides),
                         "config_digest": variant.config.digest, "counts": counts, "plays": plays,
                         "rates": rates})
    return {"name": experiment.name, "primary_metric": f"{PRIMARY} rate (completes per recommended play)",
            "variants": variants, "verdict": _verdict(variants)}


def _verdict(variants: list[dict[str, Any]]) -> dict[str, Any]:
    played = [v for v in variants if v["plays"] > 0]
    if len(played) < 2:
        return {"winner": None, "significant": False, "p_value": None,
                "summary": "not enough data: fewer than two variants have recommended plays"}
    ranked = sorted(played, key=lambda v: -(v["counts"][PRIMARY] / v["plays"]))
    best = ranked[0]
    p_values = [two_proportion_p(best["counts"][PRIMARY], best["plays"], o["counts"][PRIMARY], o["plays"])
                for o in ranked[1:]]
    p = max(p_values)
    rate = best["counts"][PRIMARY] / best["plays"]
    others = ", ".join(f"{o['name']} {o['counts'][PRIMARY] / o['plays']:.3f}" for o in ranked[1:])
    significant = p < 0.05
    if significant:
        summary = f"{best['name']} is better: completion rate {rate:.3f} vs {others} (p = {p:.2g})"
    else:
        summary = (f"no significant difference yet: {best['name']} leads with {rate:.3f} vs {others} "
                   f"(p = {p:.2g})")
    return {"winner": best["name"] if significant else None, "leading": best["name"],
            "significant": significant, "p_value": p, "summary": summary}
