"""Every value format that crosses Redis besides the profile: one encoder and one decoder each.

| value | key (`schemas.keys`) | format |
|---|---|---|
| item rates | `{items}:rates` field per track | ASCII `like_rate,skip_rate,listens` (6 significant digits) |
| item change feed entry | `{items}:changes` stream, field `ids` | JSON list of the track ids a flow batch rewrote |
| declared favourites | `{u:<id>}:seed` | JSON `{"track_ids": [...], "artists": [...], "at_ms": int}` |
| global engagement model | `global_model(period)` | `MODEL_WEIGHTS` little-endian float32 (`online_models.logistic`) |
| co-listening row | `{t:<id>}:neighbours` sorted set | member = neighbour track id, score = decayed count |
| artist co-occurrence row | `{a:<artist>}:neighbours` sorted set | member = partner artist, score = integer count in `ARTIST_COUNT_UNITS` per listener (integers keep Redis's small sorted sets and both clients' parsing cheap) |
| learned ranker | `{model}:ranker` | JSON `{"features": [...], "weights": [...], "intercept": f, "examples": n, "metrics": {"auc": {"learned": f, "prior": f}, "log_loss": {...}}}` |
| request id | `context.request_id` of events (Kafka), `request_id` of answers | `<nonce>[~<experiment>=<variant>]...[~x:<arm>=<track tag>]...` |
| experiment outcomes | `{x:<experiment>}:outcomes` hash | field `<variant>:<counter>` → integer count |
| catalog change | `{catalog}:changes` stream entry | field `ids` → JSON array of the track ids one catalog write upserted |

The flow writes them, the API and the benchmarks read them, through these functions only.

>>> decode_rates(encode_rates(0.25, 0.1, 12.0))
(0.25, 0.1, 12.0)
>>> decode_rates(b"garbage") is None
True
>>> decode_seed(encode_seed(("t1",), ("Muse",), 5))
(('t1',), ('Muse',))
>>> decode_neighbours([(b"t2", 3.0)])
[('t2', 3.0)]
>>> rid = encode_request_id("9f2c01", [("ranker", "treatment")])
>>> rid, decode_request_id(rid), decode_request_id("some-other-id")
('9f2c01~ranker=treatment', [('ranker', 'treatment')], [])
>>> rid = encode_explore(rid, [("long_tail", "t9")])
>>> rid, decode_request_id(rid), decode_explore(rid) == [("long_tail", track_tag("t9"))]
('9f2c01~ranker=treatment~x:long_tail=26c08b', [('ranker', 'treatment')], True)
>>> decode_outcomes({b"control:like": b"3", b"control:play": b"10", b"junk": b"1"})
{'control': {'like': 3, 'play': 10}}
>>> decode_catalog_change(encode_catalog_change(["t1", "t2"])), decode_catalog_change({b"x": b"1"})
(['t1', 't2'], None)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

ARTIST_COUNT_UNITS = 1 << 16
"""An artist co-occurrence row's counts are integers in 1/65,536 of a listener (a power of two, so a
count × 2^−16 is exact): each pair a history forms weighs 1/k^γ of a listener
(`online_models.artist_memory.pair_weight`)."""

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


ITEM_CHANGES_FIELD = "ids"


def encode_item_changes(track_ids: Sequence[str]) -> bytes:
    """The `ids` field of one change feed entry.

    >>> decode_item_changes(encode_item_changes(["a", "b,c"]))
    ['a', 'b,c']
    """
    return orjson.dumps(list(track_ids))


def decode_item_changes(raw: bytes | None) -> list[str]:
    """The track ids of one change feed entry ([] for a missing or foreign value)."""
    if raw is None:
        return []
    try:
        ids = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    return [t for t in ids if isinstance(t, str)] if isinstance(ids, list) else []


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
    positives: int = 0
    """Examples with a positive label (`examples - positives` had a negative one)."""


def encode_ranker(state: RankerState) -> bytes:
    return orjson.dumps({"features": list(state.features), "weights": state.weights,
                         "intercept": state.intercept, "examples": state.examples, "metrics": state.metrics,
                         "positives": state.positives})


def decode_ranker(raw: bytes | None) -> RankerState | None:
    """The published ranker, or None for a missing or unreadable value."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        return RankerState(tuple(data["features"]), [float(w) for w in data["weights"]],
                           float(data["intercept"]), int(data["examples"]), dict(data.get("metrics", {})),
                           int(data.get("positives", 0)))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def is_model_weights(raw: bytes | None) -> bool:
    return raw is not None and len(raw) == MODEL_WEIGHTS_BYTES


