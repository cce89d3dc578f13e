"""The feedback signal: how much each event says a listener likes a track, in [-1, 1].

The weights are in the event-type table (`schemas.event_types.SEMANTICS`): like +1.0 (explicit
approval), dislike −1.0, complete +0.6 (listened to the end), play +0.1 (started it: says little),
skip −0.8 × (1 − fraction played) (an early skip is a strong "no", a late one almost none; −0.4
when the position is unknown). A skip is *early* when less than `EARLY_SKIP_FRACTION` of the track
(or less than `EARLY_SKIP_MS`) was played.

>>> from schemas.events import Event
>>> skip = Event(event_id="e", user_id="u", track_id="t", type="skip", ts=0,
...              position_ms=20_000, duration_ms=200_000)
>>> round(feedback_weight(skip), 2), is_early_skip(skip)
(-0.72, True)
"""

from __future__ import annotations

from schemas.event_types import (
    EARLY_SKIP_FRACTION,
    EARLY_SKIP_MS,
    SEMANTICS,
    SKIP_UNKNOWN_POSITION_FRACTION,
)
from schemas.events import Event


def played_fraction(event: Event) -> float | None:
    """How much of the track was played, in [0, 1]; None when position or duration is unknown."""
    if event.position_ms is None or not event.duration_ms:
        return None
    return min(1.0, max(0.0, event.position_ms / event.duration_ms))


def feedback_weight(event: Event) -> float:
    """The preference signal of one event, in [-1, 1]."""
    semantics = SEMANTICS[event.type]
    if semantics.skipped:
        fraction = played_fraction(event)
        if fraction is None:
            fraction = SKIP_UNKNOWN_POSITION_FRACTION
        return semantics.weight * (1.0 - fraction)
    return semantics.weight


def is_early_skip(event: Event) -> bool:
    if not SEMANTICS[event.type].skipped:
        return False
    if event.position_ms is not None and event.position_ms < EARLY_SKIP_MS:
        return True
    fraction = played_fraction(event)
    return fraction is not None and fraction < EARLY_SKIP_FRACTION
