"""Wire contracts of Encore: events, tracks, topic names, the Redis key layout, the profile codec.

This package depends on nothing else of ours; `flows` and `serving` meet only through it.
"""
