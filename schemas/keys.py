"""The Redis key layout, version 1: the one place that names Redis keys.

Every key starts with the namespace (default `encore`) and the layout version, and carries a Redis
Cluster hash tag in braces so that keys read together live in one slot:

| key | type | what |
|---|---|---|
| `{ns}:v1:{u:<user_id>}:profile` | string | the user's binary profile (`schemas.profile_codec`) |
| `{ns}:v1:{u:<user_id>}:seed` | string (JSON) | declared favourites (`POST /v1/users/{id}/seed`): track ids and artists |
| `{ns}:v1:{t:<track_id>}:stats` | hash | item statistics, full state: `<counter>@<era>` → scaled sum (`online_models.item_stats.ItemStats.to_fields`) |
| `{ns}:v1:{t:<track_id>}:neighbours` | sorted set | co-listening neighbours: track_id → decayed count, the top `NEIGHBOURS_KEPT` |
| `{ns}:v1:{a:<artist>}:neighbours` | sorted set | artist co-occurrence in listeners' histories: artist → listeners holding both, each weighted 1/k^γ (`online_models.artist_memory.pair_weight`), as integers in `schemas.values.ARTIST_COUNT_UNITS`, the strongest `ArtistMemoryConfig.neighbours_written` |
| `{ns}:v1:{items}:artist_listeners` | hash | artist → listeners whose history it entered (the cosine's norm) |
| `{ns}:v1:{items}:trending` | sorted set | track_id → trending (decayed velocity, `ItemStats.trending`) at the track's last update |
| `{ns}:v1:{items}:trending:g:<genre>` | sorted set | the same, per genre of the track |
| `{ns}:v1:{items}:popular` | sorted set | track_id → decayed listens (7-day half-life, `ItemStats.listens`) at the track's last update: popularity from the stream |
| `{ns}:v1:{items}:rates` | hash | track_id → `like_rate,skip_rate,listens` (smoothed, at the last update): the item-quality prior |
| `{ns}:v1:{items}:changes` | stream | one entry per flow batch that wrote item statistics: field `ids` = the tracks whose rates, trending and popularity it rewrote (`schemas.values.encode_item_changes`), the newest `ITEM_CHANGES_KEPT` (about): the API's change feed |
| `{ns}:v1:{model}:global:replicas:<period>` | hash | replica id → `GlobalModel.to_record()` of that period (TTL 1 day) |
| `{ns}:v1:{model}:global:<period>` | string | the merged global model of a period: 78 float32 (SET NX, TTL 2 days) |
| `{ns}:v1:{model}:global:latest` | string (int) | the newest published period |
| `{ns}:v1:{model}:ranker` | string (JSON) | the learned ranker: weights, examples seen, progressive AUC and log loss (`schemas.values.encode_ranker`) |
| `{ns}:v1:{x:<experiment>}:outcomes` | hash | outcomes of recommended tracks per variant of an experiment: `<variant>:<counter>` → count (`schemas.values.EXPERIMENT_COUNTERS`), full state |
| `{ns}:v1:{catalog}:tracks` | hash | track_id → track JSON (`schemas.tracks.Track`) |
| `{ns}:v1:{catalog}:version` | string (int) | bumped on every catalog write; readers reload on change |
| `{ns}:v1:{catalog}:changes` | stream | one entry per catalog write, `ids` → the track ids it upserted (`schemas.values.encode_catalog_change`), the newest ~`CATALOG_CHANGES_KEPT`: readers apply what changed since their last entry |
| `{ns}:v1:{ops}:offsets` | sorted set | `<topic>:<partition>` → next offset the flow will process (processed + 1), only ever raised |
| `{ns}:v1:{ops}:offset_times` | hash | `<topic>:<partition>` → broker timestamp (ms) of the last processed message |
| `{ns}:v1:{ops}:counters` | hash | `events_applied`, `events_duplicate`, `profile_writes`, `tracks_upserted` → running totals |
| `{ns}:v1:{ops}:dead_letters` | hash | dead-letter reason code → running total |
| `{ns}:v1:{ops}:freshness` | hash | produce → profile-written histogram: `le_<ms>` bucket counts (not cumulative), `sum_ms`, `count` |
| `{ns}:v1:{ops}:heartbeat` | string (int) | wall-clock ms of the flow's last heartbeat |

>>> keys = KeyLayout()
>>> keys.profile("alice")
'encore:v1:{u:alice}:profile'
>>> keys.catalog_tracks
'encore:v1:{catalog}:tracks'
"""

from __future__ import annotations

from dataclasses import dataclass

LAYOUT_VERSION = 1
DEFAULT_NAMESPACE = "encore"


