"""`genre`: the best tracks of the listener's strongest genres (by taste fit, else popularity)."""

from __future__ import annotations

from ranking.sources.grouped import grouped_source

NAME = "genre"

SOURCE = grouped_source(NAME, lambda view: view.genre_rows, lambda profile: profile.genres,
                        lambda config: config.strongest_genres)