def decode_neighbours(flat: Sequence[tuple[bytes, float]]) -> list[tuple[str, float]]:
    """A co-listening row as `ZRANGE ... WITHSCORES` returns it → `[(track_id, count)]`."""
    return [(member.decode(), float(value)) for member, value in flat]


NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
"""Experiment and variant names: letters, digits, `_` and `-`, at most 40."""
EXPERIMENT_COUNTERS: tuple[str, ...] = ("play", "complete", "like", "skip", "early_skip", "dislike")
"""What the flow counts per variant: events of each type carrying the variant's request id, and the
skips among them that were early (`online_models.feedback.is_early_skip`)."""


def encode_request_id(nonce: str, assignments: Sequence[tuple[str, str]]) -> str:
    """A request id that carries the experiment variants its answer was ranked with, so the flow can
    attribute the plays that cite it without asking the API (they meet only in Kafka and Redis)."""
    return nonce + "".join(f"~{experiment}={variant}" for experiment, variant in assignments)


def decode_request_id(request_id: str | None) -> list[tuple[str, str]]:
    """The (experiment, variant) pairs a request id carries; [] for any other id (never an error)."""
    if not request_id or "~" not in request_id:
        return []
    out = []
    for part in request_id.split("~")[1:]:
        experiment, _, variant = part.partition("=")
        if NAME_PATTERN.match(experiment) and NAME_PATTERN.match(variant):
            out.append((experiment, variant))
    return out


def outcome_field(variant: str, counter: str) -> str:
    return f"{variant}:{counter}"


def decode_outcomes(raw: Mapping[bytes | str, bytes | str]) -> dict[str, dict[str, int]]:
    """An experiment's outcomes hash → variant → counter → count (foreign fields are skipped)."""
    out: dict[str, dict[str, int]] = {}
    for key, value in raw.items():
        field = key.decode() if isinstance(key, bytes) else key
        variant, _, counter = field.rpartition(":")
        if not variant or counter not in EXPERIMENT_COUNTERS:
            continue
        try:
            out.setdefault(variant, {})[counter] = int(value)
        except ValueError:
            continue
    return out


EXPLORE_KEY = "_explore"
"""The outcomes hash name (`KeyLayout.experiment_outcomes`) of the exploration arms; experiment names
may not start with `_`."""
MAX_REQUEST_ID = 128
"""A request id fits an event's `context.request_id` (an `Identifier`)."""


def track_tag(track_id: str) -> str:
    """6 hex digits standing for a track in a request id (enough to tell a list's tracks apart)."""
    return hashlib.blake2b(track_id.encode(), digest_size=3).hexdigest()


def encode_explore(request_id: str, slots: Sequence[tuple[str, str]]) -> str:
    """`request_id` plus each exploration slot's arm and track tag, as long as it fits."""
    for arm, track_id in slots:
        part = f"~x:{arm}={track_tag(track_id)}"
        if len(request_id) + len(part) > MAX_REQUEST_ID:
            break
        request_id += part
    return request_id


def decode_explore(request_id: str | None) -> list[tuple[str, str]]:
    """The (arm, track tag) pairs of a request id's exploration slots."""
    if not request_id or "~x:" not in request_id:
        return []
    out = []
    for part in request_id.split("~")[1:]:
        if part.startswith("x:"):
            arm, _, tag = part[2:].partition("=")
            if NAME_PATTERN.match(arm) and len(tag) == 6:
                out.append((arm, tag))
    return out


def encode_catalog_change(track_ids: Iterable[str]) -> dict[str, bytes]:
    """The fields of one catalog change entry: the ids a catalog write upserted."""
    return {"ids": orjson.dumps(list(track_ids))}


def decode_catalog_change(fields: Mapping[bytes, bytes] | Mapping[str, bytes]) -> list[str] | None:
    """The track ids of a change entry (fields as Redis returns them, or as encoded); None when it
    is not one (the reader then rebuilds)."""
    raw = fields.get(b"ids", fields.get("ids"))  # type: ignore[call-overload]
    try:
        ids = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    return ids
