"""What each event type means: the one table every learner, ranker, codec and benchmark reads.

| type | weight | positive | listen | skipped | clear signal | never again | wire code | item counter |
|---|---|---|---|---|---|---|---|---|
| play | +0.1 | | yes | | | | 0 | plays |
| skip | −0.8 × (1 − fraction played) | | yes | yes | yes | | 1 | skips |
| like | +1.0 | yes | | | yes | | 2 | likes |
| dislike | −1.0 | | | | yes | yes | 3 | dislikes |
| complete | +0.6 | yes | yes | | yes | | 4 | completes |

- **weight**: the preference signal in [−1, 1] (`online_models.feedback.feedback_weight` applies
  it; a skip's weight depends on how far it got, −0.4 when the position is unknown).
- **positive**: the listener enjoyed the track: it feeds the taste vector's pull, collaborative
  memory, sessions, taste clusters and likes-per-time-of-day.
- **listen**: the track was actually played (the skip rate's denominator).
- **skipped**: the listener moved on before the end: the skip rate's numerator, and the weight
  scales with how early (`weight × (1 − fraction played)`).
- **clear signal**: says something about the listener's taste (how fast their own engagement model
  takes over from the global one).
- **never again**: the track is not recommended to this listener again.
- **wire code**: the small integer that stands for the type in the profile codec (never reuse one).
- **item counter**: the decayed per-track counter it adds to (`online_models.item_stats`).

Adding an event type: add it to `schemas.events.EventType`, give it a row here (a new wire code),
and test it; every other module reads this table.

>>> SEMANTICS[EventType.COMPLETE].weight, is_positive(EventType.LIKE), is_positive(EventType.PLAY)
(0.6, True, False)
>>> [TYPE_OF_CODE[c] for c in sorted(TYPE_OF_CODE)] == list(EventType)
True
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import EventType


@dataclass(frozen=True)
class EventSemantics:
    weight: float
    """Feedback weight (for a skip: the largest penalty, at position 0)."""
    positive: bool
    listen: bool
    skipped: bool
    clear_signal: bool
    never_again: bool
    code: int
    counter: str


SEMANTICS: dict[EventType, EventSemantics] = {
    EventType.PLAY: EventSemantics(0.1, positive=False, listen=True, skipped=False, clear_signal=False,
                                   never_again=False, code=0, counter="plays"),
    EventType.SKIP: EventSemantics(-0.8, positive=False, listen=True, skipped=True, clear_signal=True,
                                   never_again=False, code=1, counter="skips"),
    EventType.LIKE: EventSemantics(1.0, positive=True, listen=False, skipped=False, clear_signal=True,
                                   never_again=False, code=2, counter="likes"),
    EventType.DISLIKE: EventSemantics(-1.0, positive=False, listen=False, skipped=False, clear_signal=True,
                                      never_again=True, code=3, counter="dislikes"),
    EventType.COMPLETE: EventSemantics(0.6, positive=True, listen=True, skipped=False, clear_signal=True,
                                       never_again=False, code=4, counter="completes"),
}

SKIP_UNKNOWN_POSITION_FRACTION = 0.5
"""A skip whose position is unknown counts as if skipped halfway."""
EARLY_SKIP_FRACTION = 0.3
"""A skip is *early* below this fraction of the track played..."""
EARLY_SKIP_MS = 30_000
"""... or below this many milliseconds."""

TYPE_OF_CODE: dict[int, EventType] = {s.code: t for t, s in SEMANTICS.items()}
"""Wire code → event type (the profile codec's counts and recent tracks)."""
POSITIVE_TYPES: frozenset[EventType] = frozenset(t for t, s in SEMANTICS.items() if s.positive)
LISTEN_TYPES: tuple[EventType, ...] = tuple(t for t in EventType if SEMANTICS[t].listen)
ITEM_COUNTERS: tuple[str, ...] = tuple(SEMANTICS[t].counter for t in EventType)


def is_positive(event_type: EventType) -> bool:
    return SEMANTICS[event_type].positive


def _check() -> None:
    missing = set(EventType) - set(SEMANTICS)
    if missing:
        raise RuntimeError(f"event types without semantics: {sorted(missing)}")
    if sorted(TYPE_OF_CODE) != list(range(len(SEMANTICS))):
        raise RuntimeError("wire codes must be 0..n-1, one per event type")


_check()
