"""`familiar`: tracks the listener enjoyed before, back once the repeat cool-down is over.

They compete like any candidate; a request's `familiar` share reserves some of the list for them
(`ranking.pipeline.pick`).
"""

from __future__ import annotations

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.listener import familiar_positions
from ranking.sources.base import CandidateSource, SourceContext

NAME = "familiar"


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    found = [(i, w) for i, w in familiar_positions(ctx.view, ctx.profile, ctx.rules) if i not in ctx.excluded]
    if not found:
        return None
    found = found[:n]
    return SourceCandidates(NAME, np.array([i for i, _ in found], np.int64),
                            np.array([w for _, w in found], np.float32))


SOURCE = CandidateSource(NAME, propose)
