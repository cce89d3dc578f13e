"""The Redis key layout, version 1: the one place that names Redis keys.

Every key starts with the namespace (default `encore`) and the layout version, and carries a Redis
Cluster hash tag in braces so that keys read together live in one slot:

| key | type | what |
|---|---|---|
| `{ns}:v1:{u:<user_id>}:profile` | string | the user's binary profile (`schemas.profile_codec`) |
| `{ns}:v1:{catalog}:tracks` | hash | track_id → track JSON (`schemas.tracks.Track`) |
| `{ns}:v1:{catalog}:version` | string (int) | bumped on every catalog write; readers reload on change |

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
