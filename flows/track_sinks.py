"""Redis output of the track-keyed step: item statistics, trending, rates and co-listening neighbours.

Every write is **full state**: a track's stats hash and its neighbours set are replaced (DEL, then
HSET / ZADD of the whole state), its trending scores and rates are overwritten. Rewriting the same
state is a no-op, so a replay after a crash (which recomputes the same state from the recovered
keyed state) is idempotent; incrementing (`HINCRBYFLOAT`) would count replayed events twice.

Progress (processed offsets) is recorded by the profile sink only: this output is derived from the
same batches, one step later.
"""

from __future__ import annotations

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from flows.item_changes import publish_item_changes
from flows.redis_io import connect, pipelined
from flows.track_state import TrackWrite
from schemas.keys import KeyLayout
from schemas.values import encode_rates


def rates_value(write: TrackWrite) -> str:
    """The `item_rates` field value (`schemas.values.encode_rates`)."""
    return encode_rates(write.like_rate, write.skip_rate, write.listens)


class _TrackStatsPartition(StatelessSinkPartition[tuple[str, TrackWrite]]):
    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._client = connect(url)
        self._keys = keys

    def write_batch(self, items: list[tuple[str, TrackWrite]]) -> None:
        # One write per touched track: a later state of the same track supersedes an earlier one,
        # except that an unchanged co-listening row (None) keeps the last row written.
        # Stats are written when some write of the batch changed them (the latest holds them all).
        latest: dict[str, TrackWrite] = {}
        rows: dict[str, list[tuple[str, float]]] = {}
        changed: set[str] = set()
        for track_id, write in items:
            latest[track_id] = write
            if write.neighbours is not None:
                rows[track_id] = write.neighbours
            if write.stats_changed:
                changed.add(track_id)
        keys = self._keys
        with_stats = {track_id: w for track_id, w in latest.items() if w.fields and track_id in changed}
        rates = {track_id: rates_value(w) for track_id, w in with_stats.items()}
        trending = {track_id: w.trending for track_id, w in with_stats.items()}
        listens = {track_id: w.listens for track_id, w in with_stats.items()}
        # One ZADD per sorted set for the whole batch.
        by_genre: dict[str, dict[str, float]] = {}
        for track_id, write in with_stats.items():
            for genre in write.genres:
                by_genre.setdefault(genre, {})[track_id] = write.trending

        def fill(pipe) -> None:
            for track_id, write in with_stats.items():
                stats_key = keys.track_stats(track_id)
                pipe.delete(stats_key)
                pipe.hset(stats_key, mapping=write.fields)
            if trending:
                pipe.zadd(keys.trending, trending)
                pipe.zadd(keys.stream_popular, listens)
            for genre, scores in by_genre.items():
                pipe.zadd(keys.trending_in_genre(genre), scores)
            for track_id, neighbours in rows.items():
                neighbours_key = keys.track_neighbours(track_id)
                pipe.delete(neighbours_key)
                if neighbours:
                    pipe.zadd(neighbours_key, dict(neighbours))
            if rates:
                pipe.hset(keys.item_rates, mapping=rates)
            publish_item_changes(pipe, keys, rates)  # last: a reader that sees it sees the writes above
            pipe.hincrby(keys.ops_counters, "track_stat_writes", len(latest))

        if latest:
            pipelined(self._client, fill, f"track stats write of {len(latest)} tracks")

    def close(self) -> None:
        self._client.close()


class TrackStatsSink(DynamicSink[tuple[str, TrackWrite]]):
    """Writes each touched track's statistics, trending scores, rates and neighbours (full state)."""

    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._url = url
        self._keys = keys

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _TrackStatsPartition:
        return _TrackStatsPartition(self._url, self._keys)
