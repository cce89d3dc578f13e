"""The feedback signal: how much each event says a listener likes a track, in [-1, 1].

These weights are the one place that turns an event into a preference signal:

| event | weight | why |
|---|---|---|
| like | +1.0 | explicit approval |
| dislike | −1.0 | explicit rejection |
| complete | +0.6 | listened to the end: strong implicit approval |
| play | +0.1 | started it: weak, most plays say little |
| skip | −0.8 × (1 − fraction played) | an early skip is a strong "no", a late skip almost none |
| skip, position unknown | −0.4 | as if skipped halfway |

A skip counts as *early* when less than `EARLY_SKIP_FRACTION` of the track (or less than
`EARLY_SKIP_MS`) was played.

>>> from schemas.events import Event
>>> skip = Event(event_id="e", user_id="u", track_id="t", type="skip", ts=0,
...              position_ms=20_000, duration_ms=200_000)
>>> round(feedback_weight(skip), 2), is_early_skip(skip)
(-0.72, True)
"""

from __future__ import annotations

from schemas.events import Event, EventType

EVENT_WEIGHTS: dict[EventType, float] = {
    EventType.LIKE: 1.0,
    EventType.DISLIKE: -1.0,
    EventType.COMPLETE: 0.6,
    EventType.PLAY: 0.1,
}
SKIP_MAX_PENALTY = 0.8
SKIP_UNKNOWN_POSITION_FRACTION = 0.5
EARLY_SKIP_FRACTION = 0.3
EARLY_SKIP_MS = 30_000


def played_fraction(event: Event) -> float | None:
    """How much of the track was played, in [0, 1]; None when position or duration is unknown."""
    if event.position_ms is None or not event.duration_ms:
        return None
    return min(1.0, max(0.0, event.position_ms / event.duration_ms))


def feedback_weight(event: Event) -> float:
    """The preference signal of one event, in [-1, 1]."""
    if event.type is EventType.SKIP:
        fraction = played_fraction(event)
        if fraction is None:
            fraction = SKIP_UNKNOWN_POSITION_FRACTION
        return -SKIP_MAX_PENALTY * (1.0 - fraction)
    return EVENT_WEIGHTS[event.type]


def is_early_skip(event: Event) -> bool:
    if event.type is not EventType.SKIP:
        return False
    if event.position_ms is not None and event.position_ms < EARLY_SKIP_MS:
        return True
    fraction = played_fraction(event)
    return fraction is not None and fraction < EARLY_SKIP_FRACTION
