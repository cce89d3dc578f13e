"""`artist`: the best tracks of the listener's strongest artists (by taste fit, else popularity)."""

from __future__ import annotations

from ranking.sources.grouped import grouped_source

NAME = "artist"

SOURCE = grouped_source(NAME, lambda view: view.artist_rows, lambda profile: profile.artists,
                        lambda config: config.strongest_artists)
