"""The Redis key layout, version 1: the one place that names Redis keys.

Every key starts with the namespace (default `encore`) and the layout version, and carries a Redis
Cluster hash tag in braces so that keys read together live in one slot:

| key | type | what |
|---|---|---|
| `{ns}:v1:{u:<user_id>}:profile` | string | the user's binary profile (`schemas.profile_codec`) |
| `{ns}:v1:{catalog}:tracks` | hash | track_id → track JSON (`schemas.tracks.Track`) |
| `{ns}:v1:{catalog}:version` | string (int) | bumped on every catalog write; readers reload on change |
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

    @property
    def catalog_tracks(self) -> str:
        return f"{self._root}:{{catalog}}:tracks"

    @property
    def catalog_version(self) -> str:
        return f"{self._root}:{{catalog}}:version"

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


FRESHNESS_BUCKETS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
"""Upper bounds of the freshness histogram buckets; a sample above the last counts in `le_inf`."""


def freshness_bucket(ms: float) -> str:
    for bound in FRESHNESS_BUCKETS_MS:
        if ms <= bound:
            return f"le_{bound}"
    return "le_inf"