@dataclass(frozen=True)
class KeyLayout:
    namespace: str = DEFAULT_NAMESPACE

    @property
    def _root(self) -> str:
        return f"{self.namespace}:v{LAYOUT_VERSION}"

    def profile(self, user_id: str) -> str:
        return f"{self._root}:{{u:{user_id}}}:profile"

    @property
    def profile_pattern(self) -> str:
        """A SCAN pattern matching every profile key."""
        return f"{self._root}:{{u:*}}:profile"

    def user_id_of(self, profile_key: str) -> str:
        return profile_key[len(self._root) + 4 : -len("}:profile")]

    def user_seed(self, user_id: str) -> str:
        """Declared favourites; same hash tag as the profile, so both are read in one MGET."""
        return f"{self._root}:{{u:{user_id}}}:seed"

    def track_stats(self, track_id: str) -> str:
        return f"{self._root}:{{t:{track_id}}}:stats"

    def track_neighbours(self, track_id: str) -> str:
        return f"{self._root}:{{t:{track_id}}}:neighbours"

    def artist_neighbours(self, artist: str) -> str:
        return f"{self._root}:{{a:{artist}}}:neighbours"

    @property
    def artist_listeners(self) -> str:
        return f"{self._root}:{{items}}:artist_listeners"

    @property
    def trending(self) -> str:
        return f"{self._root}:{{items}}:trending"

    @property
    def stream_popular(self) -> str:
        return f"{self._root}:{{items}}:popular"

    def trending_in_genre(self, genre: str) -> str:
        return f"{self._root}:{{items}}:trending:g:{genre}"

    @property
    def item_rates(self) -> str:
        return f"{self._root}:{{items}}:rates"

    @property
    def item_changes(self) -> str:
        return f"{self._root}:{{items}}:changes"

    def global_replicas(self, period: int) -> str:
        return f"{self._root}:{{model}}:global:replicas:{period}"

    @property
    def ranker(self) -> str:
        return f"{self._root}:{{model}}:ranker"

    def global_model(self, period: int) -> str:
        return f"{self._root}:{{model}}:global:{period}"

    @property
    def global_model_latest(self) -> str:
        return f"{self._root}:{{model}}:global:latest"

    def experiment_outcomes(self, experiment: str) -> str:
        return f"{self._root}:{{x:{experiment}}}:outcomes"

    @property
    def catalog_tracks(self) -> str:
        return f"{self._root}:{{catalog}}:tracks"

    @property
    def catalog_version(self) -> str:
        return f"{self._root}:{{catalog}}:version"

    @property
    def catalog_changes(self) -> str:
        return f"{self._root}:{{catalog}}:changes"

    def _ops(self, name: str) -> str:
        return f"{self._root}:{{ops}}:{name}"

    @property
    def ops_offsets(self) -> str:
        return self._ops("offsets")

    @property
    def ops_offset_times(self) -> str:
        return self._ops("offset_times")

    @property
    def ops_counters(self) -> str:
        return self._ops("counters")

    @property
    def ops_dead_letters(self) -> str:
        return self._ops("dead_letters")

    @property
    def ops_freshness(self) -> str:
        return self._ops("freshness")

    @property
    def ops_heartbeat(self) -> str:
        return self._ops("heartbeat")


def partition_member(topic: str, partition: int) -> str:
    """The member/field naming one topic partition in the ops keys."""
    return f"{topic}:{partition}"


def parse_partition_member(member: str) -> tuple[str, int]:
    topic, _, partition = member.rpartition(":")
    return topic, int(partition)


ITEM_CHANGES_KEPT = 10_000
"""Entries the item change feed keeps (trimmed approximately, never below): an API that fell
further behind reloads the item statistics whole."""

NEIGHBOURS_KEPT = 50
"""Co-listening neighbours stored per track (the strongest)."""

CATALOG_CHANGES_KEPT = 10_000
"""Entries kept in the catalog change stream (`MAXLEN ~`: Redis keeps at least this many). A reader
more entries behind than `CATALOG_CHANGES_READ` (below this) rebuilds from the hash instead."""

CATALOG_CHANGES_READ = 5_000
"""The most change entries a reader applies incrementally; kept below `CATALOG_CHANGES_KEPT`, so a
reader that finds fewer after its last entry knows that none of them was trimmed."""


FRESHNESS_BUCKETS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
"""Upper bounds of the freshness histogram buckets; a sample above the last counts in `le_inf`."""


def freshness_bucket(ms: float) -> str:
    for bound in FRESHNESS_BUCKETS_MS:
        if ms <= bound:
            return f"le_{bound}"
    return "le_inf"
