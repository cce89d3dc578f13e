"""Reasons a person understands: the 1–3 terms that contributed most to a track's score, in words.

The scorer hands over each term's contribution to the final score (already multiplied by its
weight) under these keys; a term contributes a reason only above `MIN_CONTRIBUTION` (0.05):

| key | reason |
|---|---|
| `co_listening` | "because you liked <title> by <artist>" (the recent positive it was co-listened with) |
| `taste` | "matches your <high-energy and acoustic> taste" (`scoring.describe_taste`) |
| `artist` | "you listen to <artist>" |
| `genre` | "you like <the track's genre you like most>" |
| `trending` | "trending in <first genre>" ("trending now" without genres) |
| `mood` | the target's label: "fits your chill mood", "good for running", "fits the evening" |
| `discovery` | "something new: less known but close to your taste" |
| `session` | "close to what you are playing now" (the latest likes and completes) |
| `engagement` | "you tend to enjoy tracks like this" (the listener's own engagement model) |
| `quality` | "listeners love it" (a like rate well above the prior, few skips) |
| `popular` | "popular in <first genre>" |

Ordered by contribution (ties in the table's order), except that "because you liked …" leads
whenever it applies: it is the most specific reason a person can check; and the asked-for mood or
activity comes next when it contributes: it answers what the caller asked. With nothing above the
threshold the track is "popular in <genre>". Deterministic: the same inputs give the same words.

>>> from schemas.tracks import Track
>>> liked = Track(track_id="a", title="Imagine", artist="John Lennon", genres=["rock"])
>>> track = Track(track_id="b", title="Woman", artist="John Lennon", genres=["rock", "pop"])
>>> explain(track, {"co_listening": 0.3, "taste": 0.7, "mood": 0.01, "discovery": 0.2},
...         via=liked, taste_words=["high-energy"], limit=2)
['because you liked Imagine by John Lennon', 'matches your high-energy taste']
>>> explain(track, {"discovery": 0.2, "artist": 0.01})
['something new: less known but close to your taste']
>>> explain(track, {"trending": 0.2, "mood": 0.4}, mood_label="fits your chill mood", limit=1)
['fits your chill mood']
>>> explain(track, {})
['popular in rock']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.tracks import Track

MIN_CONTRIBUTION = 0.05
MAX_REASONS = 3
_ORDER = ("familiar", "co_listening", "similar_artists", "taste", "artist", "genre", "session", "engagement",
          "trending", "mood", "quality", "discovery", "popular")


_RANK = {key: n for n, key in enumerate(_ORDER)}

_LEADING = {"familiar": 0, "co_listening": 0, "mood": 1}
"""Reasons shown before the others whenever they contribute (0 first, then 1)."""


def _popular(track: Track) -> str:
    return f"popular in {track.genres[0]}" if track.genres else "popular in the catalog"


def _text(
    key: str,
    track: Track,
    via: Track | None,
    taste_words: Sequence[str],
    liked_genres: Mapping[str, float],
    mood_label: str | None,
    similar_via: str | None = None,
) -> str | None:
    if key == "co_listening":
        if via is None:
            return "often played together with what you like"
        title = via.title or via.track_id
        return f"because you liked {title} by {via.artist}" if via.artist else f"because you liked {title}"
    if key == "familiar":
        return "one of your favourites, back after a while"
    if key == "similar_artists":
        return f"fans of {similar_via} play it too" if similar_via else "listeners like you play it"
    if key == "taste":
        words = " and ".join(taste_words)
        return f"matches your {words} taste" if words else "close to your audio taste"
    if key == "artist":
        return f"you listen to {track.artist}" if track.artist else None
    if key == "genre":
        liked = [g for g in track.genres if liked_genres.get(g, 0.0) > 0]
        return f"you like {max(liked, key=lambda g: liked_genres[g])}" if liked else None
    if key == "trending":
        return f"trending in {track.genres[0]}" if track.genres else "trending now"
    if key == "mood":
        return mood_label
    if key == "discovery":
        return "something new: less known but close to your taste"
    if key == "session":
        return "close to what you are playing now"
    if key == "engagement":
        return "you tend to enjoy tracks like this"
    if key == "quality":
        return "listeners love it"
    if key == "popular":
        return _popular(track)
    return None


def explain(
    track: Track,
    contributions: Mapping[str, float],
    *,
    via: Track | None = None,
    taste_words: Sequence[str] = (),
    liked_genres: Mapping[str, float] | None = None,
    mood_label: str | None = None,
    similar_via: str | None = None,
    limit: int = MAX_REASONS,
    min_contribution: float = MIN_CONTRIBUTION,
) -> list[str]:
    """The `limit` strongest reasons for `track`, strongest first (see the module's table)."""
    ranked = sorted(
        (key for key in _ORDER if contributions.get(key, 0.0) > min_contribution),
        key=lambda key: (_LEADING.get(key, len(_LEADING)), -contributions[key], _RANK[key]),
    )
    reasons: list[str] = []
    for key in ranked:
        text = _text(key, track, via, taste_words, liked_genres or {}, mood_label, similar_via)
        if text and text not in reasons:
            reasons.append(text)
        if len(reasons) >= limit:
            break
    return reasons or [_popular(track)]
