"""Per-experiment state in the dataflow: outcomes of recommended tracks, counted per variant.

An answer's `request_id` carries the variants it was ranked with (`schemas.values.encode_request_id`),
and players send it back as `context.request_id` with the plays of its tracks. `experiment_signals_of`
reads the *applied* events of a batch of per-user outputs (so a duplicate the user step dropped is
not counted), decodes their request ids and sums, per experiment, `(variant, counter)` → count
(`schemas.values.EXPERIMENT_COUNTERS`: the event's type, and `early_skip` for an early skip).
`ExperimentLogic` (keyed by experiment) holds the integer counts in recovered state and emits
their full state once per batch; `experiment_sink` overwrites the experiment's hash. Integer sums
and full-state writes: a replay after a crash rewrites exactly the values of an uninterrupted run.
The flow needs no experiment configuration: the request ids say everything. Exploration slots
(`ranking.explore`) are counted the same way, as the arms of the pseudo-experiment `_explore`, for
the events whose track is the slot's (`schemas.values.track_tag`).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

from bytewax.operators import StatefulBatchLogic

from flows.redis_io import PipelineSink
from flows.user_state import ProfileWrite
from online_models.feedback import is_early_skip
from schemas.keys import KeyLayout
from schemas.values import EXPLORE_KEY, decode_explore, decode_request_id, outcome_field, track_tag

Counts = dict[tuple[str, str], int]
"""(variant, counter) → count."""


def experiment_signals_of(items: list[tuple[str, ProfileWrite]]) -> list[tuple[str, Counts]]:
    """A batch of per-user outputs → one signal per experiment that any applied event cites."""
    by_experiment: dict[str, Counts] = {}
    for _, write in items:
        for event, _track, _pairs in write.learned:
            context = event.context
            if context is None or not context.request_id:
                continue
            cited = decode_request_id(context.request_id)
            slots = decode_explore(context.request_id)
            if slots:  # an exploration slot's outcome counts for its arm when the track is the slot's
                tag = track_tag(event.track_id)
                cited += [(EXPLORE_KEY, arm) for arm, slot_tag in slots if slot_tag == tag]
            for experiment, variant in cited:
                counts = by_experiment.setdefault(experiment, {})
                key = (variant, str(event.type))
                counts[key] = counts.get(key, 0) + 1
                if is_early_skip(event):
                    key = (variant, "early_skip")
                    counts[key] = counts.get(key, 0) + 1
    return list(by_experiment.items())


class ExperimentLogic(StatefulBatchLogic[Counts, Counts, bytes]):
    """One experiment's counts: adds the batch's signals, emits the full state once."""

    def __init__(self, resume_state: bytes | None) -> None:
        self.counts: Counts = pickle.loads(resume_state) if resume_state is not None else {}

    def on_batch(self, values: list[Counts]) -> tuple[Iterable[Counts], bool]:
        counts = self.counts
        for signal in values:
            for key, n in signal.items():
                counts[key] = counts.get(key, 0) + n
        return [dict(counts)], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.counts, protocol=pickle.HIGHEST_PROTOCOL)


def fill_experiments(pipe: Any, keys: KeyLayout, items: list[tuple[str, Counts]]) -> None:
    """Each touched experiment's counts, full state (a later state of one experiment supersedes)."""
    for experiment, counts in dict(items).items():
        pipe.hset(keys.experiment_outcomes(experiment),
                  mapping={outcome_field(v, c): n for (v, c), n in counts.items()})


def experiment_sink(url: str, keys: KeyLayout) -> PipelineSink:
    """Writes each touched experiment's counts (the hash's fields are overwritten: full state)."""
    return PipelineSink(url, keys, fill_experiments, "experiment outcomes write")
