"""Taste analysis a person can read: distinct tastes, moods the taste fits, when they listen.

Pure: from a `UserProfile` and the catalog view, no I/O.

- **clusters**: k-means over the z-scored features of the recent likes and completes
  (`diversity.taste_clusters`, the same clusters the list is diversified across); each described by
  the features where its centre stands furthest from the catalog average, with example tracks;
- **moods**: the three moods whose audio targets the taste vector fits best (`moods.mood_fit`);
- **time of day**: the share of likes and completes per 4-hour UTC window (`tod_counts`), and in
  words when it is concentrated ("mostly in the evening (UTC)");
- **drift** and **engagement model**: the state of the drift detector and whether the listener's
  own model exists yet.

>>> from schemas.profile_codec import UserProfile
>>> from schemas.tracks import Track
>>> from ranking.catalog_view import CatalogView
>>> def track(tid, energy):
...     return Track(track_id=tid, title=tid, artist="A", danceability=0.5, energy=energy, valence=0.5,
...                  acousticness=0.5, instrumentalness=0.0, liveness=0.1, speechiness=0.1, tempo=120,
...                  loudness=-6)
>>> view = CatalogView.build([track("a", 0.9), track("b", 0.2)])
>>> profile = UserProfile("u", taste=list(view.index.features[0]), tod_counts=[0, 0, 0, 1, 2, 7])
>>> analysis = analyse_taste(view, profile)
>>> analysis["listening_time"], analysis["time_of_day"][5]
('mostly 20-24 h (UTC)', {'hours_utc': '20-24', 'share': 0.7})
"""

from __future__ import annotations

from typing import Any

import numpy as np

from online_models.drift import STATE_BYTES, DriftDetector
from ranking.catalog_view import CatalogView
from ranking.diversity import taste_clusters
from ranking.listener import liked_positions
from ranking.moods import MOODS, mood_fit, resolve_target
from ranking.scoring import describe_z
from schemas.profile_codec import TOD_BUCKETS, UserProfile

CONCENTRATED_SHARE = 0.4
"""A 4-hour window with at least this share of the likes is "mostly" when the listener listens."""


def analyse_taste(view: CatalogView, profile: UserProfile) -> dict[str, Any]:
    index = view.index
    clusters_out: list[dict[str, Any]] = []
    liked = liked_positions(view, profile)
    if liked:
        clusters = taste_clusters(view.space.z[liked])
        for c in range(clusters.k):
            members = [liked[j] for j in np.flatnonzero(clusters.labels == c)]
            examples = []
            for i in members[:3]:
                track = index.tracks[i]
                title = track.title or track.track_id
                examples.append(f"{title} by {track.artist}" if track.artist else title)
            clusters_out.append({"size": len(members), "described_as": describe_z(clusters.centroids[c])
                                 or ["close to the catalog average"],
                                 "examples": examples})
    moods: list[dict[str, Any]] = []
    if profile.taste:
        taste = np.asarray([profile.taste], dtype=np.float32)
        fits = []
        for name in MOODS:
            target = resolve_target(mood=name)
            if target is not None:
                fits.append((float(mood_fit(taste, target)[0]), name))
        moods = [{"mood": name, "fit": round(fit, 3)} for fit, name in sorted(fits, reverse=True)[:3]]
    counts = profile.tod_counts if len(profile.tod_counts) == TOD_BUCKETS else [0] * TOD_BUCKETS
    total = sum(counts)
    width = 24 // TOD_BUCKETS
    windows = [f"{b * width:02d}-{(b + 1) * width:02d}" for b in range(TOD_BUCKETS)]
    time_of_day = [{"hours_utc": w, "share": round(c / total, 3) if total else 0.0}
                   for w, c in zip(windows, counts, strict=True)]
    listening_time = None
    if total >= 5:
        best = int(np.argmax(counts))
        if counts[best] / total >= CONCENTRATED_SHARE:
            listening_time = f"mostly {windows[best]} h (UTC)"
        else:
            listening_time = "spread through the day"
    drift = DriftDetector.from_bytes(profile.drift).state() if len(profile.drift) == STATE_BYTES else None
    engagement = {"own_model": bool(profile.model_weights),
                  "warm_started_from_period": profile.prior_period if profile.prior_period >= 0 else None}
    return {"clusters": clusters_out, "moods": moods, "time_of_day": time_of_day,
            "listening_time": listening_time, "drift": drift, "engagement_model": engagement}
