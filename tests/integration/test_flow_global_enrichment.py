"""The global model and audio-feature enrichment in the live flow, on a real broker and Redis."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import orjson
import pytest
from bytewax.dataflow import Dataflow

from encore.flow_main import flow_config
from encore.local import ManagedProcess
from encore.settings import Settings
from flows.dataflow import build_flow
from online_models.global_model import GLOBAL_PERIOD_MS, merge_records, period_of, prior_period
from online_models.user_model import WEIGHTS_BYTES, UserModel
from schemas.events import Event
from schemas.tracks import AUDIO_FEATURES, Track
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration

START = (period_of(T0) + 1) * GLOBAL_PERIOD_MS
"""The start of a merge period, a little after T0."""
USERS = [f"listener-{k}" for k in range(8)]


def warm_start_flow() -> Dataflow:
    """The flow with warm starts on (`build_flow(..., warm_start=True)`), for `bytewax.run`."""
    return build_flow(flow_config(Settings.from_env()), warm_start=True)


@pytest.fixture
def warm_flow(env: Env) -> Iterator[ManagedProcess]:
    log_path = env.services.workdir / "logs" / f"flow-{env.settings.namespace}.log"
    argv = [sys.executable, "-m", "bytewax.run", f"{__name__}:warm_start_flow"]
    process = ManagedProcess("flow", argv, log_path, env=env.settings.to_env()).start()
    try:
        yield process
    finally:
        process.stop()


def test_the_global_model_is_published_and_new_listeners_start_from_it(env: Env, warm_flow) -> None:
    loud = [track(f"loud-{k}", "rock", 0.9) for k in range(4)]
    quiet = [track(f"quiet-{k}", "folk", 0.1) for k in range(4)]
    for t in loud + quiet:
        env.produce(env.topics.tracks, t, key=t["track_id"])
    env.flush()
    wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == 8, 30, "the catalog to hold 8 tracks")

    # Five periods of event time: everyone likes loud tracks and skips quiet ones early.
    n = 0
    for minute in range(0, 5 * 15, 2):
        for k, user in enumerate(USERS):
            n += 1
            ts = START + minute * 60_000 + k * 1000
            if n % 2:
                env.produce(env.topics.events, event(f"g{n}", user, f"loud-{n % 4}", "like", ts=ts), key=user)
            else:
                env.produce(env.topics.events, event(f"g{n}", user, f"quiet-{n % 4}", "skip", ts=ts,
                                                     position_ms=3_000, duration_ms=200_000), key=user)
    env.flush()

    first = period_of(START)

    def published() -> int | None:
        latest = int(env.redis.get(env.keys.global_model_latest) or -1)
        return latest if latest >= first + 3 else None

    latest = wait_for(published, 60, "a global model published for the fourth period")
    weights = env.redis.get(env.keys.global_model(latest))
    assert weights is not None and len(weights) == WEIGHTS_BYTES
    # The replicas' hash of that period explains it: merging it again gives the same bytes.
    records = {k.decode(): v for k, v in env.redis.hgetall(env.keys.global_replicas(latest)).items()}
    assert records and merge_records(records).to_bytes() == weights
    assert 0 < env.redis.ttl(env.keys.global_model(latest)) <= 2 * 24 * 3600
    assert 0 < env.redis.ttl(env.keys.global_replicas(latest)) <= 24 * 3600

    # A new listener, first seen two periods after that model: a play teaches the model nothing, so
    # their weights are exactly the prior's.
    late_ts = (latest + 2) * GLOBAL_PERIOD_MS + 30_000
    env.produce(env.topics.events, event("late-1", "newcomer", "loud-0", "play", ts=late_ts), key="newcomer")
    env.flush()
    profile = env.wait_for_version("newcomer", 1)
    assert first <= profile.prior_period <= prior_period(late_ts)
    assert profile.model_weights == env.redis.get(env.keys.global_model(profile.prior_period))
    assert any(profile.model_weights)
    assert profile.prior_period == latest  # the newest published two periods before the first event
    # The prior learned the population: a loud track is likelier to be liked than a quiet one.
    prior = UserModel.from_bytes(profile.model_weights)
    probe = Event.model_validate(event("probe", "newcomer", "loud-0", "like", ts=late_ts))
    assert prior.predict_event(probe, Track.model_validate(loud[0])) > \
        prior.predict_event(probe, Track.model_validate(quiet[0]))


def test_a_track_without_features_gets_predicted_ones_until_measured_ones_arrive(env: Env, flow) -> None:
    measured = [track(f"m-{k}", "rock", 0.8 + 0.01 * k, artist="The Loud Ones") for k in range(10)]
    for t in measured:
        env.produce(env.topics.tracks, t, key=t["track_id"])
    bare = {"track_id": "new-1", "title": "Another One", "artist": "The Loud Ones", "genres": ["rock"]}
    env.produce(env.topics.tracks, bare, key="new-1")
    env.flush()

    def stored() -> dict | None:
        raw = env.redis.hget(env.keys.catalog_tracks, "new-1")
        return orjson.loads(raw) if raw is not None else None

    predicted = wait_for(stored, 30, "the bare track in the catalog")
    assert predicted["features_predicted"] is True
    assert all(name in predicted for name in AUDIO_FEATURES)
    assert predicted["energy"] > 0.6  # learned from the band's loud tracks, not the mid-range default

    real = track("new-1", "rock", 0.3, title="Another One", artist="The Loud Ones")
    env.produce(env.topics.tracks, real, key="new-1")
    env.flush()
    now = wait_for(lambda: (s := stored()) and not s["features_predicted"] and s, 30, "the measured features")
    assert {name: now[name] for name in AUDIO_FEATURES} == {name: real[name] for name in AUDIO_FEATURES}

    # A later upsert without features (a title fix) keeps the measured ones.
    env.produce(env.topics.tracks, {**bare, "title": "Another One (remastered)"}, key="new-1")
    env.flush()
    kept = wait_for(lambda: (s := stored()) and s["title"].endswith("(remastered)") and s, 30,
                    "the title fix")
    assert kept["features_predicted"] is False
    assert {name: kept[name] for name in AUDIO_FEATURES} == {name: real[name] for name in AUDIO_FEATURES}
