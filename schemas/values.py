"""Every value format that crosses Redis besides the profile: one encoder and one decoder each.

| value | key (`schemas.keys`) | format |
|---|---|---|
| item rates | `{items}:rates` field per track | ASCII `like_rate,skip_rate,listens` (6 significant digits) |
| declared favourites | `{u:<id>}:seed` | JSON `{"track_ids": [...], "artists": [...], "at_ms": int}` |
| global engagement model | `global_model(period)` | `MODEL_WEIGHTS` little-endian float32 (`online_models.logistic`) |
| co-listening row | `{t:<id>}:neighbours` sorted set | member = neighbour track id, score = decayed count |
| learned ranker | `{model}:ranker` | JSON `{"features": [...], "weights": [...], "intercept": f, "examples": n, "metrics": {"auc": {"learned": f, "prior": f}, "log_loss": {...}}}` |

The flow writes them, the API and the benchmarks read them, through these functions only.

>>> decode_rates(encode_rates(0.25, 0.1, 12.0))
(0.25, 0.1, 12.0)
>>> decode_rates(b"garbage") is None
True
>>> decode_seed(encode_seed(("t1",), ("Muse",), 5))
(('t1',), ('Muse',))
>>> decode_neighbours([(b"t2", 3.0)])
[('t2', 3.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

MODEL_WEIGHTS_BYTES = 312
"""Size of a serialised engagement model (the per-user one in the profile, the global one alone):
78 little-endian float32 weights. `online_models.user_model` checks its feature layout fits."""


def encode_rates(like_rate: float, skip_rate: float, listens: float) -> str:
    return f"{like_rate:.6g},{skip_rate:.6g},{listens:.6g}"


def decode_rates(raw: bytes | str | None) -> tuple[float, float, float] | None:
    """`(like_rate, skip_rate, listens)`, or None for a missing or foreign value."""
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        like, skip, listens = (float(x) for x in text.split(","))
    except ValueError:
        return None
    return like, skip, listens


def encode_seed(track_ids: Sequence[str], artists: Sequence[str], at_ms: int) -> bytes:
    return orjson.dumps({"track_ids": list(track_ids), "artists": list(artists), "at_ms": at_ms})


def decode_seed(raw: bytes | None) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """`(track_ids, artists)`, or None for a missing or unreadable value."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        return tuple(data.get("track_ids", ())), tuple(data.get("artists", ()))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None


@dataclass(frozen=True)
class RankerState:
    """The learned ranker as the flow publishes it and the API reads it."""

    features: tuple[str, ...]
    weights: list[float]
    intercept: float
    examples: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """`{"auc": {"learned": .., "prior": ..}, "log_loss": {...}}`: progressive, rolling."""


def encode_ranker(state: RankerState) -> bytes:
    return orjson.dumps({"features": list(state.features), "weights": state.weights,
                         "intercept": state.intercept, "examples": state.examples, "metrics": state.metrics})


def decode_ranker(raw: bytes | None) -> RankerState | None:
    """The published ranker, or None for a missing or unreadable value."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        return RankerState(tuple(data["features"]), [float(w) for w in data["weights"]],
                           float(data["intercept"]), int(data["examples"]), dict(data.get("metrics", {})))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def is_model_weights(raw: bytes | None) -> bool:
    return raw is not None and len(raw) == MODEL_WEIGHTS_BYTES


def decode_neighbours(flat: Sequence[tuple[bytes, float]]) -> list[tuple[str, float]]:
    """A co-listening row as `ZRANGE ... WITHSCORES` returns it → `[(track_id, count)]`."""
    return [(member.decode(), float(value)) for member, value in flat]
