"""The global learned ranker in the dataflow: every event with a clear outcome trains it.

The per-user step (`flows.user_state`) turns each such event into an example: the ranker's
features (`ranking.ranker.features_one`) of the event's track *as the profile stood before the
event*, and its label (`online_models.user_model.engagement_label`: complete or like 1, skip or
dislike 0, weighted by strength). `ranker_examples_of` gathers a batch of them under one key;
`RankerLogic` scores each example before learning it (progressive validation) and emits the
ranker's state once per batch; `RankerSink` publishes it (`schemas.values.encode_ranker`).

One ranker for the whole flow, keyed by a constant, so it sees every partition's examples in the
order Bytewax delivers them; like the global engagement model it is approximate under replay (a
resumed flow relearns the examples after its snapshot), which moves weights a little, never a
profile.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

from bytewax.operators import StatefulBatchLogic

from flows.redis_io import PipelineSink
from flows.user_state import ProfileWrite
from online_models.ranker import OnlineRanker
from ranking.ranker import FEATURES, prior_weights
from schemas.keys import KeyLayout
from schemas.values import RankerState, encode_ranker

RANKER_KEY = "ranker"
Example = tuple[tuple[float, ...], int, float]


def ranker_examples_of(items: list[tuple[str, ProfileWrite]]) -> list[tuple[str, list[Example]]]:
    examples = [example for _, write in items for example in write.examples]
    return [(RANKER_KEY, examples)] if examples else []


class RankerLogic(StatefulBatchLogic[list[Example], RankerState, bytes]):
    def __init__(self, resume_state: bytes | None) -> None:
        self.ranker: OnlineRanker = (pickle.loads(resume_state) if resume_state is not None
                                     else OnlineRanker(FEATURES, prior_weights()))

    def on_batch(self, values: list[list[Example]]) -> tuple[Iterable[RankerState], bool]:
        ranker = self.ranker
        for examples in values:
            for x, y, w in examples:
                ranker.learn_one(dict(zip(FEATURES, x, strict=True)), bool(y), w)
        state = RankerState(features=FEATURES, weights=[ranker.weights()[f] for f in FEATURES],
                            intercept=ranker.intercept, examples=ranker.n, metrics=ranker.metrics(),
                            positives=ranker.positives)
        return [state], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.ranker, protocol=pickle.HIGHEST_PROTOCOL)


def fill_ranker(pipe: Any, keys: KeyLayout, items: list[tuple[str, RankerState]]) -> None:
    pipe.set(keys.ranker, encode_ranker(items[-1][1]))


def ranker_sink(url: str, keys: KeyLayout) -> PipelineSink:
    return PipelineSink(url, keys, fill_ranker, "ranker write")
