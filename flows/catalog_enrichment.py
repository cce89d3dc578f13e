"""Audio-feature enrichment in the catalog branch: tracks without features get predicted ones.

```
split_valid_tracks ─► key_catalog ─► enrich_tracks (one constant key) ─► unkey_catalog ─► write_catalog
```

`CatalogEnrichmentLogic` holds one `AudioFeatureRegressor` for the whole catalog (catalog upserts
are rare, so one key, on one worker, is no bottleneck). Per track it stores
`resolve_track(incoming, existing, regressor)`: a track with measured features is stored as is and
taught to the regressor; one without keeps the measured features the catalog already has (read from
the catalog hash in Redis, one HMGET per batch for the tracks that need it, so the state holds no
copy of the catalog), else gets predicted ones marked `features_predicted=True`. Events and the API
therefore only ever see enriched tracks.

**Recovery.** Bytewax 0.21 snapshots a stateful step's logic at the end of an epoch only for the
keys awoken in that epoch (the runtime's `awoken_keys_buffer`: "only snapshot state of keys that
could have resulted in state modifications"), so the regressor is saved only in epochs in which
tracks arrived. The snapshot is compact and exact (`regressor_to_bytes`): the rows of the slots
ever learned (a slot that was never seen is all zeros) as float64, their counts as u32, and the
running mean; a resumed regressor predicts bit for bit what an uninterrupted one would.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import numpy as np
from bytewax.operators import StatefulBatchLogic

from flows.decode import SourcedTrack
from flows.redis_io import RedisClient
from flows.track_lookup import read_catalog_tracks
from online_models.enrichment import N_OUTPUTS, AudioFeatureRegressor, resolve_track
from schemas.keys import KeyLayout
from schemas.tracks import Track

CATALOG_KEY = "catalog"
"""The one key of the enrichment step."""

_HEADER = struct.Struct(f"<BIdQI{N_OUTPUTS}d")
_SNAPSHOT_VERSION = 1

ExistingTracks = Callable[[list[str]], dict[str, Track | None]]
"""Track ids → the tracks the catalog holds now (None for unknown ones)."""


def key_catalog(item: SourcedTrack) -> tuple[str, SourcedTrack]:
    return CATALOG_KEY, item


def unkey_catalog(item: tuple[str, SourcedTrack]) -> SourcedTrack:
    return item[1]


class CatalogReader:
    """`ExistingTracks` from the catalog hash in Redis (one HMGET per call)."""

    def __init__(self, client: RedisClient, keys: KeyLayout) -> None:
        self._client = client
        self._keys = keys

    def __call__(self, track_ids: list[str]) -> dict[str, Track | None]:
        return read_catalog_tracks(self._client, self._keys, track_ids)


def regressor_to_bytes(model: AudioFeatureRegressor) -> bytes:
    """The regressor's exact state, keeping only the slots it ever learned."""
    seen = np.flatnonzero(model.counts).astype("<u4")
    header = _HEADER.pack(_SNAPSHOT_VERSION, model.n_buckets, model.lr, model.n_learned, len(seen),
                          *model.mean.tolist())
    counts = model.counts[seen].astype("<u4")
    rows = np.ascontiguousarray(model.weights[seen], dtype="<f8")
    return header + seen.tobytes() + counts.tobytes() + rows.tobytes()


def regressor_from_bytes(data: bytes) -> AudioFeatureRegressor:
    version, n_buckets, lr, n_learned, n_seen, *mean = _HEADER.unpack_from(data)
    if version != _SNAPSHOT_VERSION:
        raise ValueError(f"enrichment snapshot version {version} is not supported")
    model = AudioFeatureRegressor(n_buckets=n_buckets, lr=lr)
    model.n_learned = n_learned
    model.mean = np.array(mean, dtype=np.float64)
    at = _HEADER.size
    seen = np.frombuffer(data, "<u4", n_seen, at).astype(np.int64)
    at += 4 * n_seen
    model.counts[seen] = np.frombuffer(data, "<u4", n_seen, at)
    at += 4 * n_seen
    model.weights[seen] = np.frombuffer(data, "<f8", n_seen * N_OUTPUTS, at).reshape(n_seen, N_OUTPUTS)
    return model


class CatalogEnrichmentLogic(StatefulBatchLogic[SourcedTrack, SourcedTrack, bytes]):
    """Resolves each upserted track against the catalog and the regressor (one key for all)."""

    def __init__(self, existing: ExistingTracks, resume_state: bytes | None) -> None:
        self.existing = existing
        self.model = (regressor_from_bytes(resume_state) if resume_state is not None
                      else AudioFeatureRegressor())

    def on_batch(self, values: list[SourcedTrack]) -> tuple[Iterable[SourcedTrack], bool]:
        # Only a track without measured features needs what the catalog holds.
        wanted = list(dict.fromkeys(t.track_id for t, _ in values
                                    if not t.has_features or t.features_predicted))
        current = self.existing(wanted) if wanted else {}
        out = []
        for track, position in values:
            resolved = resolve_track(track, current.get(track.track_id), self.model)
            current[track.track_id] = resolved  # a later upsert in this batch resolves against it
            out.append((resolved, position))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return regressor_to_bytes(self.model)
