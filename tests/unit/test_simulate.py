"""Simulated listeners behave like listeners: tastes from real playlists of the shipped sample."""

from __future__ import annotations

from encore.catalog_csv import DEFAULT_SAMPLE, read_playlists, read_spotify_csv
from encore.simulate import ListenerSimulation


def skip_shares(simulation: ListenerSimulation, picks: int = 200) -> tuple[float, float]:
    """(share of own-genre tracks a listener would skip, share of other-genre tracks)."""
    counts = {True: [0, 0], False: [0, 0]}
    for user in simulation.users:
        for _ in range(picks):
            track = simulation.pick_track(user)
            a = simulation.affinity(user, track)
            own = counts[user.genre in track.genres]
            own[0] += 1
            own[1] += a < 0.3 or simulation._rng.random() >= a
    return counts[True][1] / counts[True][0], counts[False][1] / counts[False][0]


def test_tastes_come_from_real_playlists_across_genres() -> None:
    tracks = read_spotify_csv(DEFAULT_SAMPLE)
    simulation = ListenerSimulation(tracks, 12, playlists=read_playlists(DEFAULT_SAMPLE))
    assert all(user.playlist for user in simulation.users)
    assert len({user.genre for user in simulation.users}) == 6  # every genre of the sample
    own, other = skip_shares(simulation)
    # A fan of a genre enjoys most of it and skips most of the rest (the old blurred-track tastes
    # skipped about half of their own genre).
    assert own < 0.25 < 0.6 < other
    playlist_track = simulation.by_id[simulation.users[0].playlist[0]]
    assert simulation.affinity(simulation.users[0], playlist_track) > 0.9
