"""Moods and activities as audio-feature targets, a time-of-day default, and the discovery knob.

A mood or an activity is a **target**: for some of the nine features (in the [0, 1] scaled space of
`Track.feature_vector()`: tempo = BPM / 250, loudness = (dB + 60) / 60), a target value and a weight
(features not listed have weight 0). A track's **fit** to a target is

    fit = exp(−d² / (2 · 0.2²)),   d² = Σ_f w_f (x_f − t_f)² / Σ_f w_f

so a track 0.2 away on every weighted feature fits 0.61, one 0.4 away fits 0.14. Given both a mood
and an activity, their targets merge: per feature, weights add and the target is the
weight-averaged value. With neither, the request's local hour picks a gentle time-of-day target.

| target | dance | energy | valence | acoustic | instrumental | speech | tempo (BPM) | loudness (dB) |
|---|---|---|---|---|---|---|---|---|
| mood `energetic` | .65 (.4) | .85 (1) | .60 (.2) | | | | .52 = 130 (.4) | .92 = −5 (.5) |
| mood `chill` | | .30 (1) | .50 (.2) | .60 (.5) | | .05 (.3) | .38 = 95 (.4) | .80 = −12 (.4) |
| mood `happy` | .70 (.5) | .70 (.5) | .85 (1) | | | | | |
| mood `melancholic` | | .35 (.6) | .20 (1) | .55 (.4) | | | .38 = 95 (.2) | |
| mood `party` | .80 (1) | .85 (.7) | .70 (.4) | | | | .50 = 125 (.3) | .92 = −5 (.4) |
| mood `focused` | | .40 (.4) | | .50 (.2) | .70 (1) | .03 (.7) | | |
| mood `romantic` | .55 (.3) | .40 (.6) | .55 (.4) | .50 (.4) | | .04 (.3) | .40 = 100 (.3) | |
| mood `workout` | .70 (.4) | .90 (1) | | | | | .55 = 138 (.7) | .92 = −5 (.4) |
| activity `running` | .65 (.3) | .90 (1) | .60 (.2) | | | | .66 = 165 (.9) | |
| activity `studying` | | .35 (.5) | | | .70 (1) | .03 (.8) | | |
| activity `commuting` | .60 (.3) | .60 (.4) | .60 (.3) | | | | | |
| activity `sleeping` | | .15 (1) | | .80 (.6) | .60 (.5) | .03 (.4) | .32 = 80 (.4) | .67 = −20 (.6) |
| activity `cooking` | .60 (.5) | .55 (.4) | .70 (.6) | .40 (.2) | | | | |
| activity `working_out` | = mood `workout` | | | | | | | |
| activity `relaxing` | | .30 (1) | .55 (.3) | .60 (.5) | | | .38 = 95 (.3) | .80 = −12 (.3) |
| time `morning` (5–11 h) | | .55 (.5) | .65 (.5) | .40 (.2) | | | | |
| time `afternoon` (12–16 h) | .60 (.3) | .65 (.5) | | | | | | |
| time `evening` (17–21 h) | | .50 (.4) | .55 (.2) | .45 (.2) | | | | |
| time `night` (22–4 h) | | .30 (.6) | | .55 (.3) | | | | .75 = −15 (.3) |

(value (weight); dance = danceability, acoustic = acousticness, instrumental = instrumentalness,
speech = speechiness; liveness has weight 0 everywhere.) Names are matched lower-cased, with spaces and
hyphens as underscores, and through `ALIASES` ("gym" → workout, "sad" → melancholic, ...). The
score term is `RankingConfig.mood` × fit for an explicit mood or activity, `RankingConfig.time_of_day`
× fit for the time-of-day default: the hour is the listener's local hour when the app sends
it; the server only knows UTC.

**Discovery.** `discovery` ∈ [0, 1] adds

    discovery · DISCOVERY_WEIGHT · (1 − popularity) · taste_fit²

(`RankingConfig.discovery`, popularity in [0, 1], taste_fit the taste kernel in (0, 1]) and takes back
the popularity prior, `− discovery · popularity_weight · popularity` (`RankingConfig.popularity`).
The square of the taste fit keeps the boost for tracks close to the taste: a track at kernel 0.5
gets a quarter of the boost of a perfect match. discovery = 0 changes nothing.

>>> import numpy as np
>>> target = resolve_target(mood="Chill")
>>> target.name, target.label
('chill', 'fits your chill mood')
>>> calm, loud = np.full(9, 0.5, np.float32), np.full(9, 0.5, np.float32)
>>> calm[1], loud[1] = 0.3, 0.95
>>> fit = mood_fit(np.stack([calm, loud]), target)
>>> bool(fit[0] > fit[1])
True
>>> resolve_target(hour=23).name, resolve_target(mood="gym").name, resolve_target(mood="???")
('night', 'workout', None)
>>> discovery_term(np.array([0.9, 0.1]), np.array([1.0, 1.0]), 1.0).round(3).tolist()
[0.05, 0.45]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ranking.config import RANKING_CONFIG, RankingConfig
from schemas.tracks import AUDIO_FEATURES

FIT_WIDTH = 0.2
"""σ of the fit kernel, in scaled feature units."""
DISCOVERY_DEFAULT = 0.0


def _bpm(bpm: float) -> float:
    return bpm / 250.0


def _db(db: float) -> float:
    return (db + 60.0) / 60.0


# feature → (target, weight)
_Spec = Mapping[str, tuple[float, float]]

MOODS: dict[str, _Spec] = {
    "energetic": {"energy": (0.85, 1.0), "danceability": (0.65, 0.4), "tempo": (_bpm(130), 0.4),
                  "loudness": (_db(-5), 0.5), "valence": (0.6, 0.2)},
    "chill": {"energy": (0.3, 1.0), "acousticness": (0.6, 0.5), "tempo": (_bpm(95), 0.4),
              "loudness": (_db(-12), 0.4), "valence": (0.5, 0.2), "speechiness": (0.05, 0.3)},
    "happy": {"valence": (0.85, 1.0), "energy": (0.7, 0.5), "danceability": (0.7, 0.5)},
    "melancholic": {"valence": (0.2, 1.0), "energy": (0.35, 0.6), "acousticness": (0.55, 0.4),
                    "tempo": (_bpm(95), 0.2)},
    "party": {"danceability": (0.8, 1.0), "energy": (0.85, 0.7), "valence": (0.7, 0.4),
              "tempo": (_bpm(125), 0.3), "loudness": (_db(-5), 0.4)},
    "focused": {"instrumentalness": (0.7, 1.0), "speechiness": (0.03, 0.7), "energy": (0.4, 0.4),
                "acousticness": (0.5, 0.2)},
    "romantic": {"energy": (0.4, 0.6), "valence": (0.55, 0.4), "acousticness": (0.5, 0.4),
                 "danceability": (0.55, 0.3), "tempo": (_bpm(100), 0.3), "speechiness": (0.04, 0.3)},
    "workout": {"energy": (0.9, 1.0), "tempo": (_bpm(138), 0.7), "danceability": (0.7, 0.4),
                "loudness": (_db(-5), 0.4)},
}

ACTIVITIES: dict[str, _Spec] = {
    "running": {"energy": (0.9, 1.0), "tempo": (_bpm(165), 0.9), "danceability": (0.65, 0.3),
                "valence": (0.6, 0.2)},
    "studying": {"instrumentalness": (0.7, 1.0), "speechiness": (0.03, 0.8), "energy": (0.35, 0.5)},
    "commuting": {"energy": (0.6, 0.4), "valence": (0.6, 0.3), "danceability": (0.6, 0.3)},
    "sleeping": {"energy": (0.15, 1.0), "acousticness": (0.8, 0.6), "instrumentalness": (0.6, 0.5),
                 "loudness": (_db(-20), 0.6), "tempo": (_bpm(80), 0.4), "speechiness": (0.03, 0.4)},
    "cooking": {"valence": (0.7, 0.6), "danceability": (0.6, 0.5), "energy": (0.55, 0.4),
                "acousticness": (0.4, 0.2)},
    "working_out": MOODS["workout"],
    "relaxing": {"energy": (0.3, 1.0), "acousticness": (0.6, 0.5), "valence": (0.55, 0.3),
                 "tempo": (_bpm(95), 0.3), "loudness": (_db(-12), 0.3)},
}

TIMES_OF_DAY: dict[str, _Spec] = {
    "morning": {"energy": (0.55, 0.5), "valence": (0.65, 0.5), "acousticness": (0.4, 0.2)},
    "afternoon": {"energy": (0.65, 0.5), "danceability": (0.6, 0.3)},
    "evening": {"energy": (0.5, 0.4), "valence": (0.55, 0.2), "acousticness": (0.45, 0.2)},
    "night": {"energy": (0.3, 0.6), "acousticness": (0.55, 0.3), "loudness": (_db(-15), 0.3)},
}

ALIASES: dict[str, str] = {
    "energy": "energetic", "pumped": "energetic", "hype": "energetic",
    "calm": "chill", "chilled": "chill", "mellow": "chill",
    "upbeat": "happy", "joyful": "happy", "cheerful": "happy",
    "sad": "melancholic", "melancholy": "melancholic", "blue": "melancholic",
    "dance": "party", "focus": "focused", "concentration": "focused",
    "love": "romantic", "date": "romantic",
    "gym": "workout", "exercise": "workout", "workingout": "workout", "work_out": "workout",
    "run": "running", "jogging": "running", "study": "studying", "reading": "studying",
    "commute": "commuting", "driving": "commuting", "travel": "commuting",
    "sleep": "sleeping", "bedtime": "sleeping", "cook": "cooking", "dinner": "cooking",
    "relax": "relaxing", "relaxed": "relaxing", "unwind": "relaxing", "working": "studying",
}
"""Other words people use, mapped to a mood or activity name."""


@dataclass(frozen=True)
class MoodTarget:
    name: str
    label: str
    """How a reason says it: "fits your chill mood", "good for running", "fits the evening"."""
    target: np.ndarray
    """(9,) float32 target values (0.5 where the weight is 0)."""
    weight: np.ndarray
    """(9,) float32 per-feature weights."""
    score_weight: float
    """`RankingConfig.mood` for an explicit mood or activity, `.time_of_day` for the default."""


def _normalise(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES.get(key, ALIASES.get(key.replace("_", ""), key))


def known_name(name: str) -> str | None:
    """The canonical mood or activity a request's name stands for (aliases resolved), or None.

    >>> known_name("Gym"), known_name("late-night drive")
    ('workout', None)
    """
    key = _normalise(name)
    return key if key in MOODS or key in ACTIVITIES else None


def _arrays(spec: _Spec) -> tuple[np.ndarray, np.ndarray]:
    target = np.full(len(AUDIO_FEATURES), 0.5, dtype=np.float32)
    weight = np.zeros(len(AUDIO_FEATURES), dtype=np.float32)
    for feature, (value, w) in spec.items():
        i = AUDIO_FEATURES.index(feature)
        target[i], weight[i] = value, w
    return target, weight


def time_of_day(hour: int) -> str:
    """morning 5–11, afternoon 12–16, evening 17–21, night 22–4 (local hour, 0–23)."""
    hour %= 24
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def resolve_target(
    mood: str | None = None, activity: str | None = None, hour: int | None = None,
    config: RankingConfig = RANKING_CONFIG,
) -> MoodTarget | None:
    """The target of a request: its mood and/or activity, else the time-of-day default, else None.

    Unknown mood and activity names are ignored (None when nothing else applies)."""
    parts: list[tuple[str, str, _Spec]] = []
    if mood:
        key = _normalise(mood)
        spec = MOODS.get(key) or ACTIVITIES.get(key)
        if spec is not None:
            label = f"fits your {key} mood" if key in MOODS else f"good for {key.replace('_', ' ')}"
            parts.append((key, label, spec))
    if activity:
        key = _normalise(activity)
        spec = ACTIVITIES.get(key) or MOODS.get(key)
        if spec is not None and all(key != p[0] for p in parts):
            parts.append((key, f"good for {key.replace('_', ' ')}", spec))
    if parts:
        targets, weights = zip(*(_arrays(spec) for _, _, spec in parts), strict=True)
        w = np.sum(weights, axis=0)
        t = np.where(w > 0, np.sum([a * b for a, b in zip(targets, weights, strict=True)], axis=0)
                     / np.maximum(w, 1e-9), 0.5)
        name = "+".join(p[0] for p in parts)
        label = " and ".join(p[1] for p in parts)
        return MoodTarget(name, label, t.astype(np.float32), w.astype(np.float32), config.mood)
    if hour is not None:
        name = time_of_day(hour)
        t, w = _arrays(TIMES_OF_DAY[name])
        return MoodTarget(name, f"fits the {name}", t, w, config.time_of_day)
    return None


def mood_fit(features: np.ndarray, target: MoodTarget) -> np.ndarray:
    """(n,) fit in (0, 1] of each row of scaled features to the target."""
    x = np.asarray(features, dtype=np.float32)
    total = float(target.weight.sum())
    if total <= 0:
        return np.ones(len(x), dtype=np.float32)
    d2 = ((x - target.target) ** 2) @ target.weight / total
    return np.exp(-d2 / (2.0 * FIT_WIDTH**2)).astype(np.float32)


def mood_term(features: np.ndarray, target: MoodTarget | None) -> np.ndarray:
    """(n,) the score term: `target.score_weight × fit` (zeros without a target)."""
    if target is None:
        return np.zeros(len(features), dtype=np.float32)
    return (target.score_weight * mood_fit(features, target)).astype(np.float32)


def discovery_term(
    popularity: np.ndarray,
    taste_fit: np.ndarray,
    discovery: float,
    popularity_weight: float = 0.0,
    discovery_weight: float = RANKING_CONFIG.discovery,
) -> np.ndarray:
    """(n,) `discovery · (discovery_weight · (1 − popularity) · taste_fit² − popularity_weight · pop)`.

    Pass `popularity_weight=RankingConfig.popularity` to also take back the popularity prior."""
    d = float(min(1.0, max(0.0, discovery)))
    pop = np.asarray(popularity, dtype=np.float64)
    fit = np.asarray(taste_fit, dtype=np.float64)
    return d * (discovery_weight * (1.0 - pop) * fit**2 - popularity_weight * pop)
